"""The optimal search equals the exhaustive search, for every metric and privacy model,
on random data sets small enough to enumerate; and its figures are the definitions."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from privacy.kanon import (
    METRICS,
    DistinctLDiversity,
    EntropyLDiversity,
    KAnonymity,
    Lattice,
    RecursiveCLDiversity,
    TCloseness,
    build_hierarchy,
    count_records,
)
from privacy.policy import IntervalHierarchy, PrefixHierarchy


def _data(seed: int, rows: int = 400) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "zip": [
                f"{z:05d}" for z in rng.choice([10115, 10117, 10243, 10245, 20095, 20097], rows)
            ],
            "sex": rng.choice(["F", "M"], rows),
            "disease": rng.choice(
                ["flu", "cold", "asthma", "cancer"], rows, p=[0.4, 0.3, 0.2, 0.1]
            ),
        }
    )


def _lattice(frame: pl.DataFrame, models: list, metric: str, limit: float) -> Lattice:
    counts = count_records(frame, ["age", "zip", "sex"], "disease")
    values = {c: counts.get_column(c).unique().to_list() for c in ("age", "zip", "sex")}
    hierarchies = [
        build_hierarchy(
            "age",
            [float(v) for v in values["age"]],
            IntervalHierarchy(kind="intervals", widths=[5, 10, 20]),
            integer=True,
        ),
        build_hierarchy("zip", values["zip"], PrefixHierarchy(kind="prefix")),
        build_hierarchy("sex", values["sex"], None),
    ]
    return Lattice(
        counts,
        hierarchies,
        models,
        max_suppression=limit,
        sensitive="disease",
        sensitive_domain=["asthma", "cancer", "cold", "flu"],
        metric=metric,
    )


def _overall(frame: pl.DataFrame) -> np.ndarray:
    domain = ["asthma", "cancer", "cold", "flu"]
    counts = frame.get_column("disease").value_counts()
    found = dict(zip(counts["disease"].to_list(), counts["count"].to_list(), strict=True))
    return np.array([found.get(v, 0) for v in domain])


MODELS = {
    "k": lambda f: [KAnonymity(4)],
    "distinct-l": lambda f: [KAnonymity(3), DistinctLDiversity(3)],
    "entropy-l": lambda f: [KAnonymity(3), EntropyLDiversity(2.5)],
    "recursive": lambda f: [KAnonymity(2), RecursiveCLDiversity(3, 2)],
    "t-equal": lambda f: [KAnonymity(2), TCloseness(0.2, _overall(f), "equal")],
    "t-ordered": lambda f: [KAnonymity(2), TCloseness(0.15, _overall(f), "ordered")],
}


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("models", list(MODELS))
@pytest.mark.parametrize("limit", [0.0, 0.04])
def test_optimal_equals_exhaustive(metric: str, models: str, limit: float) -> None:
    frame = _data(seed=len(metric) * 31 + len(models))
    lattice = _lattice(frame, MODELS[models](frame), metric, limit)
    fast, every = lattice.optimal(), lattice.exhaustive()
    assert fast.best.node == every.best.node
    assert fast.best.value == pytest.approx(every.best.value, rel=1e-12)


def test_discernibility_and_aecs_follow_their_definitions() -> None:
    frame = _data(seed=3)
    lattice = _lattice(frame, [KAnonymity(4)], "discernibility", 0.05)
    node = lattice.optimal().best.node
    e = lattice.evaluate(node)
    # recount by hand: classes of the generalized values, small ones suppressed
    labels = [h.labels[lvl] for h, lvl in zip(lattice.hierarchies, node, strict=True)]
    codes = lattice.group_classes(node)[0]
    sizes = np.bincount(codes, weights=lattice.counts).astype(int)
    kept = sizes[sizes >= 4]
    suppressed = int(sizes[sizes < 4].sum())
    assert e.value == (kept**2).sum() + suppressed * frame.height
    aecs = lattice.with_metric("aecs").evaluate(node).value
    assert aecs == pytest.approx((frame.height - suppressed) / len(kept))
    assert labels  # the node's levels name real labels


def test_loss_is_zero_at_the_bottom_and_one_at_the_top() -> None:
    frame = _data(seed=4)
    lattice = _lattice(frame, [KAnonymity(1)], "loss", 0.0)
    assert lattice.evaluate(lattice.bottom).value == 0.0
    assert lattice.evaluate(lattice.top).value == pytest.approx(1.0)
    assert lattice.optimal().best.node == lattice.bottom  # k=1 needs no generalization


def test_non_uniform_entropy_is_zero_at_the_bottom() -> None:
    frame = _data(seed=5)
    lattice = _lattice(frame, [KAnonymity(1)], "entropy", 0.0)
    assert lattice.evaluate(lattice.bottom).value == pytest.approx(0.0, abs=1e-9)
    assert lattice.evaluate(lattice.top).value > 0


@pytest.mark.parametrize("metric", METRICS)
def test_every_metric_of_a_node_agrees_with_the_search_that_uses_it(metric: str) -> None:
    frame = _data(seed=11)
    lattice = _lattice(frame, [KAnonymity(3)], metric, 0.05)
    node = lattice.optimal().best.node
    assert lattice.measures(node)[metric] == pytest.approx(lattice.evaluate(node).value)


def test_classification_is_the_share_off_the_class_majority_plus_the_suppressed() -> None:
    frame = _data(seed=13)
    lattice = _lattice(frame, [KAnonymity(4)], "classification", 0.05)
    node = lattice.optimal().best.node
    e = lattice.evaluate(node)
    codes = lattice.group_classes(node)[0]  # per row of the counts, its class
    counts = count_records(frame, ["age", "zip", "sex"], "disease")
    by_class = (
        counts.with_columns(pl.Series("class", codes))
        .group_by("class", "disease")
        .agg(pl.col("__records").sum())
    )
    sizes = by_class.group_by("class").agg(pl.col("__records").sum().alias("size"))
    majority = by_class.group_by("class").agg(pl.col("__records").max().alias("top"))
    table = sizes.join(majority, on="class")
    kept = table.filter(pl.col("size") >= 4)
    expected = (frame.height - int(kept["top"].sum())) / frame.height
    assert e.value == pytest.approx(expected)
    assert 0 < e.value < 1


def test_classification_keeps_the_quasi_identifier_that_predicts_the_target() -> None:
    rng = np.random.default_rng(7)
    rows = 600
    sex = rng.choice(["F", "M"], rows)
    frame = pl.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "zip": [f"{z:05d}" for z in rng.choice([10115, 10117, 20095, 20097], rows)],
            "sex": sex,
            # the target follows sex, not age or zip
            "disease": np.where(sex == "F", "flu", "cold"),
        }
    )
    lattice = _lattice(frame, [KAnonymity(5)], "classification", 0.0)
    best = lattice.optimal().best
    assert best.node[2] == 0  # sex kept exact: the target stays predictable
    assert best.value == pytest.approx(0.0)
    # and the exhaustive search agrees
    assert lattice.with_metric("classification").exhaustive().best.node == best.node


def _predictive(seed: int, rows: int = 500) -> pl.DataFrame:
    """The disease follows age band and ZIP region, with noise: the classification
    value then differs from node to node, and pruning has something to cut."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    zips = rng.choice([10115, 10117, 10243, 10245, 20095, 20097], rows)
    sex = rng.choice(["F", "M"], rows)
    domain = np.array(["asthma", "cancer", "cold", "flu"])
    signal = (age // 15 + (zips // 10000) + (sex == "F")) % 4
    noisy = np.where(rng.random(rows) < 0.25, rng.integers(0, 4, rows), signal)
    return pl.DataFrame(
        {"age": age, "zip": [f"{z:05d}" for z in zips], "sex": sex, "disease": domain[noisy]}
    )


@pytest.mark.parametrize("models", list(MODELS))
@pytest.mark.parametrize("limit", [0.0, 0.04])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_classification_optimal_equals_exhaustive_on_a_predictable_target(
    models: str, limit: float, seed: int
) -> None:
    frame = _predictive(seed)
    lattice = _lattice(frame, MODELS[models](frame), "classification", limit)
    fast, every = lattice.optimal(), lattice.exhaustive()
    assert fast.best.node == every.best.node
    assert fast.best.value == pytest.approx(every.best.value, rel=1e-12)
