"""``keep``: the column is published as read (detection still audits it)."""

from __future__ import annotations

import polars as pl

from privacy.transform._base import ColumnOperator, TransformContext, register_operator

__all__ = ["Keep"]


@register_operator
class Keep(ColumnOperator):
    rule = "keep"

    def expr(self, ctx: TransformContext) -> pl.Expr | None:
        return self.source
