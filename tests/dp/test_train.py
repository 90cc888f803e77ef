"""DP training on synthetic people: the card's ε is the accountant's, recomputable from
the card; the encoder sees the training split only; a non-private run is marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from privacy.crypto import Keyring
from privacy.dp import BudgetLedger, DataIdentity, decode_weights, epsilon_from_card, train_model
from privacy.errors import BudgetExhausted, PolicyError
from privacy.policy import Policy
from privacy.synth import synthesize
from tests._helpers.policies import demo_policy

DEMO = Path(__file__).resolve().parents[2] / "policies" / "demo.yaml"


@pytest.fixture(scope="module")
def people() -> pl.DataFrame:
    return synthesize(3000, seed=5)


def _policy(**training: Any) -> Policy:
    return demo_policy(**{"epochs": 2, "batch_size": 512, **training})


def test_dp_card_epsilon_is_recomputable_and_charged(
    people: pl.DataFrame, tmp_path: Path, ring: Keyring
) -> None:
    ledger = BudgetLedger(tmp_path / "ledger.jsonl", ring)
    result = train_model(people, _policy(), run_id="r1", ledger=ledger)
    card = result.card
    privacy = card["privacy"]
    assert privacy["private"] is True and privacy["accountant"] == "prv"
    assert privacy["epsilon"] <= 1.0 + 1e-6  # the target
    assert epsilon_from_card(card) == pytest.approx(privacy["epsilon"], rel=1e-6)
    assert privacy["delta"] <= 1 / card["data"]["rows_train"]
    assert privacy["grad_sample_mode"] == "ghost" and privacy["poisson_sampling"] is True
    assert privacy["steps"] == 2 * round(1 / privacy["sample_rate"])
    assert ledger.spent("demo") == ledger.spent(DataIdentity.of_frame(people)) == 1.0
    assert privacy["ledger"]["dataset"] == DataIdentity.of_frame(people).dataset_id
    assert privacy["ledger"]["label"] == "demo" and privacy["ledger"]["charged"] == 1.0
    weights = decode_weights(result.weights)  # safetensors: tensors, nothing unpickled
    assert weights["0.weight"].shape[1] == result.encoder.width  # the MLP's first layer
    metrics = card["metrics"]
    assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["roc_auc"] <= 1
    mia = card["membership_inference"]
    assert 0 <= mia["auc"] <= 1 and 0 <= mia["tpr_at_1pct_fpr"] <= 1
    assert set(card["libraries"]) >= {"torch", "opacus", "scikit-learn"}
    assert "person_id" not in card["data"]["feature_columns"]  # tokens are not features
    assert "income" not in card["data"]["feature_columns"]


def test_the_encoder_is_fitted_on_the_training_split_only(people: pl.DataFrame) -> None:
    # a ZIP code in one row only: it lands in one split; if that is the test split, the
    # vocabulary must not know it
    result = train_model(people, _policy(dp=False), run_id="r", ledger=None)
    vocabulary = set(result.encoder.categorical["zip"])
    rows = result.card["data"]
    assert len(vocabulary) < people.get_column("zip").n_unique()
    assert rows["rows_train"] + rows["rows_test"] == people.height


def test_a_non_private_run_is_marked_and_charges_nothing(
    people: pl.DataFrame, tmp_path: Path, ring: Keyring
) -> None:
    ledger = BudgetLedger(tmp_path / "ledger.jsonl", ring)
    card = train_model(people, _policy(dp=False), run_id="r", ledger=ledger).card
    assert card["privacy"]["private"] is False
    assert card["privacy"]["warning"].startswith("NOT PRIVATE")
    assert ledger.spent("demo") == 0.0


def test_refused_before_training_when_the_budget_would_be_exceeded(
    people: pl.DataFrame, tmp_path: Path, ring: Keyring
) -> None:
    ledger = BudgetLedger(tmp_path / "ledger.jsonl", ring)
    data = DataIdentity.of_frame(people, "demo")
    ledger.charge(data, epsilon=2.5, delta=1e-6, budget=3.0, run_id="earlier")
    with pytest.raises(BudgetExhausted, match=r"spent 2\.5 of 3\.0, requested 1\.0"):
        train_model(people, _policy(), run_id="r2", ledger=ledger)
    assert ledger.spent("demo") == 2.5


def test_delta_above_one_over_n_is_refused(people: pl.DataFrame) -> None:
    with pytest.raises(PolicyError, match=r"training.delta: .* is above 1/n"):
        train_model(people, _policy(delta=0.01), run_id="r", ledger=None)


def test_resuming_gives_the_epsilon_of_an_uninterrupted_run(
    people: pl.DataFrame, tmp_path: Path, ring: Keyring
) -> None:
    from privacy.dp import TrainingStopped

    keys = ring
    policy = _policy(epochs=3)
    whole = train_model(people, policy, run_id="w", ledger=None).card["privacy"]
    ledger = BudgetLedger(tmp_path / "ledger.jsonl", ring)
    checkpoint = tmp_path / "checkpoint.safetensors.sealed"
    with pytest.raises(TrainingStopped):
        train_model(
            people,
            policy,
            run_id="r",
            ledger=ledger,
            checkpoint=checkpoint,
            keys=keys,
            stop_after=1,
        )
    assert checkpoint.exists() and ledger.spent("demo") == 1.0
    resumed = train_model(
        people, policy, run_id="r", ledger=ledger, checkpoint=checkpoint, keys=keys, resume=True
    ).card
    assert resumed["run_id"] == "r"  # the run it continues
    assert resumed["privacy"]["steps"] == whole["steps"]
    assert resumed["privacy"]["noise_multiplier"] == whole["noise_multiplier"]
    assert resumed["privacy"]["epsilon"] == pytest.approx(whole["epsilon"], rel=1e-9)
    assert ledger.spent("demo") == 1.0  # charged once: the first resume is covered
    assert resumed["privacy"]["ledger"]["charged"] == 0.0


class _Payload:
    """What an attacker pickles: unpickling it calls ``print`` (it could be anything)."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (print, ("PWNED-BY-CHECKPOINT",))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_checkpoint_that_holds_code_is_refused_not_run(
    people: pl.DataFrame,
    tmp_path: Path,
    ring: Keyring,
    capsys: pytest.CaptureFixture[str],
    writer: str,
) -> None:
    """A checkpoint sealed under the right binding by a keyring that can seal one, holding
    a pickle with code in it (bare, or in torch.save's zip): resuming refuses it, and the
    code never runs (nothing in a checkpoint is unpickled)."""
    import io
    import pickle

    import torch

    from privacy.crypto import seal_bytes
    from privacy.dp._checkpoint import checkpoint_binding
    from privacy.errors import IntegrityError

    policy = _policy()
    data = DataIdentity.of_frame(people)
    bound = checkpoint_binding(
        run_id="x", data_sha256=data.sanitized_sha256, policy_sha256=policy.hash
    )
    buffer = io.BytesIO()
    payload = {"run_id": "x", "model": _Payload()}
    if writer == "pickle":
        pickle.dump(payload, buffer)
    else:
        torch.save(payload, buffer)
    checkpoint = tmp_path / "checkpoint.safetensors.sealed"
    checkpoint.write_bytes(seal_bytes(buffer.getvalue(), ring.for_scope("vault"), bound))
    with pytest.raises(IntegrityError, match="not a safetensors file"):
        train_model(
            people,
            policy,
            run_id="x",
            ledger=None,
            data=data,
            checkpoint=checkpoint,
            keys=ring,
            resume=True,
        )
    assert "PWNED-BY-CHECKPOINT" not in capsys.readouterr().out


def test_a_logical_batch_larger_than_the_physical_one_keeps_the_accounting(
    people: pl.DataFrame,
) -> None:
    import torch

    def trained_on(**training: Any) -> tuple[dict[str, Any], list[int]]:
        """The card's privacy section, and the size of every batch a layer saw in training."""
        sizes: list[int] = []

        def seen(module: torch.nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            if module.training and isinstance(module, torch.nn.Linear):
                sizes.append(int(inputs[0].shape[0]))

        hook = torch.nn.modules.module.register_module_forward_hook(seen)
        try:
            card = train_model(people, _policy(**training), run_id="a", ledger=None).card
        finally:
            hook.remove()
        return card["privacy"], sizes

    whole, whole_sizes = trained_on()
    split, split_sizes = trained_on(max_physical_batch_size=128)
    assert split["steps"] == whole["steps"]  # one step per logical batch
    assert split["epsilon"] == pytest.approx(whole["epsilon"], rel=1e-9)
    # and the option is not ignored: the logical batches (~512 rows, Poisson) really went
    # through the model in pieces of at most 128
    assert max(whole_sizes) > 128
    assert 0 < max(split_sizes) <= 128
    assert len(split_sizes) > len(whole_sizes)


def test_the_canary_bound_refutes_only_what_the_guesses_show() -> None:
    import numpy as np

    from privacy.dp._audit import canary_bound

    rng = np.random.default_rng(0)
    planted = rng.random(1000) < 0.5
    assert canary_bound(rng.random(1000), planted)["epsilon_lower_bound"] == 0.0  # a coin
    perfect = canary_bound(planted.astype(float) + rng.random(1000) * 0.1, planted)
    assert perfect["correct"] == perfect["guesses"] == 200
    assert perfect["epsilon_lower_bound"] > 3  # 200 of 200 right refutes any small ε


def test_the_canary_audit_catches_a_memorizing_model_and_stays_under_the_accountant(
    people: pl.DataFrame,
) -> None:
    audit = {"canaries": 1000, "batch_size": 256, "hidden_sizes": [256, 256]}
    leaky = train_model(people, _policy(dp=False, epochs=60, **audit), run_id="a", ledger=None)
    assert leaky.card["canary_audit"]["epsilon_lower_bound"] > 0.3
    private = train_model(people, _policy(epochs=20, **audit), run_id="b", ledger=None).card
    assert private["canary_audit"]["epsilon_lower_bound"] <= private["privacy"]["epsilon"]


def test_balanced_class_weights_raise_recall_of_the_rare_class(people: pl.DataFrame) -> None:
    plain = train_model(people, _policy(dp=False, epochs=10), run_id="a", ledger=None)
    weighted = train_model(
        people, _policy(dp=False, epochs=10, class_weight="balanced"), run_id="b", ledger=None
    )
    assert weighted.card["model"]["class_weight"] == "balanced"
    assert weighted.card["metrics"]["recall"] > plain.card["metrics"]["recall"]
