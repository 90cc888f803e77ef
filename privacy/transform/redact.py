"""``redact``: every non-empty value becomes one constant (or null)."""

from __future__ import annotations

import polars as pl

from privacy.policy import RedactRule
from privacy.transform._base import ColumnOperator, TransformContext, register_operator

__all__ = ["Redact"]


@register_operator
class Redact(ColumnOperator):
    rule = "redact"
    spec: RedactRule

    def expr(self, ctx: TransformContext) -> pl.Expr | None:
        constant = pl.lit(self.spec.replacement, dtype=pl.String)
        return pl.when(self.source.is_null()).then(None).otherwise(constant).cast(pl.String)
