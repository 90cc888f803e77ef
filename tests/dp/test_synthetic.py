"""DP synthetic tables (issue 32): the accountant's ε checked against an independent
computation, the refusal before any measurement when over budget, the refusal of a
domain the policy does not declare, and the gate failing a table that copies rows."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml

from privacy.dp import BudgetLedger, DataIdentity, make_synthetic_table, plan_synthetic
from privacy.dp._domain import release_domain
from privacy.dp._noise import Accountant, epsilon_of_rho, rho_for_epsilon
from privacy.dp._synthetic import synthesize_codes
from privacy.dp._synthetic_release import gate_synthetic
from privacy.dp._table_check import marginal_distances, privacy_check
from privacy.errors import BudgetExhausted, PolicyError, PrivacyGuaranteeError
from privacy.policy import Policy, policy_from_dict
from privacy.synth import synthesize

DEMO = Path(__file__).resolve().parents[2] / "policies" / "demo.yaml"


def _policy(**synthetic: Any) -> Policy:
    data = yaml.safe_load(DEMO.read_text())
    data["synthetic"] = {**data["synthetic"], "rows": 800, "iterations": 300, **synthetic}
    return policy_from_dict(data, source=DEMO)


@pytest.fixture(scope="module")
def people() -> pl.DataFrame:
    return synthesize(1200, seed=5)


def _cks_epsilon(rho: float, delta: float) -> float:
    """ε of ρ-zCDP at δ by Canonne, Kamath & Steinke (2020), Proposition 12 (the
    conversion OpenDP implements), minimised over a fine grid of Rényi orders: written
    here from the paper, independently of OpenDP."""
    orders = np.exp(np.linspace(np.log(1.0001), np.log(2000.0), 200_000))
    values = orders * rho + (
        np.log(1 / delta) + (orders - 1) * np.log(1 - 1 / orders) - np.log(orders)
    ) / (orders - 1)
    return float(values.min())


@pytest.mark.parametrize("rho", [0.001, 0.0306, 0.5, 2.0])
def test_the_zcdp_conversion_is_the_papers_and_within_bun_steinkes_bound(rho: float) -> None:
    delta = 1e-5
    epsilon = epsilon_of_rho(rho, delta)
    assert epsilon == pytest.approx(_cks_epsilon(rho, delta), rel=1e-4)
    assert epsilon <= rho + 2 * math.sqrt(rho * math.log(1 / delta))  # Bun & Steinke 2016


def test_rho_for_a_target_epsilon_spends_it_and_no_more() -> None:
    rho = rho_for_epsilon(1.0, 1e-5)
    assert epsilon_of_rho(rho, 1e-5) == pytest.approx(1.0, abs=1e-6)
    assert epsilon_of_rho(rho * 1.01, 1e-5) > 1.0


@pytest.mark.slow  # a whole synthesis: seconds of JAX compilation
def test_mst_spends_the_rho_its_measurements_add_up_to(people: pl.DataFrame) -> None:
    """The release's ρ, recomputed from what the card says was drawn: each Gaussian
    marginal 1/(2σ²) (sensitivity 1), each exponential-mechanism round (2Δ/s)²/8 with
    Gumbel scale s (Cesar & Rogers' bounded range), summed: at most the ρ of (ε, δ)."""
    policy = _policy()
    domains = release_domain(policy, policy.synthetic.columns, "synthetic")  # type: ignore[union-attr]
    codes = {d.name: d.encode(people.get_column(d.name)) for d in domains}
    accountant_log: list[dict[str, Any]] = []
    real_spend = Accountant._spend

    def spy(self: Accountant, loss: float, what: str, **facts: Any) -> None:
        accountant_log.append({"loss": loss, "what": what, **facts})
        real_spend(self, loss, what, **facts)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Accountant, "_spend", spy)
        result = synthesize_codes(
            codes, domains, mechanism="mst", epsilon=1.0, delta=1e-5, rows=500,
            iterations=200, seed=0,
        )  # fmt: skip
    marginals = [e for e in accountant_log if e["what"].startswith("marginal")]
    selections = [e for e in accountant_log if e["what"] == "spanning-tree edge"]
    assert len(marginals) == len(domains) + len(domains) - 1
    assert len(selections) == len(domains) - 1
    independent = sum(1 / (2 * e["scale"] ** 2) for e in marginals) + sum(
        (2 * 1.0 / e["scale"]) ** 2 / 8 for e in selections
    )
    assert independent == pytest.approx(result.privacy["rho"], rel=1e-6)
    assert independent <= rho_for_epsilon(1.0, 1e-5) * (1 + 1e-9)
    assert result.privacy["epsilon"] <= 1.0 + 1e-9
    assert _cks_epsilon(independent, 1e-5) == pytest.approx(result.privacy["epsilon"], rel=1e-4)


def test_an_accountant_refuses_to_draw_past_its_allowance() -> None:
    accountant = Accountant("zcdp", 0.01)
    scale = accountant.noise_scale(0.006)
    accountant.counts(np.array([5, 6]), scale, "first")
    with pytest.raises(PolicyError, match="past the release"):
        accountant.counts(np.array([5, 6]), scale, "second")
    assert len(accountant.log) == 1


def _ledger(tmp_path: Path, ring: Any) -> BudgetLedger:
    return BudgetLedger(tmp_path / "ledger.jsonl", ring)


def test_over_budget_is_refused_before_any_measurement_and_leaves_the_ledger(
    people: pl.DataFrame, ring: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = _policy(epsilon=1.0)
    ledger = _ledger(tmp_path, ring)
    data = DataIdentity.of_frame(people, "demo")
    identity = ledger.identify(data, people, policy)
    ledger.charge(identity, epsilon=2.5, delta=1e-6, budget=3.0, run_id="earlier")
    before = ledger.path.read_bytes()
    drawn: list[str] = []
    monkeypatch.setattr(Accountant, "_spend", lambda self, loss, what, **_: drawn.append(what))
    with pytest.raises(BudgetExhausted, match=r"spent 2\.5 of 3\.0, requested 1\.0"):
        make_synthetic_table(people, policy, run_id="r", ledger=ledger, data=data)
    assert drawn == []  # no OpenDP measurement was taken
    assert ledger.path.read_bytes() == before


@pytest.fixture(scope="module")
def made(
    people: pl.DataFrame, session_keyring: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One table made through the whole release (plan, charge, synthesis, checks, gate),
    on a ledger of its own: each synthesis costs seconds of JAX compilation."""
    ledger = BudgetLedger(tmp_path_factory.mktemp("made") / "ledger.jsonl", session_keyring)
    data = DataIdentity.of_frame(people, "demo")
    table = make_synthetic_table(people, _policy(), run_id="s", ledger=ledger, data=data)
    return {"table": table, "ledger": ledger}


@pytest.mark.slow  # a whole synthesis: seconds of JAX compilation
def test_a_table_and_a_model_charge_the_same_data_set(
    people: pl.DataFrame, made: dict[str, Any]
) -> None:
    policy, ledger = _policy(), made["ledger"]
    identity = ledger.identify(DataIdentity.of_frame(people.reverse(), "demo"), people, policy)
    entry = ledger.charge(identity, epsilon=1.0, delta=1e-6, budget=3.0, run_id="model")
    assert entry["dataset"] == made["table"].card["privacy"]["ledger"]["dataset"]
    assert entry["epsilon_spent"] == pytest.approx(2.0)
    kinds = [r["release"] for r in ledger.entry(entry["dataset"])["runs"]]
    assert kinds == ["synthetic", "model"]
    charge = next(r for r in _records(ledger.path) if r.get("step") == "charge")["params"]
    assert charge["method"]["mechanism"] == "MST" and "zCDP" in charge["method"]["accountant"]
    assert epsilon_of_rho(charge["method"]["rho"], 1e-5) == pytest.approx(1.0, abs=1e-6)


def _records(path: Path) -> list[dict[str, Any]]:
    from privacy.audit import read_trail

    return read_trail(path)


@pytest.mark.slow  # a whole synthesis: seconds of JAX compilation
def test_a_made_table_has_the_declared_shape_and_utility(made: dict[str, Any]) -> None:
    policy, table = _policy(), made["table"]
    assert table.frame.columns == policy.synthetic.columns  # type: ignore[union-attr]
    assert table.frame.height == 800
    assert table.frame.get_column("age").min() >= 17 and table.frame.get_column("age").max() <= 90
    assert set(table.frame.get_column("sex").unique()) <= {"Male", "Female"}
    marginals = table.card["utility"]["marginals"]
    assert marginals["one_way_mean"] < 0.15
    assert table.card["utility"]["tstr"]["label"] == "income"
    assert table.card["privacy_check"]["membership_auc"] < 0.6


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"columns": ["age", "zip"]}, r"no declared domain .* add columns\.zip\.domain"),
        (
            {"columns": ["age", "person_id"]},
            r"synthetic\.columns\.1: 'person_id' is a column the policy protects",
        ),
        ({"columns": ["age", "name"]}, r"'name' is a column the policy drops"),
        ({"columns": ["age", "sex", "notes"]}, r"synthetic\.columns\.2: 'notes' is free text"),
    ],
)
def test_a_column_without_a_declared_domain_or_protected_is_refused(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        plan_synthetic(_policy(**change))


def test_free_text_is_dropped_when_the_policy_says_so() -> None:
    plan = plan_synthetic(_policy(columns=["age", "sex", "notes"], text="drop"))
    assert plan.columns == ["age", "sex"] and plan.dropped_text == ["notes"]


def test_a_category_the_policy_does_not_declare_is_refused_without_its_value(
    people: pl.DataFrame, ring: Any, tmp_path: Path
) -> None:
    odd = people.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.lit("Zz-sentinel"))
        .otherwise(pl.col("race"))
        .alias("race")
    )
    ledger = _ledger(tmp_path, ring)
    with pytest.raises(Exception, match=r"column 'race': 1 values are not among") as caught:
        make_synthetic_table(
            odd, _policy(), run_id="r", ledger=ledger, data=DataIdentity.of_frame(odd)
        )
    assert "Zz-sentinel" not in str(caught.value)
    assert not ledger.path.exists()  # refused before the charge


def test_numbers_are_clipped_to_the_declared_bounds() -> None:
    policy = _policy()
    age = release_domain(policy, ["age"], "synthetic")[0]
    codes = age.encode(pl.Series([5, 17, 90, 130]))
    assert codes.tolist() == [0, 0, 73, 73]


def test_the_gate_fails_a_table_that_copies_real_rows(people: pl.DataFrame) -> None:
    """Plant a copying synthesizer: its rows are the training rows. The exact-match
    share is far above the holdout's, and the membership attack sees it."""
    policy = _policy(rows=600)
    domains = release_domain(policy, policy.synthetic.columns, "synthetic")  # type: ignore[union-attr]
    codes = np.column_stack([d.encode(people.get_column(d.name)) for d in domains]).astype(np.int64)
    train, holdout = codes[:600], codes[600:]
    copied = train.copy()
    check = privacy_check(train, holdout, copied, seed=0)
    assert check["exact_match_share"] == 1.0
    assert check["exact_match_share"] > check["holdout_exact_match_share"] + 0.1
    assert check["membership_auc"] > 0.9
    table = pl.DataFrame(
        [d.decode(copied[:, i], np.random.default_rng(0)) for i, d in enumerate(domains)]
    )
    card = {"columns": policy.synthetic.columns, "privacy_check": check}  # type: ignore[union-attr]
    with pytest.raises(PrivacyGuaranteeError, match="copies real rows") as caught:
        gate_synthetic(table, policy, card)
    assert caught.value.guarantee == "synthetic-exact-match"


def test_a_fresh_sample_of_the_same_people_passes_the_default_exact_match_limit(
    people: pl.DataFrame,
) -> None:
    """Rows drawn from the population, not copied from the training rows, match a
    training row about as often as the holdout does: the default limit (the holdout's
    share plus three standard errors) lets them through, and a table with every row
    copied does not. The dtype of the codes does not matter (int32 vs int64)."""
    from privacy.dp._synthetic_release import exact_match_limit

    policy = _policy()
    domains = release_domain(
        policy, ["age", "sex", "income", "education", "occupation"], "synthetic"
    )
    population = synthesize(6000, seed=11)
    codes = np.column_stack([d.encode(population.get_column(d.name)) for d in domains])
    train, holdout, fresh = codes[:3000], codes[3000:4000], codes[4000:].astype(np.int64)
    check = privacy_check(train, holdout, fresh, seed=0)
    assert 0.1 < check["holdout_exact_match_share"] < 0.9  # common rows recur
    spec = policy.synthetic
    assert spec is not None
    assert check["exact_match_share"] <= exact_match_limit(spec, check)
    copied = privacy_check(train, holdout, train[:2000].copy(), seed=0)
    assert copied["exact_match_share"] > exact_match_limit(spec, copied)


def test_the_gate_fails_a_membership_attack_above_the_threshold(people: pl.DataFrame) -> None:
    policy = _policy(rows=600, max_exact_match_share=1.0, max_membership_auc=0.55)
    card = {
        "columns": policy.synthetic.columns,  # type: ignore[union-attr]
        "privacy_check": {
            "exact_match_share": 0.0,
            "holdout_exact_match_share": 0.0,
            "membership_auc": 0.7,
        },
    }
    table = pl.DataFrame({c: [0] * 600 for c in policy.synthetic.columns})  # type: ignore[union-attr]
    with pytest.raises(PrivacyGuaranteeError, match="membership attack") as caught:
        gate_synthetic(table, policy, card)
    assert caught.value.guarantee == "synthetic-membership"


def test_the_gate_fails_a_column_or_row_count_not_declared(people: pl.DataFrame) -> None:
    policy = _policy(rows=600)
    check = {"exact_match_share": 0.0, "holdout_exact_match_share": 0.0, "membership_auc": 0.5}
    card = {"columns": policy.synthetic.columns, "privacy_check": check}  # type: ignore[union-attr]
    columns = policy.synthetic.columns  # type: ignore[union-attr]
    with pytest.raises(PrivacyGuaranteeError, match=r"rows, synthetic\.rows declares 600"):
        gate_synthetic(pl.DataFrame({c: [0] * 599 for c in columns}), policy, card)
    with pytest.raises(PrivacyGuaranteeError, match="'email' was not declared"):
        gate_synthetic(
            pl.DataFrame({**{c: [0] * 600 for c in columns}, "email": ["x"] * 600}), policy, card
        )


def test_marginal_distance_is_zero_for_the_same_rows_and_one_for_disjoint() -> None:
    policy = _policy()
    domains = release_domain(policy, ["sex", "income"], "synthetic")
    same = np.array([[0, 0], [1, 1]])
    assert marginal_distances(same, same, domains)["two_way_mean"] == 0.0
    other = np.array([[1, 1], [1, 1]])
    assert marginal_distances(np.array([[0, 0], [0, 0]]), other, domains)["two_way_max"] == 1.0
