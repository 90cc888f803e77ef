"""What the detector finds in one text, as (entity, the text it covers) pairs."""

from __future__ import annotations

from privacy.detect import TextScanner


def findings(scanner: TextScanner, text: str) -> list[tuple[str, str]]:
    (spans,) = scanner.scan([text])
    return [(s.entity_type, text[s.start : s.end]) for s in spans]
