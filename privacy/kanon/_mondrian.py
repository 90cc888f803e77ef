"""Strict multidimensional Mondrian partitioning (LeFevre, DeWitt, Ramakrishnan 2006).

The records (as weighted distinct combinations) are split recursively: at each step the
quasi-identifier with the widest normalized span is cut at its weighted median, if both
halves satisfy every privacy model; otherwise the next attribute is tried, and a
partition no attribute can cut is final. Every final partition satisfies the models by
construction, so nothing is suppressed. Values are then published as ranges (numbers,
``30-41``) or sets (categories, ``{Divorced|Widowed}``; the hierarchy's label where the
set is exactly the values under one label).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from privacy.errors import PrivacyGuaranteeError
from privacy.kanon._hierarchy import CodedHierarchy
from privacy.kanon._models import PrivacyModel

__all__ = ["MondrianResult", "mondrian"]


@dataclass
class MondrianResult:
    partition: npt.NDArray[np.int64]  # per distinct combination: its partition
    sizes: npt.NDArray[np.int64]  # records per partition
    labels: list[list[str]]  # per partition, per attribute: the published label
    covered: npt.NDArray[np.float64]  # per partition, per attribute: domain values covered


def _ordinal(h: CodedHierarchy) -> tuple[npt.NDArray[np.int64], list[int], bool]:
    """(rank of each level-0 code, codes in rank order, numeric?): numbers in numeric
    order, categories in hierarchy order (the values under a label are contiguous)."""
    try:
        numbers = [float(v) for v in h.domain]
    except ValueError:
        order = list(range(len(h.domain)))
        numeric = False
    else:
        order = sorted(range(len(h.domain)), key=lambda c: numbers[c])
        numeric = True
    rank = np.empty(len(h.domain), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank, order, numeric


def _acceptable(
    models: Sequence[PrivacyModel],
    n: int,
    hist: npt.NDArray[np.int64] | None,
) -> bool:
    sizes = np.array([n], dtype=np.int64)
    block = None if hist is None else hist.reshape(1, -1)
    return all(bool(m.satisfied(sizes, block)[0]) for m in models)


def mondrian(
    codes: npt.NDArray[np.int32],
    counts: npt.NDArray[np.int64],
    sensitive: tuple[npt.NDArray[np.integer], int] | None,
    hierarchies: Sequence[CodedHierarchy],
    models: Sequence[PrivacyModel],
) -> MondrianResult:
    """Partition the distinct combinations (``codes``: rows x attributes, level-0 codes,
    with ``counts`` records each); ``sensitive``, where a model needs it: each row's
    sensitive value code and the number of codes. A half's histogram is counted from
    those when it is tested, so no rows x values matrix is ever held."""
    ordinals = [_ordinal(h) for h in hierarchies]
    ranks = np.stack([o[0][codes[:, i]].astype(np.int32) for i, o in enumerate(ordinals)], axis=1)
    spans = np.array([max(len(h.domain) - 1, 1) for h in hierarchies], dtype=np.float64)
    if not _acceptable(models, int(counts.sum()), _histogram(sensitive, counts, None)):
        raise PrivacyGuaranteeError(
            "anonymize: the whole data set does not satisfy the privacy models; nothing "
            "was published",
            guarantee="anonymity",
            required="k, l, t",
            achieved="not even as one class",
        )

    def split(rows: npt.NDArray[np.int64]) -> list[npt.NDArray[np.int64]] | None:
        part = ranks[rows]
        width = (part.max(axis=0) - part.min(axis=0)) / spans
        for attr in np.argsort(-width, kind="stable"):
            if width[attr] == 0:
                return None
            values = part[:, attr]
            cut = _median(values, counts[rows])
            if cut is None:
                continue
            halves = [rows[values <= cut], rows[values > cut]]
            if all(
                _acceptable(models, int(counts[h].sum()), _histogram(sensitive, counts, h))
                for h in halves
            ):
                return halves
        return None

    final: list[npt.NDArray[np.int64]] = []
    stack = [np.arange(len(counts))]
    while stack:
        rows = stack.pop()
        halves = split(rows)
        if halves is None:
            final.append(rows)
        else:
            stack += halves[::-1]
    return _result(final, ranks, counts, ordinals, hierarchies)


def _histogram(
    sensitive: tuple[npt.NDArray[np.integer], int] | None,
    counts: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64] | None,
) -> npt.NDArray[np.int64] | None:
    """Records per sensitive value over ``rows`` (all rows: None)."""
    if sensitive is None:
        return None
    codes, size = sensitive
    if rows is not None:
        codes, counts = codes[rows], counts[rows]
    return np.bincount(codes, weights=counts, minlength=size).astype(np.int64)


def _median(values: npt.NDArray[np.int32], weights: npt.NDArray[np.int64]) -> int | None:
    """The weighted median value, as a cut point with values on both sides; None when
    all values are equal."""
    uniq, inverse = np.unique(values, return_inverse=True)
    if len(uniq) < 2:
        return None
    per_value = np.bincount(inverse.reshape(-1), weights=weights)
    cumulative = np.cumsum(per_value)
    at = int(np.searchsorted(cumulative, cumulative[-1] / 2))
    at = min(at, len(uniq) - 2)  # keep at least one value on the right
    return int(uniq[at])


def _result(
    final: list[npt.NDArray[np.int64]],
    ranks: npt.NDArray[np.int32],
    counts: npt.NDArray[np.int64],
    ordinals: list[tuple[npt.NDArray[np.int64], list[int], bool]],
    hierarchies: Sequence[CodedHierarchy],
) -> MondrianResult:
    partition = np.empty(len(counts), dtype=np.int64)
    sizes = np.zeros(len(final), dtype=np.int64)
    labels: list[list[str]] = []
    covered = np.zeros((len(final), len(hierarchies)))
    for p, rows in enumerate(final):
        partition[rows] = p
        sizes[p] = counts[rows].sum()
        row_labels = []
        for i, (h, (_, order, numeric)) in enumerate(zip(hierarchies, ordinals, strict=True)):
            present = np.unique(ranks[rows, i])
            low, high = int(present[0]), int(present[-1])
            if numeric:
                covered[p, i] = high - low + 1
                first, last = h.domain[order[low]], h.domain[order[high]]
                row_labels.append(first if low == high else f"{first}-{last}")
            else:
                covered[p, i] = len(present)
                row_labels.append(_set_label(h, [order[r] for r in present]))
        labels.append(row_labels)
    return MondrianResult(partition, sizes, labels, covered)


def _set_label(h: CodedHierarchy, codes: list[int]) -> str:
    if len(codes) == 1:
        return h.domain[codes[0]]
    wanted = set(codes)
    for level in range(1, h.height):
        label_codes = {int(h.codes[level][c]) for c in codes}
        if len(label_codes) == 1:
            (label,) = label_codes
            under = {c for c in range(len(h.domain)) if h.codes[level][c] == label}
            if under == wanted:
                return h.labels[level][label]
            break
    return "{" + "|".join(sorted(h.domain[c] for c in codes)) + "}"
