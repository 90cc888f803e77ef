"""Weights and checkpoints as safetensors: a round trip keeps every tensor and value, and
anything that is not a privpipe checkpoint is refused as one (IntegrityError naming the
file), never loaded another way."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
import torch

from privacy.dp import decode_weights
from privacy.dp._checkpoint import decode_checkpoint, encode_checkpoint, encode_weights
from privacy.errors import IntegrityError


def _parts() -> dict[str, Any]:
    return {
        "model": {"0.weight": torch.ones(2, 3), "0.bias": torch.zeros(2)},
        "optimizer": {
            "state": {0: {"step": torch.tensor(4.0), "exp_avg": torch.ones(2, 3), "note": 1}},
            "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999), "foreach": None, "params": [0]}],
        },
        "rng": {"torch": torch.get_rng_state()},
        "state": {"run_id": "r", "epoch": 1, "encoder": {"width": 3}},
    }


def _raw(meta: dict[str, str], tensors: dict[str, Any] | None = None, body: bytes = b"") -> bytes:
    header = json.dumps({"__metadata__": meta, **(tensors or {})}).encode()
    return struct.pack("<Q", len(header)) + header + body


def test_a_checkpoint_round_trips_tensors_and_json() -> None:
    parts = _parts()
    model, optimizer, rng, state = decode_checkpoint(encode_checkpoint(**parts))
    assert torch.equal(model["0.weight"], parts["model"]["0.weight"])
    assert torch.equal(optimizer["state"][0]["exp_avg"], torch.ones(2, 3))
    assert optimizer["state"][0]["note"] == 1 and float(optimizer["state"][0]["step"]) == 4.0
    assert optimizer["param_groups"][0]["betas"] == [0.9, 0.999]
    assert torch.equal(rng["torch"], parts["rng"]["torch"])
    assert state == parts["state"]
    weights = decode_weights(encode_weights(parts["model"]))
    assert set(weights) == {"0.weight", "0.bias"}


CHECKPOINT = {"format": "privpipe-checkpoint/v1"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"short", r"not a safetensors file \(too short\)"),
        (struct.pack("<Q", 1 << 40) + b"{}", r"bad header length"),
        (struct.pack("<Q", 4) + b"{x:1", r"malformed header"),
        (encode_weights({"w": torch.ones(1)}), r"not a privpipe-checkpoint/v1 file"),
        (
            _raw(CHECKPOINT, {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 99]}}),
            r"malformed tensors",
        ),
        (_raw({**CHECKPOINT, "state": "{", "optimizer": "{}"}), r"malformed state"),
        (
            _raw({**CHECKPOINT, "state": "{}", "optimizer": '{"param_groups": [], "scalars": 1}'}),
            r"malformed state",
        ),
    ],
)
def test_what_is_not_a_checkpoint_is_refused_as_one(data: bytes, message: str) -> None:
    with pytest.raises(IntegrityError, match=message):
        decode_checkpoint(data, "c.sealed")


def test_a_tensor_a_checkpoint_does_not_hold_is_refused() -> None:
    from safetensors.torch import save

    meta = {**CHECKPOINT, "state": "{}", "optimizer": '{"param_groups": [], "scalars": {}}'}
    with pytest.raises(IntegrityError, match=r"unknown tensor 'evil\.x'"):
        decode_checkpoint(save({"evil.x": torch.ones(1)}, metadata=meta))
    bad_scalars = {**meta, "optimizer": '{"param_groups": [], "scalars": {"x": {}}}'}
    with pytest.raises(IntegrityError, match="malformed state"):
        decode_checkpoint(save({"model.w": torch.ones(1)}, metadata=bad_scalars))


def test_an_optimizer_value_that_is_not_json_is_refused_at_saving() -> None:
    parts = _parts()
    parts["optimizer"]["param_groups"][0]["hook"] = object()
    with pytest.raises(IntegrityError, match="object is not a JSON value"):
        encode_checkpoint(**parts)


def test_a_weights_file_must_be_one(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="not a privpipe-weights/v1 file"):
        decode_weights(encode_checkpoint(**_parts()), "model.safetensors")
