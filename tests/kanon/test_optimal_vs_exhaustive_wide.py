"""The optimal search equals the exhaustive search with 4 to 6 quasi-identifiers, where
its subset pruning (Incognito's projections, used for k-anonymity and distinct
l-diversity) comes into play: it needs at least 4. Every privacy model, hierarchical
t-closeness included, every metric and several suppression limits, on seeded random
data sets small enough to enumerate (a few thousand nodes each)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from privacy.errors import PrivacyGuaranteeError
from privacy.kanon import (
    METRICS,
    CodedHierarchy,
    DistinctLDiversity,
    EntropyLDiversity,
    KAnonymity,
    Lattice,
    PrivacyModel,
    RecursiveCLDiversity,
    SearchResult,
    TCloseness,
    build_hierarchy,
    count_records,
)
from privacy.policy import DateHierarchy, IntervalHierarchy, PrefixHierarchy

# ICD-like codes: a prefix hierarchy over them (C34 -> C3* -> C** -> *) is the sensitive
# attribute's hierarchy for the hierarchical distance; sorted, so domain order = code order
DIAGNOSES = ["C34", "C50", "J10", "J11", "J45", "K21"]
QIS = ["age", "zip", "sex", "born", "children", "job"]  # heights 5, 6, 2, 4, 4, 3
LIMITS = [0.0, 0.03, 0.1]


def _data(seed: int, rows: int = 400) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, rows)
    # the diagnosis depends on age, so some generalizations separate it and some do not
    diagnosis = np.minimum(rng.poisson(1.0 + (age - 18) / 25), len(DIAGNOSES) - 1)
    return pl.DataFrame(
        {
            "age": age,
            "zip": rng.choice(["10115", "10117", "10243", "10245", "20095", "20097"], rows),
            "sex": rng.choice(["F", "M"], rows),
            "born": [date(1990, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 700, rows)],
            "children": rng.integers(0, 8, rows),
            "job": rng.choice(["a1", "a2", "b1", "b2", "c1"], rows, p=[0.3, 0.1, 0.3, 0.2, 0.1]),
            "diagnosis": [DIAGNOSES[i] for i in diagnosis],
        }
    )


def _hierarchy(column: str, values: list[str]) -> CodedHierarchy:
    if column == "age":
        spec = IntervalHierarchy(kind="intervals", widths=[5, 10, 20])
        return build_hierarchy(column, [float(v) for v in values], spec, integer=True)
    if column == "children":
        spec = IntervalHierarchy(kind="intervals", widths=[2, 4])
        return build_hierarchy(column, [float(v) for v in values], spec, integer=True)
    if column == "born":
        days = [date.fromisoformat(v) for v in values]
        return build_hierarchy(column, days, DateHierarchy(kind="dates"))
    if column in ("zip", "job"):
        return build_hierarchy(column, values, PrefixHierarchy(kind="prefix"))
    return build_hierarchy(column, values, None)


SENSITIVE_HIERARCHY = build_hierarchy("diagnosis", DIAGNOSES, PrefixHierarchy(kind="prefix"))


def _overall(frame: pl.DataFrame) -> np.ndarray:
    found = dict(frame.get_column("diagnosis").value_counts().iter_rows())
    return np.array([found.get(v, 0) for v in DIAGNOSES], dtype=np.int64)


MODELS = {
    "k": lambda f: [KAnonymity(4)],
    "distinct-l": lambda f: [KAnonymity(2), DistinctLDiversity(3)],
    "entropy-l": lambda f: [KAnonymity(2), EntropyLDiversity(2.2)],
    "recursive-cl": lambda f: [KAnonymity(2), RecursiveCLDiversity(3, 2)],
    "t-equal": lambda f: [KAnonymity(3), TCloseness(0.3, _overall(f), "equal")],
    "t-ordered": lambda f: [KAnonymity(3), TCloseness(0.2, _overall(f), "ordered")],
    "t-hierarchical": lambda f: [
        KAnonymity(3),
        TCloseness(0.25, _overall(f), "hierarchical", SENSITIVE_HIERARCHY),
    ],
}
MONOTONE = ("k", "distinct-l")  # the models the subset pruning is used for


def _case_id(width: int, model: str, limit: float, metric: str) -> str:
    return f"{width}qi-{model}-{limit}-{metric}"


def _cases() -> list[tuple[int, str, float, str]]:
    """The monotone models with every metric, the others with the metrics in turn (each
    still sees every metric): about a hundred searches, a minute on two cores."""
    cases = []
    turn = itertools.cycle(METRICS)
    for width, model, limit in itertools.product((4, 5, 6), MODELS, LIMITS):
        metrics = METRICS if model in MONOTONE else (next(turn),)
        cases.extend((width, model, limit, metric) for metric in metrics)
    return cases


def _lattice(
    frame: pl.DataFrame, qis: list[str], models: list[PrivacyModel], metric: str, limit: float
) -> Lattice:
    counts = count_records(frame, qis, "diagnosis")
    hierarchies = [_hierarchy(q, counts.get_column(q).unique().to_list()) for q in qis]
    return Lattice(
        counts,
        hierarchies,
        models,
        max_suppression=limit,
        sensitive="diagnosis",
        sensitive_domain=DIAGNOSES,
        metric=metric,
    )


@dataclass(frozen=True)
class Found:
    node: tuple[int, ...]
    value: float
    suppressed: int
    evaluated: int
    rejected_by_projection: int


@dataclass(frozen=True)
class Outcome:
    """One case's two searches (None: nothing accepted), kept small: no class tables."""

    bottom: tuple[int, ...]
    top: tuple[int, ...]
    allowed: float  # records that may be suppressed
    fast: Found | None
    every: Found | None
    tie: bool  # the fast node, evaluated from the bottom, ties the exhaustive optimum


def _search(search: Callable[[], SearchResult]) -> Found | None:
    try:
        result = search()
    except PrivacyGuaranteeError:
        return None
    best = result.best
    rejected = int(result.stats.get("rejected_by_projection", 0))
    return Found(best.node, best.value, best.suppressed, result.evaluated, rejected)


@functools.cache
def _outcome(width: int, model: str, limit: float, metric: str) -> Outcome:
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(_case_id(width, model, limit, metric)))
    rng = np.random.default_rng(seed)
    # which quasi-identifiers, and in which order, vary with the case
    qis = [QIS[i] for i in rng.permutation(len(QIS))[:width]]
    frame = _data(seed)
    lattice = _lattice(frame, qis, MODELS[model](frame), metric, limit)
    fast, every = _search(lattice.optimal), _search(lattice.exhaustive)
    tie = False
    if fast is not None and every is not None:
        again = lattice.evaluate(fast.node)  # from the bottom, as the exhaustive search does
        tie = again.accepted and again.value == pytest.approx(every.value, rel=1e-9)
    return Outcome(lattice.bottom, lattice.top, limit * lattice.total, fast, every, tie)


CASES = _cases()
IDS = [_case_id(*c) for c in CASES]
# Non-uniform entropy: the fast search sums rolled-up floats in another order than the
# exhaustive one, so two nodes of equal value (a level that merges no class of this
# data) came out ~1e-13 apart and the tie-break by height went wrong; the search now
# ranks values to 12 significant digits. These are the cases that showed it.
FLOAT_TIES = {"4qi-recursive-cl-0.0-entropy", "5qi-distinct-l-0.1-entropy"}


@pytest.mark.parametrize(("width", "model", "limit", "metric"), CASES, ids=IDS)
def test_optimal_equals_exhaustive_with_4_to_6_quasi_identifiers(
    width: int, model: str, limit: float, metric: str
) -> None:
    outcome = _outcome(width, model, limit, metric)
    fast, every = outcome.fast, outcome.every
    if every is None:
        assert fast is None, "the optimal search accepted a node that no node passes"
        return
    assert fast is not None, f"the optimal search found nothing; exhaustive: {every.node}"
    # non-uniform entropy sums rolled-up floats: its figure carries ~1e-11 of noise
    assert fast.value == pytest.approx(every.value, rel=1e-12 if metric != "entropy" else 1e-9)
    assert outcome.tie  # its node, evaluated as the exhaustive search does, is optimal
    assert fast.node == every.node
    assert fast.suppressed <= outcome.allowed + 1e-9


@pytest.mark.parametrize("case", sorted(FLOAT_TIES))
def test_entropy_ties_are_broken_by_height_as_in_the_exhaustive_search(case: str) -> None:
    outcome = _outcome(*CASES[IDS.index(case)])
    assert outcome.fast is not None and outcome.every is not None
    assert outcome.fast.node == outcome.every.node


def test_the_cases_exercise_the_subset_pruning_and_find_inner_optima() -> None:
    """The comparison above means something only if the projections reject nodes where
    the models are monotone (and only there) and the optima are neither bottom nor top."""
    outcomes = {case: _outcome(*case) for case in CASES}
    found = {case: o for case, o in outcomes.items() if o.fast is not None}
    monotone = [o for case, o in found.items() if case[1] in MONOTONE]
    others = [o for case, o in found.items() if case[1] not in MONOTONE]
    assert all(o.fast is not None and o.fast.rejected_by_projection == 0 for o in others)
    rejecting = [o for o in monotone if o.fast is not None and o.fast.rejected_by_projection]
    assert len(rejecting) >= 0.9 * len(monotone)
    inner = [
        o for o in found.values() if o.fast is not None and o.fast.node not in (o.bottom, o.top)
    ]
    assert len(inner) >= 0.9 * len(outcomes)
    # the search pruned: what is compared is the pruning
    pruned = [
        o for o in found.values() if o.fast and o.every and o.fast.evaluated < o.every.evaluated
    ]
    assert len(pruned) >= 0.9 * len(outcomes)
