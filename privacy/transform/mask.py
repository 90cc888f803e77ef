"""``mask``: all but the last ``keep_last`` characters replaced by ``char``.

A value no longer than ``keep_last`` is masked whole: keeping "the last four" of a
three-character value would publish all of it.
"""

from __future__ import annotations

import polars as pl

from privacy.policy import MaskRule
from privacy.transform._base import ColumnOperator, TransformContext, register_operator

__all__ = ["Mask", "mask_chars"]


def mask_chars(text: pl.Expr, char: str) -> pl.Expr:
    """Every character of ``text`` replaced by ``char``, so the length is kept."""
    return text.str.head(0).str.pad_start(text.str.len_chars(), char)


@register_operator
class Mask(ColumnOperator):
    rule = "mask"
    spec: MaskRule

    def expr(self, ctx: TransformContext) -> pl.Expr | None:
        text = self.source_as_text()
        keep = self.spec.keep_last
        # The last ``keep`` characters, padded back to the full length with ``char``.
        partial = text.str.tail(keep).str.pad_start(text.str.len_chars(), self.spec.char)
        return (
            pl.when(text.str.len_chars() > keep)
            .then(partial)
            .otherwise(mask_chars(text, self.spec.char))
        )
