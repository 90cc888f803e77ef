"""Hierarchies (ARX files, intervals, prefixes, dates), per-partition counting, the
privacy models on hand-worked examples, and the risk figures."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from privacy.errors import InputError, PolicyError
from privacy.kanon import (
    KAnonymity,
    Lattice,
    RecursiveCLDiversity,
    TCloseness,
    build_hierarchy,
    count_records,
    merge_counts,
    read_arx_hierarchy,
    risk_figures,
)
from privacy.policy import DateHierarchy, IntervalHierarchy, PrefixHierarchy


def _labels(h, value: str) -> list[str]:
    code = h.domain.index(value)
    return [h.labels[level][h.codes[level][code]] for level in range(h.height)]


def test_arx_file(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("39;35-39;30-39;*\n41;40-44;40-49;*\n33;30-34;30-39;*")  # no final newline
    h = read_arx_hierarchy(path, "age")
    assert h.height == 4 and sorted(h.domain) == ["33", "39", "41"]
    assert _labels(h, "39") == ["39", "35-39", "30-39", "*"]
    assert h.cardinality(2) == 2 and h.cardinality(3) == 1


def test_arx_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a;x;*\nb;*\n")
    with pytest.raises(PolicyError, match=r"ragged\.csv: line 2 has 2 levels, line 1 has 3"):
        read_arx_hierarchy(ragged, "c")
    two_ways = tmp_path / "tree.csv"
    two_ways.write_text("a;x;P;*\nb;x;Q;*\n")
    with pytest.raises(PolicyError, match="generalizes to two different labels at level 2"):
        read_arx_hierarchy(two_ways, "c")
    with pytest.raises(PolicyError, match="not found"):
        read_arx_hierarchy(tmp_path / "missing.csv", "c")


def test_intervals_with_top_and_bottom_coding() -> None:
    spec = IntervalHierarchy(kind="intervals", widths=[5, 10], bottom=20, top=80)
    h = build_hierarchy("age", [17.0, 23.0, 39.0, 85.0], spec, integer=True)
    assert _labels(h, "23") == ["23", "20-24", "20-29", "*"]
    assert _labels(h, "39") == ["39", "35-39", "30-39", "*"]
    assert _labels(h, "17") == ["17", "<20", "<20", "*"]
    assert _labels(h, "85") == ["85", ">=80", ">=80", "*"]


def test_interval_widths_must_nest() -> None:
    with pytest.raises(ValueError, match="multiple of the one before"):
        IntervalHierarchy(kind="intervals", widths=[5, 12])


def test_prefix_and_dates() -> None:
    h = build_hierarchy("zip", ["10115", "10117", "20095"], PrefixHierarchy(kind="prefix"))
    assert _labels(h, "10117") == ["10117", "1011*", "101**", "10***", "1****", "*"]
    d = build_hierarchy("born", [date(1990, 5, 17), date(1990, 6, 1)], DateHierarchy(kind="dates"))
    assert _labels(d, "1990-05-17") == ["1990-05-17", "1990-05", "1990", "*"]


def test_a_value_missing_from_its_hierarchy_names_column_and_row(tmp_path: Path) -> None:
    path = tmp_path / "sex.csv"
    path.write_text("Male;*\nFemale;*\n")
    frame = pl.DataFrame({"sex": ["Male", "Female", "Male", "Other-SENTINEL"]})
    counts = count_records(frame, ["sex"])
    h = read_arx_hierarchy(path, "sex")
    with pytest.raises(
        InputError, match=r"column 'sex' row 4: value missing from its hierarchy"
    ) as e:
        Lattice(counts, [h], [KAnonymity(2)], max_suppression=0)
    assert "SENTINEL" not in str(e.value)


def test_counts_per_partition_merge_to_the_whole() -> None:
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {
            "a": rng.integers(0, 5, 1000),
            "b": rng.choice(["x", "y"], 1000),
            "s": rng.integers(0, 3, 1000),
        }
    )
    whole = count_records(frame, ["a", "b"], "s")
    parts = [
        count_records(frame.slice(start, 250), ["a", "b"], "s", row_offset=start)
        for start in range(0, 1000, 250)
    ]
    merged = merge_counts(parts)
    assert merged.sort(["a", "b", "s"]).equals(whole.sort(["a", "b", "s"]))


def test_hierarchical_emd_worked_examples(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("a;X;*\nb;X;*\nc;Y;*\nd;Y;*\n")
    h = read_arx_hierarchy(path, "s")
    order = [h.domain.index(v) for v in "abcd"]
    overall = np.array([25, 25, 25, 25])[np.argsort(order)]
    model = TCloseness(0.3, overall, "hierarchical", h)

    def hist(*counts: int) -> np.ndarray:
        row = np.zeros(4, dtype=np.int64)
        for value, count in zip("abcd", counts, strict=True):
            row[h.domain.index(value)] = count
        return row.reshape(1, -1)

    assert model.distances(hist(1, 1, 0, 0))[0] == pytest.approx(0.5)  # mass crosses the root
    assert model.distances(hist(1, 0, 1, 0))[0] == pytest.approx(0.25)  # only within X and Y
    assert model.distances(hist(1, 1, 1, 1))[0] == pytest.approx(0.0)
    assert list(
        model.satisfied(np.array([2, 2]), np.vstack([hist(1, 1, 0, 0), hist(1, 0, 1, 0)]))
    ) == [False, True]


def test_ordered_emd_and_recursive_diversity() -> None:
    ordered = TCloseness(1.0, np.array([1, 1, 1]), "ordered")
    # all mass at the lowest of three ordered values: (2/3 + 1/3) / 2
    assert ordered.distances(np.array([[3, 0, 0]]))[0] == pytest.approx(0.5)
    recursive = RecursiveCLDiversity(2, 2)
    assert list(recursive.satisfied(np.array([4, 5]), np.array([[2, 2], [4, 1]]))) == [True, False]


def test_risk_figures() -> None:
    figures = risk_figures(np.array([1, 2, 5, 10]), threshold=0.2)
    assert figures["prosecutor_highest"] == 1.0
    assert figures["prosecutor_average"] == pytest.approx(4 / 18, abs=1e-6)
    assert figures["marketer"] == pytest.approx(4 / 18, abs=1e-6)
    assert figures["records_above_threshold"] == pytest.approx(3 / 18, abs=1e-6)  # sizes 1, 2
