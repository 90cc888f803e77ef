"""``pseudonymize``: a keyed HMAC-SHA256 token per value.

The same value under the same key gives the same token in every run, column and file,
so joins survive; without the key a token reveals nothing and cannot be recomputed
(never an unkeyed hash, which anyone can brute-force over a small domain like SSNs).
Tokens are computed once per distinct value, then mapped back over the column.
"""

from __future__ import annotations

import hmac

import polars as pl

from privacy.crypto import derive_subkey
from privacy.policy import PseudonymizeRule
from privacy.transform._base import (
    ColumnOperator,
    TransformContext,
    map_distinct,
    register_operator,
)

__all__ = ["Pseudonymize", "pseudonym_token", "pseudonym_tokens"]


def pseudonym_token(subkey: bytes, value: str, *, length: int, prefix: str) -> str:
    """The token of one value under the pseudonym subkey (``derive_subkey(key,
    "pseudonym")``): the same in a column, in free text, and in every run."""
    return prefix + hmac.digest(subkey, value.encode("utf-8"), "sha256").hex()[:length]


def pseudonym_tokens(values: pl.Series, key: bytes, *, length: int, prefix: str) -> pl.Series:
    """Tokens for ``values`` (cast to text) under the pseudonym ``key``; nulls stay null."""
    subkey = derive_subkey(key, "pseudonym")
    return map_distinct(
        values, lambda v: pseudonym_token(subkey, v, length=length, prefix=prefix), pl.String()
    )


@register_operator
class Pseudonymize(ColumnOperator):
    rule = "pseudonymize"
    needs_key = True
    spec: PseudonymizeRule

    def expr(self, ctx: TransformContext) -> pl.Expr | None:
        key = ctx.pseudonym_key()
        length, prefix = self.spec.length, self.spec.prefix
        return self.source.map_batches(
            lambda s: pseudonym_tokens(s, key, length=length, prefix=prefix),
            return_dtype=pl.String,
        )
