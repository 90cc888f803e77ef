"""PII detection with Presidio (offline spaCy model): spans in text, and column types."""

from privacy.detect._columns import ColumnFinding, classify_columns, name_hint
from privacy.detect._engine import MODEL_PACKAGE, analyzer, holds_text, needs_presidio
from privacy.detect._entities import DEFAULT_ENTITIES, IDENTIFIERS, Identifier
from privacy.detect._normalize import NormalizedText, normalize
from privacy.detect._recognizers import builtin_recognizers, policy_recognizers
from privacy.detect._suggest import draft_yaml, suggest_policy
from privacy.detect._text import (
    Span,
    TextScanner,
    default_workers,
    merge_spans,
    replace_spans,
    year_of,
)

__all__ = [
    "year_of",
    "DEFAULT_ENTITIES",
    "IDENTIFIERS",
    "Identifier",
    "NormalizedText",
    "default_workers",
    "draft_yaml",
    "normalize",
    "ColumnFinding",
    "classify_columns",
    "holds_text",
    "name_hint",
    "needs_presidio",
    "MODEL_PACKAGE",
    "Span",
    "TextScanner",
    "analyzer",
    "builtin_recognizers",
    "merge_spans",
    "policy_recognizers",
    "replace_spans",
    "suggest_policy",
]
