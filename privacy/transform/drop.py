"""``drop``: the column is not published."""

from __future__ import annotations

import polars as pl

from privacy.transform._base import ColumnOperator, TransformContext, register_operator

__all__ = ["Drop"]


@register_operator
class Drop(ColumnOperator):
    rule = "drop"

    def expr(self, ctx: TransformContext) -> pl.Expr | None:
        return None
