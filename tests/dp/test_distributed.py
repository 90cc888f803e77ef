"""Many processes, one guarantee: DP-SGD with distributed data parallel in two CPU
processes (gloo) ends with the single-process run's ε, δ, steps, sample rate and noise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from privacy.dp import decode_weights, epsilon_from_card, train_model
from privacy.errors import PolicyError
from privacy.policy import Policy, policy_from_dict
from privacy.synth import synthesize

DEMO = Path(__file__).resolve().parents[2] / "policies" / "demo.yaml"


def _policy(**training: Any) -> Policy:
    data = yaml.safe_load(DEMO.read_text())
    data["training"] = {**data["training"], "epochs": 2, "batch_size": 256, **training}
    return policy_from_dict(data)


@pytest.fixture(scope="module")
def people() -> pl.DataFrame:
    return synthesize(1500, seed=21)


def test_two_processes_spend_what_one_process_spends(people: pl.DataFrame) -> None:
    policy = _policy()
    one = train_model(people, policy, run_id="one", ledger=None)
    two = train_model(people, policy, run_id="two", ledger=None, nproc=2)
    a, b = one.card["privacy"], two.card["privacy"]
    for key in ("epsilon", "delta", "steps", "sample_rate", "noise_multiplier", "accountant"):
        assert a[key] == b[key], key
    assert a["processes"] == 1 and b["processes"] == 2
    assert b["grad_sample_mode"] == "hooks (2 processes, gloo)"
    assert epsilon_from_card(two.card) == pytest.approx(b["epsilon"], rel=1e-6)
    # one model: rank 0's weights, of the policy's architecture
    state = decode_weights(two.weights)
    assert set(state) == set(decode_weights(one.weights))
    assert 0.5 <= two.card["metrics"]["accuracy"] <= 1.0


def test_what_one_process_cannot_share_is_refused_before_training(people: pl.DataFrame) -> None:
    with pytest.raises(PolicyError, match=r"--nproc 2: not with training\.dp: false"):
        train_model(people, _policy(dp=False), run_id="x", ledger=None, nproc=2)
    with pytest.raises(PolicyError, match="max_physical_batch_size"):
        train_model(people, _policy(max_physical_batch_size=64), run_id="x", ledger=None, nproc=2)
