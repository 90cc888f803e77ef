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
