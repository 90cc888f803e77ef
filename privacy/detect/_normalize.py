"""The view of a text that detection runs on, and the way back to the original offsets.

Evasion costs an attacker one keystroke: full-width digits (U+FF10 to U+FF19), a
zero-width space inside an e-mail address, a right-to-left mark inside a phone number,
two spaces inside a card number. Recognizers see the text after Unicode NFKC (so
compatibility forms become the ASCII they stand for), with format characters (Unicode
category Cf: zero-width spaces and joiners, bidi controls, soft hyphens) removed and
every run of whitespace folded to one space. Each character of that view remembers
which characters of the original it came from, so a span found in the view maps back to
exactly the original characters it covers, and replacement removes exactly those.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

__all__ = ["NormalizedText", "normalize"]


@dataclass(frozen=True)
class NormalizedText:
    """``text``: what detection sees. ``origin[i]`` is the original offset where view
    character ``i`` begins, ``origin_end[i]`` where the original characters it came from
    end (several view characters share one original character when NFKC expands it,
    ``ﬁ`` to ``fi``; one view character covers several original ones when NFKC composes
    them or when whitespace is folded). Both are None when the view is the original."""

    text: str
    origin: tuple[int, ...] | None = None
    origin_end: tuple[int, ...] | None = None

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Original ``[start, end)`` of the view's ``[start, end)`` (end exclusive)."""
        if self.origin is None or self.origin_end is None or end <= start:
            return start, end
        return self.origin[start], self.origin_end[end - 1]


def _is_plain(text: str) -> bool:
    """ASCII with no control characters other than single spaces between words: the
    view is the text itself (the common case, and the fast one)."""
    return text.isascii() and text.isprintable() and "  " not in text


def normalize(text: str) -> NormalizedText:
    """The detection view of ``text`` (see the module docstring)."""
    if _is_plain(text):
        return NormalizedText(text)
    out: list[str] = []
    origin: list[int] = []
    origin_end: list[int] = []
    n = len(text)
    i = 0
    while i < n:
        char = text[i]
        if char.isspace():
            j = i + 1
            while j < n and (text[j].isspace() or unicodedata.category(text[j]) == "Cf"):
                j += 1
            if out and out[-1] == " ":  # folded into the space before it (across a Cf)
                origin_end[-1] = j
            else:
                out.append(" ")
                origin.append(i)
                origin_end.append(j)
            i = j
            continue
        if unicodedata.category(char) == "Cf":
            i += 1
            continue
        # A starter and the combining marks after it normalize together (e + U+0301 is é).
        j = i + 1
        while j < n and unicodedata.combining(text[j]):
            j += 1
        piece = unicodedata.normalize("NFKC", text[i:j])
        for c in piece:
            if c.isspace():  # NFKC of some characters holds a space (U+00A8 is " ̈")
                c = " "
                if out and out[-1] == " ":
                    origin_end[-1] = j
                    continue
            out.append(c)
            origin.append(i)
            origin_end.append(j)
        i = j
    return NormalizedText("".join(out), tuple(origin), tuple(origin_end))
