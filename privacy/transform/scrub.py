"""``scrub``: free text keeps its words, loses its personal data.

Only the spans are replaced, never the whole cell. This operator replaces, in each row,
every occurrence of that same row's direct identifiers (the values of columns the
policy drops, redacts, masks or pseudonymizes, or marks ``role: identifier``): the
record-linkage pass that catches a customer's own e-mail or phone number quoted in a
note. Presidio-based span detection (entities not tied to any column) adds to it.

Each span becomes, by the rule's ``operator``: a placeholder naming the source column
(``<EMAIL>``), a constant (``[REDACTED]``), or the same keyed token the column's
``pseudonymize`` rule would give (so tokens in text join with tokens in columns).
"""

from __future__ import annotations

import hmac

import polars as pl

from privacy.crypto import derive_subkey
from privacy.policy import PseudonymizeRule, ScrubRule
from privacy.transform._base import ColumnOperator, TransformContext, register_operator

__all__ = ["Scrub", "identifier_columns"]

_How = str | tuple[bytes, int, str]  # a constant, or (token subkey, length, prefix)
_MIN_SPAN = 3  # shorter values ("Al", "7") would shred ordinary words


def identifier_columns(ctx: TransformContext, exclude: str) -> list[str]:
    """Columns whose values are direct identifiers, to be looked for in free text."""
    return [
        name
        for name, spec in ctx.columns.items()
        if name != exclude
        and spec.type == "string"
        and (spec.role == "identifier" or spec.rule in ("drop", "redact", "mask", "pseudonymize"))
    ]


@register_operator
class Scrub(ColumnOperator):
    rule = "scrub"
    spec: ScrubRule

    def uses_key(self) -> bool:
        return self.spec.operator == "pseudonymize"

    def expr(self, ctx: TransformContext) -> pl.Expr | None:
        sources = identifier_columns(ctx, self.column)
        if not sources:
            return self.source_as_text()
        replacements: dict[str, _How] = {}
        key = ctx.pseudonym_key() if self.spec.operator == "pseudonymize" else None
        for name in sources:
            spec = ctx.columns[name]
            if self.spec.operator == "placeholder":
                replacements[name] = f"<{name.upper()}>"
            elif self.spec.operator == "redact":
                replacements[name] = "[REDACTED]"
            else:
                length = spec.length if isinstance(spec, PseudonymizeRule) else 16
                prefix = spec.prefix if isinstance(spec, PseudonymizeRule) else ""
                assert key is not None
                replacements[name] = (derive_subkey(key, "pseudonym"), length, prefix)
        stats = ctx.stats.setdefault(self.column, {})
        column = self.column

        def scrub(batch: pl.Series) -> pl.Series:
            rows = batch.struct.unnest()
            texts = rows.get_column(column).to_list()
            found = 0
            for name in sources:
                values = rows.get_column(name).to_list()
                how = replacements[name]
                for i, (text, value) in enumerate(zip(texts, values, strict=True)):
                    if text is None or value is None or len(value) < _MIN_SPAN:
                        continue
                    if value in text:
                        found += text.count(value)
                        texts[i] = text.replace(value, _replacement(how, value))
            stats["spans_replaced"] = stats.get("spans_replaced", 0) + found
            return pl.Series(column, texts, dtype=pl.String)

        inputs = pl.struct([self.source_as_text().alias(column), *[pl.col(s) for s in sources]])
        return inputs.map_batches(scrub, return_dtype=pl.String)


def _replacement(how: _How, value: str) -> str:
    if isinstance(how, str):
        return how
    subkey, length, prefix = how
    return prefix + hmac.digest(subkey, value.encode("utf-8"), "sha256").hex()[:length]
