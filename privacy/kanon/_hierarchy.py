"""Generalization hierarchies, integer-coded for the lattice search.

A hierarchy maps every value of a quasi-identifier (level 0) through coarser and
coarser labels up to ``*`` (its top level). It is held as one integer array per level:
``codes[level][c]`` is the label, at that level, of the value whose level-0 code is
``c``; ``labels[level]`` turns codes back into text. Counting over a generalization is
then an array lookup and a group-by, never a string operation.

Kinds, as the policy declares them: an ARX hierarchy file (``;``-separated rows from the
value to ``*``, no header), intervals of growing width for numbers (with top and bottom
coding), prefixes for codes (12345 → 1234* → … → *), dates (day → month → year → *),
and, for a quasi-identifier without one, the two-level ``value → *``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from privacy.errors import PolicyError
from privacy.policy import (
    DateHierarchy,
    FileHierarchy,
    Hierarchy,
    IntervalHierarchy,
    PrefixHierarchy,
)

__all__ = ["CodedHierarchy", "build_hierarchy", "read_arx_hierarchy"]

TOP = "*"
Codes = npt.NDArray[np.int32]


@dataclass(frozen=True)
class CodedHierarchy:
    """One quasi-identifier's hierarchy over a known domain of level-0 values."""

    column: str
    domain: list[str]  # level-0 values as text, in code order
    codes: list[Codes]  # per level: level-0 code -> code at that level
    labels: list[list[str]]  # per level: code -> label

    @property
    def height(self) -> int:
        """Number of levels, level 0 (the value) to the top (``*``) included."""
        return len(self.codes)

    def cardinality(self, level: int) -> int:
        return len(self.labels[level])

    def leaves(self, level: int) -> npt.NDArray[np.int64]:
        """For each level-0 code, how many domain values share its label at ``level``."""
        per_label = np.bincount(self.codes[level], minlength=self.cardinality(level))
        return per_label[self.codes[level]].astype(np.int64)

    def step(self, level: int) -> Codes:
        """The map from codes at ``level`` to codes at ``level + 1``."""
        out = np.zeros(self.cardinality(level), dtype=np.int32)
        out[self.codes[level]] = self.codes[level + 1]
        return out


def _coded(column: str, domain: list[str], rows: Sequence[Sequence[str]]) -> CodedHierarchy:
    """A hierarchy from one row of labels per domain value (level 0 first, top last).

    Values are numbered so that the values under any label are contiguous (rows sorted
    by their labels from the top down): the lattice search relies on it."""
    order = sorted(range(len(rows)), key=lambda i: tuple(reversed(rows[i])))
    rows = [rows[i] for i in order]
    domain = [domain[i] for i in order]
    height = len(rows[0]) if rows else 1
    codes: list[Codes] = []
    labels: list[list[str]] = []
    for level in range(height):
        index: dict[str, int] = {}
        column_codes = np.empty(len(rows), dtype=np.int32)
        for i, row in enumerate(rows):
            column_codes[i] = index.setdefault(row[level], len(index))
        codes.append(column_codes)
        labels.append(list(index))
    hierarchy = CodedHierarchy(column, domain, codes, labels)
    for level in range(height - 1):  # every label must generalize one way only
        seen = np.full(hierarchy.cardinality(level), -1, dtype=np.int64)
        for low, high in zip(codes[level], codes[level + 1], strict=True):
            if seen[low] not in (-1, high):
                raise PolicyError(
                    f"hierarchy of column {column!r}: a label at level {level} generalizes "
                    f"to two different labels at level {level + 1}"
                )
            seen[low] = high
    return hierarchy


def read_arx_hierarchy(path: Path, column: str, separator: str = ";") -> CodedHierarchy:
    """Read an ARX hierarchy file: one row per value, levels from the value up to ``*``."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = [r for r in csv.reader(handle, delimiter=separator) if r]
    except FileNotFoundError:
        raise PolicyError(f"hierarchy file of column {column!r} not found: {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PolicyError(f"{path}: unreadable hierarchy file ({type(exc).__name__})") from None
    if not rows:
        raise PolicyError(f"{path}: hierarchy file is empty")
    width = len(rows[0])
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise PolicyError(f"{path}: line {number} has {len(row)} levels, line 1 has {width}")
    if any(row[-1] != TOP for row in rows) or width < 2:
        rows = [[*row, TOP] for row in rows]  # ARX files end in '*'; add it if one does not
    domain = [row[0] for row in rows]
    if len(set(domain)) != len(domain):
        raise PolicyError(f"{path}: a value appears on two lines")
    return _coded(column, domain, rows)


def _interval_label(low: float, width: float, integer: bool) -> str:
    if integer and float(width).is_integer() and float(low).is_integer():
        return f"{int(low)}-{int(low + width - 1)}"
    return f"[{_num(low)}, {_num(low + width)})"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _interval_rows(values: list[float], spec: IntervalHierarchy, integer: bool) -> list[list[str]]:
    anchor = spec.bottom if spec.bottom is not None else 0.0
    rows = []
    for x in values:
        row = [_num(x)]
        for width in spec.widths:
            if spec.bottom is not None and x < spec.bottom:
                row.append(f"<{_num(spec.bottom)}")
            elif spec.top is not None and x >= spec.top:
                row.append(f">={_num(spec.top)}")
            else:
                low = anchor + math.floor((x - anchor) / width) * width
                row.append(_interval_label(low, width, integer))
        rows.append([*row, TOP])
    return rows


def _prefix_rows(values: list[str], spec: PrefixHierarchy) -> list[list[str]]:
    longest = max((len(v) for v in values), default=1)
    rows = []
    for value in values:
        row = [value]
        for masked in range(1, longest):
            kept = max(len(value) - masked, 0)
            row.append(value[:kept] + spec.mask_char * (len(value) - kept) if kept else TOP)
        rows.append([*row, TOP])
    return rows


def _date_rows(values: list[date], spec: DateHierarchy) -> list[list[str]]:
    formats = {"month": "%Y-%m", "year": "%Y"}
    return [
        [v.isoformat(), *(v.strftime(formats[unit]) for unit in spec.levels), TOP] for v in values
    ]


def build_hierarchy(
    column: str,
    values: Sequence[object],
    spec: Hierarchy | None,
    *,
    base: Path | None = None,
    integer: bool = False,
) -> CodedHierarchy:
    """The hierarchy of ``column`` over ``values`` (its distinct level-0 values).

    A file hierarchy brings its own domain: ``values`` must all be in it (see
    :func:`encode`). The other kinds are built over ``values``.
    """
    if isinstance(spec, FileHierarchy):
        path = Path(spec.path)
        if not path.is_absolute() and base is not None:
            path = base / path
        return read_arx_hierarchy(path, column, spec.separator)
    if isinstance(spec, IntervalHierarchy):
        numbers = sorted({float(v) for v in values if v is not None})  # type: ignore[arg-type]
        rows = _interval_rows(numbers, spec, integer)
        return _coded(column, [r[0] for r in rows], rows)
    if isinstance(spec, PrefixHierarchy):
        texts = sorted({str(v) for v in values if v is not None})
        return _coded(column, texts, _prefix_rows(texts, spec))
    if isinstance(spec, DateHierarchy):
        days: list[date] = sorted(
            {v.date() if isinstance(v, datetime) else v for v in values if isinstance(v, date)}
        )
        rows = _date_rows(days, spec)
        return _coded(column, [r[0] for r in rows], rows)
    texts = sorted({_text(v) for v in values if v is not None})
    return _coded(column, texts, [[t, TOP] for t in texts])


def _text(value: object) -> str:
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
