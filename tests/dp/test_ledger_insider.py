"""Issue 15's attacks on the privacy budget and on checkpoints, each by an insider who can
edit a policy, write the ledger's folder or the run folder, or hold an analyst's keyring.

Every one of these worked before the ledger became a signed, witnessed trail keyed on
the data and checkpoints became vault-sealed safetensors (see the commit that added
this file): the same data got fresh budget, and a resumed checkpoint ran whatever an
analyst sealed."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from privacy.crypto import Keyring, seal_bytes, unseal_bytes
from privacy.dp import (
    BudgetLedger,
    DataIdentity,
    LedgerIntegrityError,
    TrainingStopped,
    train_model,
)
from privacy.dp._checkpoint import checkpoint_binding, decode_checkpoint, encode_checkpoint
from privacy.errors import BudgetExhausted, IntegrityError, PolicyError, ScopeError
from privacy.policy import Policy
from privacy.synth import synthesize
from tests._helpers.policies import demo_policy
from tests._keys import PASSPHRASE

DEMO = Path(__file__).resolve().parents[2] / "policies" / "demo.yaml"


@pytest.fixture(scope="module")
def people() -> pl.DataFrame:
    return synthesize(3000, seed=5)


def _policy(**training: Any) -> Policy:
    return demo_policy(**{"epochs": 3, "batch_size": 512, **training})


def _spent_most(people: pl.DataFrame, ledger: BudgetLedger) -> DataIdentity:
    """The demo data set with 2.5 of its 3.0 spent (the policy's ε is 1.0)."""
    data = DataIdentity.of_frame(people, "demo")
    ledger.charge(data, epsilon=2.5, delta=1e-6, budget=3.0, run_id="earlier")
    return data


# ---------------------------------------------------------------------------- the budget


def test_attack_raised_policy_budget(people: pl.DataFrame, tmp_path: Path, ring: Keyring) -> None:
    ledger = BudgetLedger(tmp_path / "ledger.jsonl", ring)
    data = _spent_most(people, ledger)
    with pytest.raises(PolicyError) as refused:
        train_model(people, _policy(budget=10.0), run_id="r", ledger=ledger)
    assert f"`privpipe budget set {data.dataset_id} 10.0 --reason TEXT`" in str(refused.value)
    assert ledger.spent(data) == 2.5


def test_attack_renamed_training_dataset(
    people: pl.DataFrame, tmp_path: Path, ring: Keyring
) -> None:
    ledger = BudgetLedger(tmp_path / "ledger.jsonl", ring)
    data = _spent_most(people, ledger)
    with pytest.raises(BudgetExhausted, match=rf"{data.dataset_id} \(demo\): spent 2\.5 of 3\.0"):
        train_model(people, _policy(dataset="fresh-name"), run_id="r", ledger=ledger)
    assert ledger.spent(data) == 2.5 and len(ledger.datasets()) == 1


def test_attack_deleted_ledger_file(people: pl.DataFrame, tmp_path: Path, ring: Keyring) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = BudgetLedger(path, ring)
    data = _spent_most(people, ledger)
    path.unlink()
    path.with_name(path.name + ".head").unlink()
    with pytest.raises(LedgerIntegrityError, match=r"ledger is gone, but the witness .* recorded"):
        train_model(people, _policy(), run_id="r", ledger=ledger)
    with pytest.raises(LedgerIntegrityError, match="ledger is gone"):
        ledger.spent(data)  # reading it (budget show) says so too
    path.write_bytes(b"")  # emptied rather than deleted
    with pytest.raises(LedgerIntegrityError, match="witness"):
        train_model(people, _policy(), run_id="r", ledger=ledger)


def test_attack_rolled_back_ledger_copy(
    people: pl.DataFrame, tmp_path: Path, ring: Keyring
) -> None:
    path = tmp_path / "ledger.jsonl"
    head = path.with_name(path.name + ".head")
    ledger = BudgetLedger(path, ring)
    data = DataIdentity.of_frame(people, "demo")
    ledger.charge(data, epsilon=1.0, delta=1e-6, budget=3.0, run_id="a")
    shutil.copy(path, tmp_path / "copy.jsonl")
    shutil.copy(head, tmp_path / "copy.head")
    for run in "bc":
        ledger.charge(data, epsilon=1.0, delta=1e-6, budget=3.0, run_id=run)
    shutil.copy(tmp_path / "copy.jsonl", path)  # back to when 1.0 was spent
    shutil.copy(tmp_path / "copy.head", head)
    with pytest.raises(LedgerIntegrityError, match=r"witness .* \(cut, emptied or rolled back\)"):
        train_model(people, _policy(), run_id="d", ledger=ledger)


# ---------------------------------------------------------------------------- checkpoints


def _stopped(
    people: pl.DataFrame, tmp_path: Path, ring: Keyring, ledger: BudgetLedger | None = None
) -> Path:
    """A run ``r`` stopped after its first epoch: its vault-sealed checkpoint."""
    checkpoint = tmp_path / "checkpoint.safetensors.sealed"
    with pytest.raises(TrainingStopped):
        train_model(
            people,
            _policy(),
            run_id="r",
            checkpoint=checkpoint,
            keys=ring.for_scope("vault"),
            stop_after=1,
            ledger=ledger,
        )
    return checkpoint


def test_attack_copied_checkpoint_resumed_twice(
    people: pl.DataFrame, tmp_path: Path, ring: Keyring
) -> None:
    ledger = BudgetLedger(tmp_path / "ledger.jsonl", ring)
    checkpoint = _stopped(people, tmp_path, ring, ledger)
    copy = tmp_path / "elsewhere" / checkpoint.name
    copy.parent.mkdir()
    shutil.copy(checkpoint, copy)
    keys = ring.for_scope("vault")
    first = train_model(
        people, _policy(), run_id="r", ledger=ledger, checkpoint=checkpoint, keys=keys, resume=True
    ).card
    assert first["privacy"]["ledger"]["charged"] == 0.0  # covered by run r's charge
    assert ledger.spent("demo") == 1.0
    again = train_model(
        people, _policy(), run_id="r", ledger=ledger, checkpoint=copy, keys=keys, resume=True
    ).card
    assert again["privacy"]["ledger"]["charged"] == 1.0  # the copy pays in full
    assert ledger.spent("demo") == 2.0


def test_attack_analyst_sealed_checkpoint(
    people: pl.DataFrame, tmp_path: Path, ring: Keyring
) -> None:
    """The analyst (published scope only) seals a checkpoint with the accountant's steps
    lowered and the right associated data; the custodian's keyring could open it (it
    holds the published key), but its resume refuses it."""
    checkpoint = _stopped(people, tmp_path, ring)
    analyst = ring.export(tmp_path / "analyst.json", PASSPHRASE, ["published"])
    data = DataIdentity.of_frame(people)
    bound = checkpoint_binding(
        run_id="r", data_sha256=data.sanitized_sha256, policy_sha256=_policy().hash
    )
    model, optimizer, rng, state = decode_checkpoint(unseal_bytes(checkpoint, ring, expected=bound))
    state["accountant"]["history"] = [[s, q, 1] for s, q, _ in state["accountant"]["history"]]
    forged = encode_checkpoint(model=model, optimizer=optimizer, rng=rng, state=state)
    checkpoint.write_bytes(seal_bytes(forged, analyst.for_scope("published"), bound))
    with pytest.raises(IntegrityError, match=r"not a 'vault' key"):
        train_model(
            people,
            _policy(),
            run_id="r",
            ledger=None,
            checkpoint=checkpoint,
            keys=ring.for_scope("vault"),
            resume=True,
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"run_id": "another"}, "a checkpoint of another run"),
        ({"frame": "other"}, "a checkpoint of another data"),
        ({"policy": {"learning_rate": 0.5}}, "a checkpoint of another policy"),
    ],
)
def test_resume_refuses_a_checkpoint_of_another_run_data_or_policy(
    people: pl.DataFrame, tmp_path: Path, ring: Keyring, change: dict[str, Any], message: str
) -> None:
    checkpoint = _stopped(people, tmp_path, ring)
    frame = people.head(2900) if "frame" in change else people
    with pytest.raises(IntegrityError, match=message):
        train_model(
            frame,
            _policy(**change.get("policy", {})),
            run_id=change.get("run_id", "r"),
            ledger=None,
            checkpoint=checkpoint,
            keys=ring.for_scope("vault"),
            resume=True,
        )


def test_checkpoints_are_sealed_under_the_vault_scope_only(
    people: pl.DataFrame, tmp_path: Path, ring: Keyring
) -> None:
    """Sealing one under the published key is refused before any charge or training;
    one the custodian sealed under the published key is not resumed."""
    ledger = BudgetLedger(tmp_path / "ledger.jsonl", ring)
    with pytest.raises(ScopeError, match="sealed under the 'vault' scope"):
        train_model(
            people,
            _policy(),
            run_id="r",
            ledger=ledger,
            checkpoint=tmp_path / "c.sealed",
            keys=ring.for_scope("published"),
        )
    assert ledger.datasets() == []
    checkpoint = _stopped(people, tmp_path, ring)
    plain = unseal_bytes(checkpoint, ring)
    data = DataIdentity.of_frame(people)
    bound = checkpoint_binding(
        run_id="r", data_sha256=data.sanitized_sha256, policy_sha256=_policy().hash
    )
    checkpoint.write_bytes(seal_bytes(plain, ring.for_scope("published"), bound))
    with pytest.raises(IntegrityError, match=r"\(published\), not a 'vault' key"):
        train_model(
            people,
            _policy(),
            run_id="r",
            ledger=None,
            checkpoint=checkpoint,
            keys=ring.for_scope("vault"),
            resume=True,
        )


@pytest.mark.parametrize("edit", ["epoch", "mechanism", "shape"])
def test_a_checkpoint_that_does_not_fit_the_policys_training_is_refused(
    people: pl.DataFrame, tmp_path: Path, ring: Keyring, edit: str
) -> None:
    """Even one the custodian sealed: an epoch past the policy's, another accountant, or
    a model of another shape is not resumed."""
    checkpoint = _stopped(people, tmp_path, ring)
    model, optimizer, rng, state = decode_checkpoint(unseal_bytes(checkpoint, ring))
    if edit == "epoch":
        state["epoch"] = 99
    elif edit == "mechanism":
        state["accountant"]["mechanism"] = "rdp"
    else:
        model = {k: v[:1] for k, v in model.items()}
    data = DataIdentity.of_frame(people)
    bound = checkpoint_binding(
        run_id="r", data_sha256=data.sanitized_sha256, policy_sha256=_policy().hash
    )
    payload = encode_checkpoint(model=model, optimizer=optimizer, rng=rng, state=state)
    checkpoint.write_bytes(seal_bytes(payload, ring.for_scope("vault"), bound))
    message = "does not fit" if edit == "shape" else "not a checkpoint of this policy's training"
    with pytest.raises(IntegrityError, match=message):
        train_model(
            people,
            _policy(),
            run_id="r",
            ledger=None,
            checkpoint=checkpoint,
            keys=ring.for_scope("vault"),
            resume=True,
        )
