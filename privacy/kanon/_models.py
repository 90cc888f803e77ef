"""Privacy models, evaluated for every equivalence class of a generalization at once.

Each model takes the class sizes (``n``, one per class) and, where it needs them, the
class histograms of the sensitive attribute (``hist``, classes x sensitive values) and
returns which classes satisfy it. Classes that fail any model are suppressed; the
generalization is acceptable when the suppressed records stay within the limit.

- k-anonymity: every class has at least k records.
- distinct l-diversity: at least l distinct sensitive values in the class.
- entropy l-diversity: the entropy of the class's sensitive values is at least log(l).
- recursive (c,l)-diversity: r1 < c (r_l + … + r_m), the r_i the class's sensitive value
  counts in descending order (Machanavajjhala et al. 2007).
- t-closeness: the Earth Mover's Distance between the class's sensitive distribution and
  the whole data set's is at most t (Li, Li, Venkatasubramanian 2007), with the equal
  distance (categories), the ordered distance (numbers) or the hierarchical distance
  (categories with a hierarchy).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from privacy.kanon._hierarchy import CodedHierarchy

__all__ = [
    "DistinctLDiversity",
    "EntropyLDiversity",
    "KAnonymity",
    "PrivacyModel",
    "RecursiveCLDiversity",
    "TCloseness",
]

Sizes = npt.NDArray[np.int64]
Hist = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
_TOL = 1e-9  # floating-point slack in the comparisons against l and t


class PrivacyModel(ABC):
    """One privacy model: which classes of a generalization satisfy it."""

    needs_histogram = False
    # Whether a class failing the model means every part of it fails too (k-anonymity,
    # distinct l-diversity). Then, with suppression, "accepted" is monotone over the
    # lattice: a node that fails has no generalization below it that passes. Entropy and
    # recursive l-diversity and t-closeness lack this (a failing class can hold a passing
    # part), so the search does not rely on it for them.
    monotone = False

    def min_class_size(self) -> int:
        """The fewest records a class that satisfies the model can have."""
        return 1

    @abstractmethod
    def satisfied(self, n: Sizes, hist: Hist | None) -> Mask:
        """Per class: whether it satisfies the model (``hist`` where it needs one)."""


@dataclass(frozen=True)
class KAnonymity(PrivacyModel):
    k: int
    monotone = True

    def min_class_size(self) -> int:
        return self.k

    def satisfied(self, n: Sizes, hist: Hist | None) -> Mask:
        return n >= self.k


@dataclass(frozen=True)
class DistinctLDiversity(PrivacyModel):
    l: float  # noqa: E741 - the model's own name
    needs_histogram = True
    monotone = True

    def min_class_size(self) -> int:
        return math.ceil(self.l - _TOL)

    def satisfied(self, n: Sizes, hist: Hist | None) -> Mask:
        assert hist is not None
        return np.asarray((hist > 0).sum(axis=1) >= self.l - _TOL)


def class_entropy(hist: Hist) -> npt.NDArray[np.float64]:
    """Natural-log entropy of each class's sensitive values."""
    n = hist.sum(axis=1, keepdims=True).astype(np.float64)
    p = np.divide(hist, n, out=np.zeros(hist.shape), where=n > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return np.asarray(terms.sum(axis=1), dtype=np.float64)


@dataclass(frozen=True)
class EntropyLDiversity(PrivacyModel):
    l: float  # noqa: E741
    needs_histogram = True

    def min_class_size(self) -> int:
        return math.ceil(self.l - _TOL)

    def satisfied(self, n: Sizes, hist: Hist | None) -> Mask:
        assert hist is not None
        return np.asarray(class_entropy(hist) >= np.log(self.l) - _TOL)


@dataclass(frozen=True)
class RecursiveCLDiversity(PrivacyModel):
    c: float
    l: float  # noqa: E741
    needs_histogram = True

    def satisfied(self, n: Sizes, hist: Hist | None) -> Mask:
        assert hist is not None
        ranked = -np.sort(-hist, axis=1)
        level = int(self.l)
        if level > ranked.shape[1]:
            return np.zeros(len(n), dtype=bool)
        tail = ranked[:, level - 1 :].sum(axis=1)
        return np.asarray(ranked[:, 0] < self.c * tail)


class TCloseness(PrivacyModel):
    """EMD between each class's sensitive distribution and the overall one, at most t."""

    needs_histogram = True

    def __init__(
        self,
        t: float,
        overall: Hist,
        distance: str,
        hierarchy: CodedHierarchy | None = None,
    ) -> None:
        self.t = t
        self.distance = distance
        total = overall.sum()
        self.q = overall / total if total else overall.astype(np.float64)
        self.hierarchy = hierarchy

    def distances(self, hist: Hist) -> npt.NDArray[np.float64]:
        n = hist.sum(axis=1, keepdims=True).astype(np.float64)
        p = np.divide(hist, n, out=np.zeros(hist.shape), where=n > 0)
        diff = p - self.q
        m = diff.shape[1]
        if self.distance == "equal" or m < 2:
            return np.asarray(0.5 * np.abs(diff).sum(axis=1))
        if self.distance == "ordered":
            return np.asarray(np.abs(np.cumsum(diff, axis=1)[:, :-1]).sum(axis=1) / (m - 1))
        return self._hierarchical(diff)

    def _hierarchical(self, diff: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Li et al.'s hierarchical EMD: at each inner node N of height h(N), the mass
        that must cross it, min(positive extra, negative extra), costs h(N)/H."""
        assert self.hierarchy is not None
        h = self.hierarchy
        height = h.height - 1
        extra = diff  # per level-0 value: p - q
        cost = np.zeros(diff.shape[0])
        for level in range(1, h.height):
            codes = h.codes[level]
            groups = h.cardinality(level)
            pos = np.zeros((diff.shape[0], groups))
            neg = np.zeros((diff.shape[0], groups))
            np.add.at(pos.T, codes, np.clip(extra, 0, None).T)
            np.add.at(neg.T, codes, np.clip(-extra, 0, None).T)
            cost += (level / height) * np.minimum(pos, neg).sum(axis=1)
            # what is left to move above this level is the net extra per node, spread back
            net = pos - neg
            extra = np.zeros_like(diff)
            first = np.unique(codes, return_index=True)[1]
            extra[:, first] = net[:, codes[first]]
        return cost

    def satisfied(self, n: Sizes, hist: Hist | None) -> Mask:
        assert hist is not None
        return np.asarray(self.distances(hist) <= self.t + _TOL)
