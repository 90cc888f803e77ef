"""``date_shift``: every date of a person moves by the same secret offset.

The offset is drawn from the person's id (the ``by`` column) with a keyed PRF, so it is
the same in every row, column, run and file for that person (intervals between their
events survive) and unknowable without the key. It lies in [-max_days, -1] or
[1, max_days]: never zero.
"""

from __future__ import annotations

import hmac

import polars as pl

from privacy.crypto import derive_subkey
from privacy.policy import DateShiftRule
from privacy.transform._base import (
    ColumnOperator,
    TransformContext,
    map_distinct,
    register_operator,
)

__all__ = ["DateShift", "shift_days"]


def shift_days(ids: pl.Series, key: bytes, max_days: int) -> pl.Series:
    """The day offset of each id; a null id gets a null offset."""
    subkey = derive_subkey(key, "date-shift")

    def offset(value: str) -> int:
        draw = int.from_bytes(hmac.digest(subkey, value.encode("utf-8"), "sha256")[:8], "big")
        magnitude = 1 + (draw >> 1) % max_days
        return magnitude if draw & 1 else -magnitude

    return map_distinct(ids, offset, pl.Int64())


@register_operator
class DateShift(ColumnOperator):
    rule = "date_shift"
    needs_key = True
    spec: DateShiftRule

    def expr(self, ctx: TransformContext) -> pl.Expr | None:
        key = ctx.pseudonym_key()
        max_days = self.spec.max_days
        days = pl.col(self.spec.by).map_batches(
            lambda s: shift_days(s, key, max_days), return_dtype=pl.Int64
        )
        return self.source + pl.duration(days=days)
