"""The optimal search reproduces the known optimum on Adult (ARX's Flash agrees), and the
slow tests derive every optimum of the table again by this project's exhaustive search
over the 6,480-node lattice."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from privacy.kanon import KAnonymity, Lattice, count_records, read_arx_hierarchy

from .conftest import QIS

# k -> {suppression limit: discernibility of the optimum}
KNOWN = {
    2: {0.0: 19_399_310, 0.01: 4_807_825, 0.05: 4_807_825},
    5: {0.0: 33_627_534, 0.01: 7_220_555, 0.05: 7_220_555},
    10: {0.0: 55_170_356, 0.01: 10_541_769, 0.05: 10_541_769},
    50: {0.0: 102_352_340, 0.01: 38_720_731, 0.05: 29_880_636},
    100: {0.0: 102_352_340, 0.01: 52_972_034, 0.05: 38_545_780},
}


@pytest.fixture(scope="module")
def adult_counts(adult_frame: pl.DataFrame) -> pl.DataFrame:
    return count_records(adult_frame, QIS)


@pytest.fixture(scope="module")
def hierarchies(adult_dir: Path) -> list:
    return [read_arx_hierarchy(adult_dir / f"adult_hierarchy_{q}.csv", q) for q in QIS]


@pytest.mark.parametrize(("k", "limit"), [(k, s) for k, row in KNOWN.items() for s in row], ids=str)
def test_optimal_discernibility_matches_the_known_optimum(
    adult_counts: pl.DataFrame, hierarchies: list, k: int, limit: float
) -> None:
    lattice = Lattice(adult_counts, hierarchies, [KAnonymity(k)], max_suppression=limit)
    assert len(lattice.nodes()) == 6480
    result = lattice.optimal()
    assert result.best.value == KNOWN[k][limit]
    assert result.best.suppressed <= limit * lattice.total


def test_k5_at_5_percent_suppresses_105_records_in_356_classes(
    adult_counts: pl.DataFrame, hierarchies: list
) -> None:
    best = Lattice(adult_counts, hierarchies, [KAnonymity(5)], max_suppression=0.05).optimal()
    assert (best.best.suppressed, best.best.classes) == (105, 356)


@pytest.mark.slow
@pytest.mark.parametrize(("k", "limit"), [(k, s) for k, row in KNOWN.items() for s in row], ids=str)
def test_the_known_optima_are_those_of_the_exhaustive_search(
    adult_counts: pl.DataFrame, hierarchies: list, k: int, limit: float
) -> None:
    """The table above, derived again: every node evaluated from the bottom (7 s each)."""
    lattice = Lattice(adult_counts, hierarchies, [KAnonymity(k)], max_suppression=limit)
    fast, every = lattice.optimal(), lattice.exhaustive()
    assert every.evaluated == 6480
    assert every.best.value == KNOWN[k][limit]
    assert fast.evaluated < every.evaluated  # it did prune
    assert (fast.best.node, fast.best.value) == (every.best.node, every.best.value)
    assert fast.best.suppressed == every.best.suppressed


@pytest.mark.slow
def test_optimal_equals_exhaustive_on_adult_with_loss(
    adult_counts: pl.DataFrame, hierarchies: list
) -> None:
    lattice = Lattice(
        adult_counts, hierarchies, [KAnonymity(5)], max_suppression=0.05, metric="loss"
    )
    fast, every = lattice.optimal(), lattice.exhaustive()
    assert fast.evaluated < every.evaluated  # it did prune
    assert (fast.best.node, fast.best.value) == (every.best.node, every.best.value)
