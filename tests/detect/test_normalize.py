"""The detection view of a text and the way back to the original offsets."""

from __future__ import annotations

import pytest

from privacy.detect._normalize import normalize


def _FW(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def test_plain_ascii_is_its_own_view() -> None:
    view = normalize("Call 221-883-2051 today.")
    assert view.text == "Call 221-883-2051 today." and view.origin is None
    assert view.to_original(5, 17) == (5, 17)


@pytest.mark.parametrize(
    ("text", "view", "found"),
    [
        (f"SSN {_FW('123-45-6789')} ok", "SSN 123-45-6789 ok", _FW("123-45-6789")),
        ("mail a\u200b.lee@x.org now", "mail a.lee@x.org now", "a\u200b.lee@x.org"),  # zero-width
        ("tel 221\u202e-883-2051!", "tel 221-883-2051!", "221\u202e-883-2051"),  # bidi control
        ("card 4111  1111\t1111\n1111.", "card 4111 1111 1111 1111.", "4111  1111\t1111\n1111"),
        ("\ufb01le 12\u00a034", "file 12 34", "12\u00a034"),  # a ligature expands, NBSP is a space
        ("Jose\u0301 Ruiz", "José Ruiz", "Jose\u0301"),  # a combining mark composes
    ],
)
def test_view_and_offsets_back(text: str, view: str, found: str) -> None:
    normalized = normalize(text)
    assert normalized.text == view
    # Find the value in the view; its span maps back to exactly the original characters.
    value = (
        found.replace("\u200b", "")
        .replace("\u202e", "")
        .replace("\u00a0", " ")
        .replace("\u0301", "")
    )
    import unicodedata

    value = " ".join(unicodedata.normalize("NFKC", value).split())
    if found == "Jose\u0301":
        value = "José"
    start = normalized.text.index(value)
    back = normalized.to_original(start, start + len(value))
    assert text[back[0] : back[1]] == found


def test_every_view_character_maps_inside_the_original() -> None:
    text = _FW("A") + "\u200b" + _FW("B") + "  \u2003" + _FW("C") + " \ufb03\u0308 x"
    view = normalize(text)
    assert view.origin is not None and view.origin_end is not None
    assert len(view.origin) == len(view.text)
    for i in range(len(view.text)):
        start, end = view.to_original(i, i + 1)
        assert 0 <= start < end <= len(text)
