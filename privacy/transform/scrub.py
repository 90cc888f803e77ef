"""``scrub``: free text keeps its words, loses its personal data.

Only the spans are replaced, never the whole cell. Two passes: first, in each row, every
occurrence of that same row's direct identifiers (the values of columns the policy
drops, redacts, masks or pseudonymizes, or marks ``role: identifier``): the
record-linkage pass that catches a customer's own e-mail quoted in a note, exactly.
Then Presidio (when the context carries a scanner) finds the spans no column explains:
other people's names, numbers in formats the columns do not use.

Each span becomes, by the rule's ``operator``: a placeholder naming the source column
(``<EMAIL>``), a constant (``[REDACTED]``), or the same keyed token the column's
``pseudonymize`` rule would give (so tokens in text join with tokens in columns).
"""

from __future__ import annotations

import polars as pl

from privacy.crypto import derive_subkey
from privacy.detect import Span, replace_spans, year_of
from privacy.policy import MIN_TOKEN_HEX, PseudonymizeRule, ScrubRule
from privacy.transform._base import (
    ColumnOperator,
    TransformContext,
    register_operator,
)
from privacy.transform.pseudonymize import pseudonym_token, pseudonym_tokens_under

__all__ = ["Scrub", "identifier_columns"]

_How = str | tuple[bytes, int, str]  # a constant, or (token subkey, length, prefix)
_MIN_SPAN = 3  # shorter values ("Al", "7") would shred ordinary words
_MAX_PASSES = 3  # detector passes over a text whose spans were replaced


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
        replacements: dict[str, _How] = {}
        key = ctx.pseudonym_key() if self.spec.operator == "pseudonymize" else None
        subkey = derive_subkey(key, "pseudonym") if key is not None else b""
        for name in sources:
            spec = ctx.columns[name]
            if self.spec.operator == "placeholder":
                replacements[name] = f"<{name.upper()}>"
            elif self.spec.operator == "redact":
                replacements[name] = "[REDACTED]"
            else:
                length = spec.length if isinstance(spec, PseudonymizeRule) else MIN_TOKEN_HEX
                prefix = spec.prefix if isinstance(spec, PseudonymizeRule) else ""
                replacements[name] = (subkey, length, prefix)
        scanner = ctx.scanner.restricted(self.spec.entities) if ctx.scanner else None
        operator = self.spec.operator
        stats = ctx.stats.setdefault(self.column, {})
        column = self.column

        keep_year = scanner is not None and scanner.keep_year

        def span_text(span: Span, original: str) -> str:
            if keep_year and span.entity_type in ("DATE_TIME", "DATE_OF_BIRTH"):
                year = year_of(original)
                if year is not None:  # dates: keep_year
                    return year
            if operator == "placeholder":
                return f"<{span.entity_type}>"
            if operator == "redact":
                return "[REDACTED]"
            return _replacement((subkey, MIN_TOKEN_HEX, ""), original)

        def scrub(batch: pl.Series) -> pl.Series:
            rows = batch.struct.unnest()
            found = 0
            for name in sources:
                rows, hits = _replace_own_values(rows, column, name, replacements[name])
                found += hits
                stats[f"own:{name}"] = stats.get(f"own:{name}", 0) + hits
            stats["spans_replaced"] = stats.get("spans_replaced", 0) + found
            texts = rows.get_column(column).to_list()
            if scanner is not None:
                # Replacing a span changes the context the NER model reads the rest in
                # ("last spring" is a date after an address becomes <STREET_ADDRESS>):
                # scan what changed again, until the detector finds nothing, as the gate
                # will scan it.
                todo = list(range(len(texts)))
                for _ in range(_MAX_PASSES):
                    changed = []
                    for i, spans in zip(todo, scanner.scan([texts[i] for i in todo]), strict=True):
                        if spans:
                            texts[i] = replace_spans(texts[i], spans, span_text)
                            changed.append(i)
                            for span in spans:
                                name = f"entity:{span.entity_type}"
                                stats[name] = stats.get(name, 0) + 1
                            stats["spans_replaced"] += len(spans)
                    todo = changed
                    if not todo:
                        break
            return pl.Series(column, texts, dtype=pl.String)

        inputs = pl.struct([self.source_as_text().alias(column), *[pl.col(s) for s in sources]])
        return inputs.map_batches(scrub, return_dtype=pl.String)


def _replace_own_values(
    rows: pl.DataFrame, text: str, source: str, how: _How
) -> tuple[pl.DataFrame, int]:
    """Every occurrence, in each row's ``text``, of that row's own ``source`` value
    replaced; and how many there were. Vectorized: split the text on the row's value and
    join the parts with the row's replacement (as ``str.replace`` does: left to right,
    non-overlapping)."""
    value = pl.col(source).cast(pl.String)
    applies = (value.str.len_chars() >= _MIN_SPAN) & pl.col(text).str.contains(value, literal=True)
    rows = rows.with_columns(applies.fill_null(False).alias("__hit"))
    if isinstance(how, str):
        replacement = pl.lit(how)
    else:  # a keyed token, computed only for the values that occur in their row's text
        subkey, length, prefix = how
        hit_values = rows.select(pl.when("__hit").then(value)).to_series()
        tokens = pseudonym_tokens_under(
            hit_values, subkey, length=length, prefix=prefix, column=source
        )
        rows = rows.with_columns(tokens.alias("__token"))
        replacement = pl.col("__token")
    parts = pl.col(text).str.split(value)
    rows = rows.with_columns(
        pl.when("__hit").then(parts.list.join(replacement)).otherwise(pl.col(text)).alias(text),
        pl.when("__hit").then(parts.list.len() - 1).otherwise(0).alias("__count"),
    )
    found = int(rows.get_column("__count").sum())
    return rows.drop("__hit", "__count", "__token", strict=False), found


def _replacement(how: _How, value: str) -> str:
    if isinstance(how, str):
        return how
    subkey, length, prefix = how
    return pseudonym_token(subkey, value, length=length, prefix=prefix)
