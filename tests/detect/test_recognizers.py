"""Span detection: the formats real data uses, and known false positives."""

from __future__ import annotations

import pytest

from privacy.detect import Span, TextScanner, merge_spans, replace_spans
from tests.detect._util import findings


@pytest.mark.parametrize(
    "phone",
    [
        "(221) 883-2051",
        "221-883-2051",
        "221.883.2051",
        "+1-221-883-2051",
        "221.883.2051x8247",
        "001-221-883-2051x82470",
        "221 883 2051",
    ],
)
def test_phone_formats_faker_and_real_data_use(scanner: TextScanner, phone: str) -> None:
    assert ("PHONE_NUMBER", phone) in findings(scanner, f"Please call {phone} tomorrow.")


def test_structured_identifiers(scanner: TextScanner) -> None:
    text = (
        "Mail mitchell.jennings41@hotmail.com, SSN 580-07-1120, customer P00000042, "
        "moved to 3488 Shawn Ports, South Michaelbury, KS 00613."
    )
    found = findings(scanner, text)
    assert ("EMAIL_ADDRESS", "mitchell.jennings41@hotmail.com") in found
    assert ("US_SSN", "580-07-1120") in found
    assert ("PERSON_ID", "P00000042") in found
    assert ("STREET_ADDRESS", "3488 Shawn Ports, South Michaelbury, KS 00613") in found


def test_a_person_named_in_text(scanner: TextScanner) -> None:
    assert ("PERSON", "Mitchell Jennings") in findings(scanner, "Called Mitchell Jennings today.")


def test_date_of_birth_needs_its_context(scanner: TextScanner) -> None:
    assert ("DATE_OF_BIRTH", "1992-11-29") in findings(scanner, "Born 1992-11-29 in Ohio.")
    assert ("DATE_OF_BIRTH", "1992-11-29") not in findings(scanner, "Invoice of 1992-11-29.")


@pytest.mark.parametrize(
    "text",
    [
        "12345",  # Presidio #1173: bare numbers tagged PERSON
        "4711",
        "2023-01-01 12:00:00,123 INFO worker 1234 started in 0.25 s",  # Presidio #944
        "GET /api/v1/items/1234567890?page=2 200 15ms",
        "No issues reported.",
        "Follow up next quarter.",
    ],
)
def test_no_false_positives_on_known_traps(scanner: TextScanner, text: str) -> None:
    found = findings(scanner, text)
    assert not [f for f in found if f[0] in ("PERSON", "PHONE_NUMBER", "US_SSN")], found


def test_allow_list_and_policy_recognizers() -> None:
    from privacy.detect import policy_recognizers
    from privacy.policy import RecognizerSpec

    spec = RecognizerSpec.model_validate(
        {"name": "member", "entity": "MEMBER_ID", "patterns": [{"regex": r"\bM-\d{6}\b"}]}
    )
    scanner = TextScanner(recognizers=policy_recognizers([spec]), allow_list=["Jane Roe"])
    (spans,) = scanner.scan(["Member M-123456 is Jane Roe."])
    assert [s.entity_type for s in spans] == ["MEMBER_ID"]


def test_merge_prefers_longer_then_pattern_over_ner() -> None:
    spans = [
        Span(9, 19, "PERSON", 0.85, True),
        Span(4, 40, "STREET_ADDRESS", 0.75),
        Span(50, 60, "PERSON", 0.85, True),
        Span(50, 60, "DATE_OF_BIRTH", 0.65),
    ]
    assert [s.entity_type for s in merge_spans(spans)] == ["STREET_ADDRESS", "DATE_OF_BIRTH"]


def test_replace_spans_keeps_the_rest() -> None:
    text = "Ann at 221-883-2051."
    spans = [Span(0, 3, "PERSON", 0.9), Span(7, 19, "PHONE_NUMBER", 0.7)]
    assert replace_spans(text, spans, lambda s, _: f"<{s.entity_type}>") == (
        "<PERSON> at <PHONE_NUMBER>."
    )


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("i met john smith yesterday", "john smith"),
        ("JOHN SMITH CALLED ABOUT THE INVOICE", "JOHN SMITH"),
    ],
)
def test_names_without_capitals_reach_the_ner_model(
    scanner: TextScanner, text: str, name: str
) -> None:
    """No pre-filter skips a text that can hold a name: lower-case and all-caps texts are
    read by the NER model too (a filter on capitals once kept them from it)."""
    assert ("PERSON", name) in findings(scanner, text)


def test_texts_without_letters_skip_the_ner_model_only(scanner: TextScanner) -> None:
    """Digits and punctuation alone cannot hold a name; patterns still run on them."""
    assert findings(scanner, "(221) 883-2051") == [("PHONE_NUMBER", "(221) 883-2051")]


def test_merge_prefers_the_specific_entity_at_equal_length() -> None:
    spans = [Span(0, 10, "DATE_TIME", 0.95), Span(0, 10, "DATE_OF_BIRTH", 0.65)]
    assert [s.entity_type for s in merge_spans(spans)] == ["DATE_OF_BIRTH"]


def test_a_pool_of_processes_finds_what_one_process_finds(
    scanner: TextScanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large scans go to spawned worker processes (their own analyzers); the spans, in the
    original offsets, are the same as in this process."""
    import privacy.detect._text as text_module

    texts = [
        f"Call Ann Lee at (221) 883-{2000 + i:04d} or mail ann{i}@example.org, SSN 536 22 1874"
        if i % 3
        else f"note {i}: nothing here"
        for i in range(40)
    ] + ["SSN \uff15\uff13\uff16-22-1874"]
    expected = scanner.scan(texts)
    monkeypatch.setattr(text_module, "_POOL_MIN_TEXTS", 8)
    pooled = TextScanner(workers=2)
    assert pooled.scan(texts) == expected
    assert 2 in text_module._pools  # the work did go to the pool


@pytest.mark.parametrize(
    ("regex", "digits"),
    [
        (r"\b\d{3}-\d{2}-\d{4}\b", 9),
        (r"[A-Z]\d{5}|\d{9}", 5),
        (r"(?:\+1)?\(\d{3}\)\s?\d{3}", 6),  # the optional +1 counts for nothing
        (r"(?=[A-Z0-9]*\d)[A-Z0-9]{17}", 1),  # a lookahead's digit is in the text
        (r"\d(?=\d{5})", 5),  # ... even beyond the match
        (r"(?!\d{3})[A-Z]{17}", 0),  # a negative one needs nothing
        (r"[\w.]+@\w+", 0),
        (r"(?P<broken", 0),  # unparseable: may match anything
    ],
)
def test_fewest_digits_read_off_a_regex(regex: str, digits: int) -> None:
    from privacy.detect._recognizers import fewest_digits

    assert fewest_digits(regex) == digits


def test_leaving_out_recognizers_by_digits_changes_no_finding(scanner: TextScanner) -> None:
    """A text skips the recognizers that need more digits than it holds; every finding
    is the same as with all of them run."""
    from privacy.detect import analyzer
    from privacy.detect._text import _is_ner

    # each text holds just the digits its finding needs: a recognizer left out wrongly
    # loses it
    texts = [
        "SSN 536-22-1874 on file",
        "ZIP 30301 please",
        "MRN 00481234 noted",
        "Born 1992-11-29 in Ohio",
        "card 4111 1111 1111 1111",
        "NPI 1245319599 for Dr. Smith",
        "Call (221) 883-2051 today",
        "passport 912803456 expired",
        "In 1994 the club moved to Leeds , where Ann Lee played .",
        "Visit https://example.org with Ann Lee, aged 93, a Canadian.",
    ]
    engine = analyzer()
    entities = scanner.entities
    for text, found in zip(texts, scanner.scan(texts), strict=True):
        every = engine.analyze(text, language="en", entities=entities, score_threshold=0.5)
        unpruned = merge_spans(
            Span(r.start, r.end, r.entity_type, round(float(r.score), 4), _is_ner(r)) for r in every
        )
        assert [(s.start, s.end, s.entity_type) for s in found] == [
            (s.start, s.end, s.entity_type) for s in unpruned
        ], text


def test_a_dead_worker_costs_speed_not_findings(
    scanner: TextScanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed mid-life (the OOM killer, an operator) breaks its pool: that scan
    runs in this process instead, and the next large scan starts a fresh pool."""
    import os
    import signal

    import privacy.detect._text as text_module

    monkeypatch.setattr(text_module, "_POOL_MIN_TEXTS", 8)
    pooled = TextScanner(workers=2)
    pooled.warm_up()
    broken = text_module._pools[2]
    for pid in list(broken._processes):  # type: ignore[attr-defined]
        os.kill(pid, signal.SIGKILL)
    texts = [f"Mail ann{i}@example.org or call (221) 883-{2000 + i:04d}" for i in range(20)]
    assert pooled.scan(texts) == scanner.scan(texts)
    assert text_module._pools.get(2) is not broken
    assert pooled.scan(texts) == scanner.scan(texts)  # on a fresh pool
    assert text_module._pools.get(2) not in (None, broken)
