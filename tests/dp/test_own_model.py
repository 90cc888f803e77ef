"""Your own model, the metrics an imbalanced label needs, and the notebook API.

A factory named in ``training.model`` trains under DP-SGD; Opacus' ModuleValidator
refuses a layer DP-SGD cannot train (named in one line, before any budget is charged)
or, with ``fix_modules``, replaces it. The card's metrics follow the threshold.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from privacy.crypto import Keyring
from privacy.dp import BudgetLedger, train_model, train_private
from privacy.errors import PolicyError
from privacy.policy import Policy
from privacy.synth import synthesize
from tests._helpers.policies import demo_policy
from tests._keys import FAST_SCRYPT, PASSPHRASE

DEMO = Path(__file__).resolve().parents[2] / "policies" / "demo.yaml"

_MODELS = """
from torch import nn

CALLS = []


def small(features, classes):
    CALLS.append((features, classes))
    return nn.Sequential(nn.Linear(features, 8), nn.ReLU(), nn.Linear(8, classes))


def with_batchnorm(features, classes):
    return nn.Sequential(
        nn.Linear(features, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, classes)
    )


def not_a_module(features, classes):
    return "a string"


def wrong_width(features, classes):
    return nn.Linear(features, 3)
"""


@pytest.fixture(scope="module")
def people() -> pl.DataFrame:
    return synthesize(1500, seed=11)


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    name = f"own_models_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(_MODELS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def _policy(**training: Any) -> Policy:
    return demo_policy(**{"epochs": 1, "batch_size": 256, **training})


def test_an_own_factory_trains_privately_and_is_named_on_the_card(
    people: pl.DataFrame, models: str
) -> None:
    result = train_model(people, _policy(model=f"{models}:small"), run_id="own", ledger=None)
    calls = sys.modules[models].CALLS
    assert calls and calls[0] == (result.encoder.width, 2)  # features, classes
    card = result.card
    assert card["model"]["kind"] == f"{models}:small"
    assert card["privacy"]["private"] is True and card["privacy"]["epsilon"] <= 1.0 + 1e-6


def test_a_layer_dp_sgd_cannot_train_is_refused_by_name_before_any_charge(
    people: pl.DataFrame, models: str, tmp_path: Path
) -> None:
    ring = Keyring.create(tmp_path / "ring.json", PASSPHRASE, scrypt_n=FAST_SCRYPT)
    ledger = BudgetLedger(tmp_path / "ledger.jsonl", ring)
    policy = _policy(model=f"{models}:with_batchnorm")
    with pytest.raises(PolicyError, match=r"layer '1' \(BatchNorm1d\).*fix_modules: true"):
        train_model(people, policy, run_id="bn", ledger=ledger)
    assert ledger.spent("demo") == 0.0


def test_fix_modules_lets_opacus_replace_batchnorm(people: pl.DataFrame, models: str) -> None:
    policy = _policy(model=f"{models}:with_batchnorm", fix_modules=True)
    result = train_model(people, policy, run_id="fixed", ledger=None)
    assert result.card["privacy"]["private"] is True
    assert result.card["model"]["fix_modules"] is True


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("not_a_module", "returned str, not a torch.nn.Module"),
        ("wrong_width", r"to \(3,\), not to 2 class logits"),
        ("missing", "has no missing"),
    ],
)
def test_a_factory_that_is_not_a_two_class_model_is_one_line(
    people: pl.DataFrame, models: str, factory: str, message: str
) -> None:
    with pytest.raises(PolicyError, match=message) as caught:
        train_model(people, _policy(model=f"{models}:{factory}"), run_id="x", ledger=None)
    assert "\n" not in str(caught.value)


def test_an_unimportable_module_and_a_malformed_reference_are_policy_errors() -> None:
    with pytest.raises(PolicyError, match=r"training\.model"):
        _policy(model="not a reference")
    frame = synthesize(200, seed=1)
    with pytest.raises(PolicyError, match="cannot import no_such_package_here"):
        train_model(
            frame, _policy(model="no_such_package_here.models:make"), run_id="x", ledger=None
        )


def test_metrics_follow_the_threshold_and_describe_the_test_split(people: pl.DataFrame) -> None:
    low = train_model(people, _policy(threshold=0.05), run_id="low", ledger=None).card
    high = train_model(people, _policy(threshold=0.95), run_id="high", ledger=None).card
    for card in (low, high):
        m = card["metrics"]
        matrix = m["confusion_matrix"]
        assert sum(matrix.values()) == card["data"]["rows_test"]
        assert m["split"] == "test" and 0 <= m["balanced_accuracy"] <= 1 and 0 <= m["pr_auc"] <= 1
        assert [c["threshold"] for c in m["threshold_curve"]] == sorted(
            c["threshold"] for c in m["threshold_curve"]
        )
    # the same seed trains the same model: only the threshold differs
    assert low["metrics"]["roc_auc"] == high["metrics"]["roc_auc"]
    lo, hi = low["metrics"]["confusion_matrix"], high["metrics"]["confusion_matrix"]
    assert lo["tp"] + lo["fp"] > hi["tp"] + hi["fp"]  # a lower threshold predicts more positives
    assert low["metrics"]["recall"] >= high["metrics"]["recall"]


def test_train_private_overrides_the_policy_and_refuses_a_non_private_run(
    people: pl.DataFrame, models: str
) -> None:
    result = train_private(people, DEMO, epochs=1, epsilon=0.5, model=f"{models}:small")
    assert result.card["privacy"]["target_epsilon"] == 0.5
    assert result.card["privacy"]["epsilon"] <= 0.5 + 1e-6
    with pytest.raises(PolicyError, match="differential privacy only"):
        train_private(people, DEMO, dp=False)
    with pytest.raises(PolicyError, match="training"):
        train_private(people, DEMO, epsilon=-1)
