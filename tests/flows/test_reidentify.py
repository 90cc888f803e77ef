"""Controlled re-identification: reversible tokens only where the policy says so, turned
back only with the pseudonym scope and a reason, every lookup and refusal audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from flows.cli import main
from privacy import stages
from privacy.audit import read_trail
from privacy.crypto import Keyring
from privacy.policy import load_policy

CUSTODIAN = "custodian passphrase"


@pytest.fixture
def setup(
    tmp_path: Path, demo_policy_path: Path, people: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    monkeypatch.delenv("PRIVPIPE_KEYRING", raising=False)
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", CUSTODIAN)
    ring_path = tmp_path / "custodian" / "keyring.json"
    ring = Keyring.create(ring_path, CUSTODIAN, scrypt_n=2**14)
    data = yaml.safe_load(demo_policy_path.read_text())
    data["columns"]["person_id"]["reversible"] = True
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(data))
    policy = load_policy(policy_path)
    frame = people.select(list(policy.columns))
    out, _ = stages.transform(frame, policy, ring, None)
    return {
        "ring": ring_path,
        "policy": policy_path,
        "raw": frame.get_column("person_id").to_list(),
        "tokens": out.get_column("person_id").to_list(),
        "prefix": data["columns"]["person_id"].get("prefix", ""),
    }


def _steps(ring: Path) -> list[dict[str, Any]]:
    return [r for r in read_trail(ring.parent / "audit.jsonl") if r.get("step") == "reidentify"]


def test_reversible_tokens_are_stable_keyed_and_hold_no_value(setup: dict[str, Any]) -> None:
    raw, tokens = setup["raw"], setup["tokens"]
    assert len(set(tokens)) == len(set(raw))  # one token per distinct value: joins survive
    assert all(t.startswith(setup["prefix"] + "r2.") for t in tokens)
    assert not any(r in t for r, t in zip(raw, tokens, strict=True))


def test_the_custodian_reverses_with_a_reason_and_the_lookup_is_audited(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    tokens, raw = setup["tokens"][:3], setup["raw"][:3]
    args = ["reidentify", *tokens, "--policy", str(setup["policy"]), "--column", "person_id"]
    capsys.readouterr()
    assert main([*args, "--reason", "DSAR #1842", "--keyring", str(setup["ring"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{t}\t{r}" for t, r in zip(tokens, raw, strict=True)]
    (step,) = _steps(setup["ring"])
    assert step["outcome"] == "ok" and step["params"]["reason"] == "DSAR #1842"
    assert step["params"]["column"] == "person_id" and step["params"]["tokens"] == 3
    trail = (setup["ring"].parent / "audit.jsonl").read_text()
    assert not any(value in trail for value in raw)  # hashes of tokens, never values


def test_refusals_are_one_line_and_audited(
    tmp_path: Path,
    setup: dict[str, Any],
    demo_policy_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = setup["tokens"][0]
    base = ["reidentify", token, "--column", "person_id", "--keyring", str(setup["ring"])]
    ours = ["--policy", str(setup["policy"])]

    def refused(args: list[str], message: str) -> None:
        capsys.readouterr()
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
        assert setup["raw"][0] not in err

    # the demo policy's tokens are one-way
    refused([*base, "--policy", str(demo_policy_path), "--reason", "x"], "tokens are one-way")
    refused([*base, *ours, "--reason", "  "], "needs a stated reason")
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    refused(["reidentify", altered, *base[2:], *ours, "--reason", "x"], "not a reversible token")
    assert [s["outcome"] for s in _steps(setup["ring"])] == ["refused"] * 3
    # an analyst's keyring (published only) holds no pseudonym secret
    analyst = tmp_path / "analyst" / "keyring.json"
    monkeypatch.setenv("PRIVPIPE_NEW_PASSPHRASE", "analyst")
    export = ["keys", "export", "--keyring", str(setup["ring"]), "--scope", "published"]
    assert main([*export, "--out", str(analyst)]) == 0
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", "analyst")
    args = ["reidentify", token, "--column", "person_id", *ours, "--reason", "x"]
    refused([*args, "--keyring", str(analyst)], "does not hold the 'pseudonym' scope")
    assert [s["outcome"] for s in _steps(analyst)] == ["refused"]


def test_without_reason_is_a_usage_error(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["reidentify", setup["tokens"][0], "--policy", str(setup["policy"])]
    assert main([*args, "--column", "person_id", "--keyring", str(setup["ring"])]) == 2
    assert "--reason" in capsys.readouterr().err
    assert not (setup["ring"].parent / "audit.jsonl").exists()  # nothing was looked up
