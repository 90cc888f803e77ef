"""l-diversity, t-closeness and Mondrian on Adult, each confirmed by an independent
re-count of the published output: a polars group-by of the generalized
quasi-identifiers, with the figures computed here, not by the library."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from privacy.kanon import anonymize
from privacy.policy import Policy, load_policy, policy_from_dict

from .conftest import QIS

SENSITIVE = "salary-class"


def _policy(adult_dir: Path, **privacy: Any) -> Policy:
    base = load_policy(adult_dir / "adult.yaml")
    data = base.model_dump(mode="json")
    data["privacy"] = {**data["privacy"], **privacy}
    policy = policy_from_dict(data)
    policy._source = base.source  # hierarchy files resolve beside the policy
    return policy


def _classes(out: pl.DataFrame, source: pl.DataFrame | None = None) -> pl.DataFrame:
    # t-closeness compares with the distribution of the data set as given (as ARX does)
    overall = (out if source is None else source).get_column(SENSITIVE).value_counts(normalize=True)
    q = dict(zip(overall[SENSITIVE].to_list(), overall["proportion"].to_list(), strict=True))
    rich = sorted(q)[0]  # '<=50K'
    return (
        out.group_by(QIS)
        .agg(
            pl.len().alias("size"),
            pl.col(SENSITIVE).n_unique().alias("distinct"),
            (pl.col(SENSITIVE) == rich).mean().alias("p"),
        )
        .with_columns(
            # two sensitive values: every EMD variant is |p - q| of either value
            (pl.col("p") - q[rich]).abs().alias("emd"),
            (-pl.col("p") * pl.col("p").log() - (1 - pl.col("p")) * (1 - pl.col("p")).log())
            .fill_nan(0.0)
            .alias("entropy"),
        )
    )


@pytest.mark.parametrize(("variant", "l"), [("distinct", 2), ("entropy", 1.7)])
def test_l_diversity_on_adult(
    adult_dir: Path,
    adult_frame: pl.DataFrame,
    variant: str,
    l: float,  # noqa: E741
) -> None:
    # two sensitive values: entropy l = 2 would need every class split exactly in half
    policy = _policy(adult_dir, l_diversity={"variant": variant, "l": l})
    out, result = anonymize(adult_frame, policy)
    classes = _classes(out)
    assert classes["size"].min() >= 5
    assert classes["distinct"].min() >= 2
    if variant == "entropy":
        assert classes["entropy"].min() >= math.log(l) - 1e-9
    assert result.achieved["l_achieved"] == classes["distinct"].min()
    assert adult_frame.height - out.height == result.suppressed <= 0.05 * adult_frame.height
    assert result.classes == classes.height


def test_recursive_cl_diversity_on_adult(adult_dir: Path, adult_frame: pl.DataFrame) -> None:
    # 22,654 of 30,162 earn <=50K: c must exceed 22,654 / 7,508 for the data set as a whole
    policy = _policy(adult_dir, l_diversity={"variant": "recursive", "l": 2, "c": 4})
    out, _ = anonymize(adult_frame, policy)
    counts = out.group_by([*QIS, SENSITIVE]).len()
    ranked = counts.group_by(QIS).agg(pl.col("len").sort(descending=True))
    for values in ranked.get_column("len").to_list():
        assert len(values) >= 2 and values[0] < 4 * sum(values[1:])


@pytest.mark.parametrize("distance", ["equal", "hierarchical"])
def test_t_closeness_on_adult(adult_dir: Path, adult_frame: pl.DataFrame, distance: str) -> None:
    policy = _policy(adult_dir, t_closeness={"t": 0.15, "distance": distance})
    out, result = anonymize(adult_frame, policy)
    classes = _classes(out, adult_frame)
    assert classes["emd"].max() <= 0.15 + 1e-9
    assert result.achieved["t_achieved"] == pytest.approx(classes["emd"].max(), abs=1e-6)
    assert classes["size"].min() >= 5


def test_mondrian_on_adult(adult_dir: Path, adult_frame: pl.DataFrame) -> None:
    policy = _policy(adult_dir, algorithm="mondrian", l_diversity={"variant": "distinct", "l": 2})
    out, result = anonymize(adult_frame, policy)
    assert out.height == adult_frame.height and result.suppressed == 0
    classes = _classes(out)
    assert classes["size"].min() >= 5 and classes["distinct"].min() >= 2
    assert result.node is None and result.classes == classes.height
    optimal, _ = anonymize(
        adult_frame, _policy(adult_dir, l_diversity={"variant": "distinct", "l": 2})
    )
    # multidimensional partitions keep far more detail than one full-domain node
    assert classes.height > 5 * _classes(optimal).height
    ages = out.get_column("age").unique().to_list()
    assert any("-" in a for a in ages)  # ranges, e.g. 35-41
    # every original age lies in its published range
    both = pl.DataFrame({"raw": adult_frame.get_column("age"), "pub": out.get_column("age")})
    bounds = both.with_columns(
        pl.col("pub").str.split("-").list.first().cast(pl.Int64).alias("lo"),
        pl.col("pub").str.split("-").list.last().cast(pl.Int64).alias("hi"),
    )
    assert bounds.filter((pl.col("raw") < pl.col("lo")) | (pl.col("raw") > pl.col("hi"))).is_empty()


def test_masked_suppression_keeps_every_record_with_stars(
    adult_dir: Path, adult_frame: pl.DataFrame
) -> None:
    policy = _policy(adult_dir, suppressed_records="mask")
    out, result = anonymize(adult_frame, policy)
    assert out.height == adult_frame.height and result.suppressed == 105
    starred = out.filter(pl.all_horizontal([pl.col(c) == "*" for c in QIS]))
    assert starred.height >= 105
    assert result.achieved["k_achieved"] >= 5
