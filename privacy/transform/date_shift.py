"""``date_shift``: every date of a person moves by the same secret offset.

The offset is drawn from the person's id (the ``by`` column) with a keyed PRF (BLAKE2b), so it is
the same in every row, column, run and file for that person (intervals between their
events survive) and unknowable without the key. It lies in [-max_days, -1] or
[1, max_days]: never zero.
"""

from __future__ import annotations

import hashlib

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

    def offsets(values: list[str]) -> pl.Series:
        macs = [
            hashlib.blake2b(v.encode("utf-8"), key=subkey, digest_size=8).digest() for v in values
        ]
        draw = pl.Series(macs, dtype=pl.Binary).bin.reinterpret(dtype=pl.UInt64, endianness="big")
        magnitude = ((draw // 2) % max_days + 1).cast(pl.Int64)  # bit 0 is the sign
        return pl.select(pl.when(draw % 2 == 1).then(magnitude).otherwise(-magnitude)).to_series()

    return map_distinct(ids, offsets, pl.Int64())


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
