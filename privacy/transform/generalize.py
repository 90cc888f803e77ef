"""``generalize``: coarsen values, published as text.

Numbers fall into intervals of ``width`` (integers as ``30-39``, floats as
``[30.5, 40.5)``), with top and bottom coding (``>=90``, ``<18``); codes keep a prefix
(``123**``); dates keep their month (``2024-05``) or year (``2024``).
"""

from __future__ import annotations

import polars as pl

from privacy.policy import GeneralizeRule
from privacy.transform._base import ColumnOperator, TransformContext, register_operator
from privacy.transform.mask import mask_chars

__all__ = ["Generalize", "format_number"]


def format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@register_operator
class Generalize(ColumnOperator):
    rule = "generalize"
    spec: GeneralizeRule

    def expr(self, ctx: TransformContext) -> pl.Expr | None:
        spec = self.spec
        if spec.keep_prefix is not None:
            text = self.source_as_text()
            return pl.concat_str(
                [text.str.head(spec.keep_prefix), mask_chars(text.str.slice(spec.keep_prefix), "*")]
            )
        if spec.date_unit is not None:
            return self.source.dt.strftime("%Y-%m" if spec.date_unit == "month" else "%Y")
        return self._numeric()

    def _numeric(self) -> pl.Expr:
        spec = self.spec
        x = self.source.cast(pl.Float64)
        if spec.width is not None:
            width = spec.width
            low = (x / width).floor() * width
            if spec.type == "integer" and width.is_integer():
                label = pl.format("{}-{}", low.cast(pl.Int64), (low + width - 1).cast(pl.Int64))
            else:
                label = pl.format("[{}, {})", low, low + width)
        else:
            label = self.source.cast(pl.String)
        if spec.top is not None:
            label = (
                pl.when(x >= spec.top).then(pl.lit(f">={format_number(spec.top)}")).otherwise(label)
            )
        if spec.bottom is not None:
            label = (
                pl.when(x < spec.bottom)
                .then(pl.lit(f"<{format_number(spec.bottom)}"))
                .otherwise(label)
            )
        return pl.when(x.is_null()).then(None).otherwise(label).cast(pl.String)
