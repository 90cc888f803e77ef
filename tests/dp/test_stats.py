"""DP statistics (issue 32): the noise drawn is the noise stated (200 repetitions), the
ε charged is the ε the queries add up to, every declared key is released, a key or a
bound read from the data is refused, and over budget nothing is drawn."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml

from privacy.dp import BudgetLedger, DataIdentity, plan_statistics, release_statistics
from privacy.dp._noise import Accountant, epsilon_of_rho, rho_for_epsilon
from privacy.dp._stats import exact_cells, measure_queries
from privacy.errors import BudgetExhausted, PolicyError
from privacy.policy import Policy, policy_from_dict
from privacy.synth import synthesize

DEMO = Path(__file__).resolve().parents[2] / "policies" / "demo.yaml"
REPETITIONS = 200


def _policy(**statistics: Any) -> Policy:
    data = yaml.safe_load(DEMO.read_text())
    data["statistics"] = {**data["statistics"], **statistics}
    return policy_from_dict(data, source=DEMO)


@pytest.fixture(scope="module")
def people() -> pl.DataFrame:
    return synthesize(2000, seed=9)


def _errors(policy: Policy, people: pl.DataFrame, zcdp: bool) -> tuple[list[Any], list[Any]]:
    plans = plan_statistics(policy)
    exact = [exact_cells(people, p) for p in plans]
    spec = policy.statistics
    assert spec is not None
    allowance = rho_for_epsilon(spec.epsilon, spec.delta) if zcdp else spec.epsilon
    runs = [
        measure_queries(exact, plans, spec, Accountant("zcdp" if zcdp else "pure", allowance))
        for _ in range(REPETITIONS)
    ]
    return exact, runs


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_the_measured_error_is_the_stated_noise_over_200_repetitions(
    mechanism: str, people: pl.DataFrame
) -> None:
    """For every count and sum query, the standard deviation of (released − exact) over
    200 repetitions and all cells agrees with the stated one within sampling error
    (a halved scale gives a ratio near 0.5, far outside), and the 95 % intervals cover
    the exact value about 95 % of the time."""
    policy = _policy(
        mechanism=mechanism,
        queries=[
            {"name": "by_sex_race", "kind": "count", "by": ["sex", "race"]},
            {"name": "hours", "kind": "sum", "column": "hours_per_week", "by": ["sex"]},
        ],
    )
    exact, runs = _errors(policy, people, mechanism == "gaussian")
    for index, (counts, sums) in enumerate(exact):
        truth = counts if index == 0 else sums
        released = np.array([run[index]["values"] for run in runs])
        stated = runs[0][index]["std"]
        errors = (released - truth).ravel()
        # the sample sd of n draws has relative sd about sqrt((kurtosis - 1) / (4 n))
        kurtosis = 6.0 if mechanism == "laplace" else 3.0
        tolerance = 4 * math.sqrt((kurtosis - 1) / (4 * errors.size))
        assert abs(errors.std() / stated - 1) < tolerance, (errors.std(), stated)
        assert abs(errors.mean()) < 4 * stated / math.sqrt(errors.size)
        low = np.array([run[index]["low"] for run in runs])
        high = np.array([run[index]["high"] for run in runs])
        covered = ((low <= truth) & (truth <= high)).mean()
        assert 0.92 <= covered <= 0.98


def test_laplace_queries_spend_the_epsilon_they_add_up_to(people: pl.DataFrame) -> None:
    """Independently: each Laplace draw of sensitivity Δ at scale b costs Δ/b; the
    release's ε is their sum, the policy's ε."""
    policy = _policy()
    plans = plan_statistics(policy)
    accountant = Accountant("pure", 0.5)
    measured = measure_queries(
        [exact_cells(people, p) for p in plans], plans, policy.statistics, accountant
    )  # type: ignore[arg-type]
    spent = 0.0
    for m in measured:
        plan = m["plan"]
        if plan.query.kind in ("count", "mean"):
            spent += 1.0 / (m["count_scale"] if plan.query.kind == "mean" else m["scale"])
        if plan.query.kind in ("sum", "mean"):
            spent += plan.sensitivity / m["scale"]
    assert spent == pytest.approx(0.5, rel=1e-6)
    assert accountant.figures(0.0)["epsilon"] == pytest.approx(spent, rel=1e-9)


def test_gaussian_queries_spend_the_rho_of_their_epsilon(people: pl.DataFrame) -> None:
    policy = _policy(mechanism="gaussian", epsilon=1.0)
    plans = plan_statistics(policy)
    rho = rho_for_epsilon(1.0, 1e-5)
    accountant = Accountant("zcdp", rho)
    measure_queries([exact_cells(people, p) for p in plans], plans, policy.statistics, accountant)  # type: ignore[arg-type]
    spent = sum(e["loss"] for e in accountant.log)
    assert spent == pytest.approx(rho, rel=1e-6) and spent <= rho * (1 + 1e-9)
    assert epsilon_of_rho(spent, 1e-5) <= 1.0 + 1e-9


def test_every_declared_key_is_released_even_with_no_one_in_it(
    people: pl.DataFrame, ring: Any, tmp_path: Path
) -> None:
    only_white = people.filter(pl.col("race") == "White")
    policy = _policy(queries=[{"name": "by_race", "kind": "count", "by": ["race"]}])
    release = release_statistics(
        only_white, policy, run_id="r", ledger=BudgetLedger(tmp_path / "l.jsonl", ring),
        data=DataIdentity.of_frame(only_white),
    )  # fmt: skip
    groups = release.table.get_column("group").to_list()
    assert groups == [f"race={r}" for r in policy.columns["race"].domain.categories]  # type: ignore[union-attr]
    assert set(release.table.columns) >= {
        "value",
        "noise_scale",
        "noise_std",
        "ci95_low",
        "ci95_high",
    }


@pytest.mark.parametrize(
    ("queries", "message"),
    [
        (
            [{"name": "q", "kind": "count", "by": ["zip"]}],
            r"statistics\.queries\.0\.by: column 'zip' has no declared domain",
        ),
        ([{"name": "q", "kind": "sum", "column": "hours_per_week", "by": ["workclass"]}], None),
    ],
)
def test_a_group_key_or_bound_read_from_the_data_is_refused(
    queries: Any, message: str | None
) -> None:
    if message is None:  # hours_per_week declares bounds: allowed
        assert plan_statistics(_policy(queries=queries))[0].bounds == (0.0, 100.0)
        return
    with pytest.raises(PolicyError, match=message):
        plan_statistics(_policy(queries=queries))


def test_a_sum_without_declared_bounds_is_refused() -> None:
    data = yaml.safe_load(DEMO.read_text())
    del data["columns"]["hours_per_week"]["domain"]
    data["statistics"]["queries"] = [{"name": "q", "kind": "sum", "column": "hours_per_week"}]
    with pytest.raises(
        PolicyError, match=r"statistics\.queries\.0\.bounds: .* add statistics\.queries\.0\.bounds"
    ):
        plan_statistics(policy_from_dict(data, source=DEMO))


def test_over_budget_nothing_is_drawn_and_the_ledger_is_unchanged(
    people: pl.DataFrame, ring: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = _policy(epsilon=0.5)
    ledger = BudgetLedger(tmp_path / "l.jsonl", ring)
    data = DataIdentity.of_frame(people, "demo")
    ledger.charge(
        ledger.identify(data, people, policy), epsilon=2.8, delta=0.0, budget=3.0, run_id="x"
    )
    before = ledger.path.read_bytes()
    drawn: list[str] = []
    monkeypatch.setattr(Accountant, "_spend", lambda self, loss, what, **_: drawn.append(what))
    with pytest.raises(BudgetExhausted):
        release_statistics(people, policy, run_id="r", ledger=ledger, data=data)
    assert drawn == [] and ledger.path.read_bytes() == before
