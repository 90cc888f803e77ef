"""Column classification: what kind of personal data each column holds.

A column is judged on a sample of its rows: Presidio runs on each distinct sampled
value, and a cell counts as an entity when one span of that entity covers most of it
(a structured value *is* the entity) or, for free text, when the text contains one.
The column's name adds a hint. Nothing here returns a value from the data: shares,
scores and entity names only.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from privacy.detect._text import TextScanner

__all__ = ["ColumnFinding", "classify_columns", "name_hint"]

_NAME_HINTS = (
    (r"e-?mail", "EMAIL_ADDRESS"),
    (r"phone|mobile|\btel\b|fax", "PHONE_NUMBER"),
    (r"ssn|social.?security", "US_SSN"),
    (r"address|street", "STREET_ADDRESS"),
    (r"\bzip|postal|postcode", "ZIP_CODE"),
    (r"birth|\bdob\b", "DATE_OF_BIRTH"),
    (r"(first|last|full|sur|given)?_?name$", "PERSON"),
    (r"(person|customer|patient|member|user)_?id$", "PERSON_ID"),
)
_COVER = 0.6  # a span covering this share of a short cell makes the cell that entity
_FREE_TEXT_MEAN_WORDS = 4.0


def name_hint(column: str) -> str | None:
    """The entity a column's name suggests, if any."""
    lowered = column.lower()
    for pattern, entity in _NAME_HINTS:
        if re.search(pattern, lowered):
            return entity
    return None


@dataclass
class ColumnFinding:
    """What one column seems to hold, judged on ``sampled`` cells."""

    column: str
    dtype: str
    kind: str  # "structured", "free_text", "numeric", "temporal", "empty"
    sampled: int
    entity: str | None = None
    share: float = 0.0  # of sampled non-empty cells holding ``entity``
    confidence: float = 0.0  # mean score of those findings
    hint: str | None = None
    entities: dict[str, float] = field(default_factory=dict)  # every entity found: share
    inferred_type: str = "string"  # the policy type the sampled values fit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def classify_columns(
    frame: pl.DataFrame, scanner: TextScanner, *, sample: int = 200, seed: int = 0
) -> list[ColumnFinding]:
    """Classify every column of ``frame`` from a sample of ``sample`` rows."""
    rows = frame.sample(min(sample, frame.height), seed=seed) if frame.height else frame
    findings = []
    for name, dtype in rows.schema.items():
        finding = ColumnFinding(name, str(dtype), "structured", 0, hint=name_hint(name))
        series = rows.get_column(name).drop_nulls()
        finding.sampled = series.len()
        if dtype.is_numeric() or dtype == pl.Boolean:
            finding.kind = "numeric"
            finding.inferred_type = "float" if dtype.is_float() else "integer"
            if dtype == pl.Boolean:
                finding.inferred_type = "boolean"
        elif dtype.is_temporal():
            finding.kind = "temporal"
            finding.inferred_type = "date" if dtype == pl.Date else "datetime"
            if finding.hint == "DATE_OF_BIRTH":
                finding.entity, finding.share, finding.confidence = "DATE_OF_BIRTH", 1.0, 0.5
        elif finding.sampled == 0:
            finding.kind = "empty"
        else:
            values = series.cast(pl.String).to_list()
            finding.inferred_type = _text_type(values)
            if finding.inferred_type in ("integer", "float") and finding.hint is None:
                finding.kind = "numeric"
            else:
                _classify_text(finding, values, scanner)
        findings.append(finding)
    return findings


_INTEGER = re.compile(r"^[+-]?(0|[1-9]\d*)$")  # a leading zero (ZIP 00613) is text
_FLOAT = re.compile(r"^[+-]?\d*\.\d+([eE][+-]?\d+)?$|^[+-]?\d+[eE][+-]?\d+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _text_type(values: list[str]) -> str:
    """The narrowest policy type every sampled text value parses as."""
    stripped = [v.strip() for v in values]
    if all(_INTEGER.match(v) for v in stripped):
        return "integer"
    if all(_INTEGER.match(v) or _FLOAT.match(v) for v in stripped):
        return "float"
    if all(_DATE.match(v) for v in stripped):
        return "date"
    return "string"


def _classify_text(finding: ColumnFinding, values: list[str], scanner: TextScanner) -> None:
    words = sum(len(v.split()) for v in values) / len(values)
    finding.kind = "free_text" if words >= _FREE_TEXT_MEAN_WORDS else "structured"
    context = [w for w in re.split(r"[^a-z]+", finding.column.lower()) if w]
    spans = scanner.scan(values, context=context if finding.kind == "structured" else ())
    hits: Counter[str] = Counter()
    whole_hits: Counter[str] = Counter()
    scores: dict[str, list[float]] = {}
    for value, found in zip(values, spans, strict=True):
        seen = set()
        for span in found:
            whole = (span.end - span.start) >= _COVER * len(value.strip())
            whole_hits[span.entity_type] += whole
            if (finding.kind == "free_text" or whole) and span.entity_type not in seen:
                seen.add(span.entity_type)
                hits[span.entity_type] += 1
                scores.setdefault(span.entity_type, []).append(span.score)
    total = len(values)
    if whole_hits and whole_hits.most_common(1)[0][1] >= 0.8 * total:
        finding.kind = "structured"  # long values, but each one is the entity (addresses)
    finding.entities = {e: round(n / total, 4) for e, n in hits.most_common()}
    if hits:
        entity, count = hits.most_common(1)[0]
        hint = finding.hint
        if hint is not None and hits[hint] >= count / 2:
            entity, count = hint, hits[hint]  # the name agrees: prefer it
        finding.entity = entity
        finding.share = round(count / total, 4)
        finding.confidence = round(sum(scores[entity]) / len(scores[entity]), 4)
