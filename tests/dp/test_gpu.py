"""Training on CUDA, where there is one (skipped cleanly on machines without it, as CI)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from privacy.dp import epsilon_from_card, train_model
from privacy.policy import policy_from_dict
from privacy.synth import synthesize

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here"),
]

DEMO = Path(__file__).resolve().parents[2] / "policies" / "demo.yaml"


def test_dp_training_on_cuda_reports_the_device_and_a_recomputable_epsilon() -> None:
    data = yaml.safe_load(DEMO.read_text())
    data["training"] = {**data["training"], "epochs": 2}
    card = train_model(
        synthesize(5000, seed=3), policy_from_dict(data), run_id="gpu", ledger=None, device="cuda"
    ).card
    assert card["device"] == "cuda"
    assert epsilon_from_card(card) == pytest.approx(card["privacy"]["epsilon"], rel=1e-6)


def test_a_run_stopped_and_resumed_on_cuda_gives_the_uninterrupted_epsilon(tmp_path: Path) -> None:
    """The checkpoint (safetensors, CUDA generator state included) resumes on the device."""
    from privacy.crypto import Keyring
    from privacy.dp import TrainingStopped
    from tests._keys import FAST_SCRYPT, PASSPHRASE

    data = yaml.safe_load(DEMO.read_text())
    data["training"] = {**data["training"], "epochs": 3}
    policy, frame = policy_from_dict(data), synthesize(5000, seed=3)
    keys = Keyring.create(tmp_path / "ring.json", PASSPHRASE, scrypt_n=FAST_SCRYPT).for_scope(
        "vault"
    )
    whole = train_model(frame, policy, run_id="w", ledger=None, device="cuda").card["privacy"]
    checkpoint = tmp_path / "checkpoint.safetensors.sealed"
    common = {"ledger": None, "device": "cuda", "checkpoint": checkpoint, "keys": keys}
    with pytest.raises(TrainingStopped):
        train_model(frame, policy, run_id="r", stop_after=1, **common)  # type: ignore[arg-type]
    card = train_model(frame, policy, run_id="r", resume=True, **common).card  # type: ignore[arg-type]
    assert card["device"] == "cuda" and card["privacy"]["steps"] == whole["steps"]
    assert card["privacy"]["epsilon"] == pytest.approx(whole["epsilon"], rel=1e-9)
