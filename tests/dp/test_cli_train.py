"""privpipe train through Prefect on a sanitize output: sealed weights, encoder, model
card, audit trail; an overspend is refused with one line and exit 2, changing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from flows.cli import main
from privacy.audit import read_trail
from privacy.crypto import Keyring, unseal_bytes
from privacy.dp import BudgetLedger, DataIdentity, decode_weights, epsilon_from_card

pytestmark = pytest.mark.prefect  # runs flows: Prefect's temporary server


@pytest.fixture(scope="module")
def sanitized(people, demo_policy_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("sanitized")
    source = folder / "people.csv"
    people.write_csv(source)
    out = folder / "out"
    args = ["sanitize", str(source), "--policy", str(demo_policy_path), "--out", str(out)]
    assert main(args) == 0
    return out


def test_train_writes_a_sealed_model_its_card_and_an_audit_trail(
    sanitized: Path,
    demo_policy_path: Path,
    tmp_path: Path,
    session_keyring,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ledger = tmp_path / "ledger.json"
    out = tmp_path / "model"
    args = ["train", str(sanitized), "--policy", str(demo_policy_path), "--out", str(out)]
    assert main([*args, "--ledger", str(ledger), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    card = json.loads((out / "model_card.json").read_text())
    assert summary["card"] == card
    assert card["privacy"]["private"] is True
    assert epsilon_from_card(card) == pytest.approx(card["privacy"]["epsilon"], rel=1e-6)
    manifest = json.loads((sanitized / "manifest.json").read_text())
    # DP training reads the deidentified training view by default, not the release
    assert card["data"]["input"] == "deidentified"
    assert card["data"]["sha256"] == manifest["training_view"]["sha256"]
    assert card["policy"]["sha256"] == manifest["policy"]["sha256"]
    weights = unseal_bytes(
        out / "model.safetensors.sealed",
        session_keyring,
        expected={"artifact": "model", "dataset": "demo", "model": card["model_version"]},
    )
    state = decode_weights(weights)  # safetensors: nothing in it is unpickled
    assert any(name.endswith("weight") for name in state)
    assert not (out / "checkpoint.safetensors.sealed").exists()  # removed once trained
    records = [r for r in read_trail(out / "audit.jsonl") if r.get("step") == "train"]
    assert records and records[-1]["params"]["status"] == "private"
    assert records[-1]["params"]["epsilon"] == card["privacy"]["epsilon"]
    spent = BudgetLedger(ledger, session_keyring)
    raw = manifest["input"]
    assert spent.spent(DataIdentity("0" * 64, raw["hmac_sha256"], raw["key_id"])) == 1.0
    assert spent.spent("demo") == 1.0
    assert records[-1]["params"]["ledger"]["dataset"] == card["privacy"]["ledger"]["dataset"]

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[summary["run_id"]])
            )
        )
    by_key = {a.key: a for a in artifacts}
    assert set(by_key) >= {"privpipe-train-summary", "privpipe-train-metrics"}
    last = json.loads((out / "audit.jsonl").read_text().splitlines()[-1])  # the signed head
    assert last["type"] == "checkpoint" and summary["audit"]["head"] == last["hash"]
    assert f"signed head `{last['hash']}`" in str(by_key["privpipe-train-summary"].data)


def test_an_overspend_is_refused_with_one_line_and_exit_2(
    sanitized: Path,
    demo_policy_path: Path,
    tmp_path: Path,
    session_keyring: Keyring,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ledger = tmp_path / "ledger.json"
    raw = json.loads((sanitized / "manifest.json").read_text())["input"]
    # the same raw input, sanitized another way: the same people, the same budget
    earlier = DataIdentity("0" * 64, raw["hmac_sha256"], raw["key_id"], label="earlier")
    BudgetLedger(ledger, session_keyring).charge(
        earlier, epsilon=2.5, delta=1e-6, budget=3.0, run_id="earlier"
    )
    before = ledger.read_bytes()
    out = tmp_path / "model"
    rc = main(
        [
            "train",
            str(sanitized),
            "--policy",
            str(demo_policy_path),
            "--out",
            str(out),
            "--ledger",
            str(ledger),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"error: privacy budget exhausted for data set {earlier.dataset_id} (earlier): "
        "spent 2.5 of 3.0, requested 1.0"
    )
    assert ledger.read_bytes() == before
    assert not (out / "model.safetensors.sealed").exists()
    assert not (out / "model_card.json").exists()


def test_run_sanitizes_then_trains_in_one_flow(
    people,
    demo_policy_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    source = tmp_path / "people.csv"
    people.write_csv(source)
    out = tmp_path / "run"
    args = ["run", str(source), "--policy", str(demo_policy_path), "--out", str(out)]
    assert main([*args, "--ledger", str(tmp_path / "ledger.json"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["sanitize"]["anonymization"]["k_achieved"] >= 5
    card = json.loads((out / "model" / "model_card.json").read_text())
    assert summary["train"]["card"]["model_version"] == card["model_version"]
    manifest = json.loads((out / "sanitized" / "manifest.json").read_text())
    assert card["data"]["sha256"] == manifest["training_view"]["sha256"]
    # the demo policy's DP releases follow, on the same ledger, from the same view
    assert summary["synthetic"]["card"]["kind"] == "synthetic"
    assert summary["statistics"]["card"]["data"]["sha256"] == manifest["training_view"]["sha256"]
    charges = [r for r in read_trail(tmp_path / "ledger.json") if r.get("step") == "charge"]
    assert [c["params"]["release"] for c in charges] == ["model", "synthetic", "statistics"]
    assert len({tuple(c["params"]["datasets"]) for c in charges}) == 1


def test_a_non_private_baseline_is_marked_in_the_card_and_the_audit_trail(
    people: pl.DataFrame,
    demo_policy_path: Path,
    tmp_path: Path,
    session_keyring: Keyring,
) -> None:
    import yaml

    policy = yaml.safe_load(demo_policy_path.read_text())
    policy["training"]["dp"] = False
    path = tmp_path / "baseline.yaml"
    path.write_text(yaml.safe_dump(policy))
    source = tmp_path / "people.csv"
    people.write_csv(source)
    # published data is bound to the policy that sanitized it: sanitize under this one
    sanitized = tmp_path / "sanitized"
    assert main(["sanitize", str(source), "--policy", str(path), "--out", str(sanitized)]) == 0
    out = tmp_path / "model"
    ledger = tmp_path / "ledger.json"
    args = ["train", str(sanitized), "--policy", str(path), "--out", str(out)]
    assert main([*args, "--ledger", str(ledger)]) == 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["privacy"]["warning"].startswith("NOT PRIVATE")
    records = [r for r in read_trail(out / "audit.jsonl") if r.get("step") == "train"]
    assert records[-1]["params"]["status"] == "NOT PRIVATE"
    assert not ledger.exists() or BudgetLedger(ledger, session_keyring).spent("demo") == 0.0


def test_resume_continues_only_the_run_the_trail_records_as_stopped(
    sanitized: Path,
    demo_policy_path: Path,
    tmp_path: Path,
    session_keyring: Keyring,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from flows.train import CHECKPOINT
    from privacy.audit import AuditTrail
    from privacy.dp import TrainingStopped, load_training_view, train_model
    from privacy.policy import load_policy

    policy = load_policy(demo_policy_path)
    frame, _, identity = load_training_view(sanitized, policy, session_keyring)
    raw = json.loads((sanitized / "manifest.json").read_text())["input"]
    assert (identity.input_hmac_sha256, identity.input_key_id) == (
        raw["hmac_sha256"],
        raw["key_id"],
    )
    ledger, out = tmp_path / "ledger.jsonl", tmp_path / "model"
    out.mkdir()
    with pytest.raises(TrainingStopped):  # a time-limited job: stopped after one epoch
        train_model(
            frame,
            policy,
            run_id="stopped-run",
            ledger=BudgetLedger(ledger, session_keyring),
            data=identity,
            checkpoint=out / CHECKPOINT,
            keys=session_keyring.for_scope("vault"),
            stop_after=1,
        )
    context = {"run_id": "stopped-run", "flow": "train"}
    with AuditTrail(out / "audit.jsonl", session_keyring, context=context) as trail:
        trail.append("train", outcome="failed", error="TrainingStopped")
    args = ["train", str(sanitized), "--policy", str(demo_policy_path), "--out", str(out)]
    args += ["--ledger", str(ledger), "--resume"]
    assert main([*args, "--json"]) == 0
    card = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["card"]
    assert card["run_id"] == "stopped-run" and card["privacy"]["ledger"]["charged"] == 0.0
    assert BudgetLedger(ledger, session_keyring).spent("demo") == 1.0
    record = [r for r in read_trail(out / "audit.jsonl") if r["step"] == "train"][-1]
    assert record["params"]["training_run"] == "stopped-run" and record["params"]["resume"]
    assert not (out / CHECKPOINT).exists()
    assert main(args) == 2  # the run finished: nothing left to resume
    assert "no training run stopped before it finished" in capsys.readouterr().err


def test_a_manifest_that_does_not_describe_the_data_is_refused(
    sanitized: Path, demo_policy_path: Path, tmp_path: Path, session_keyring: Keyring
) -> None:
    import shutil

    from flows.train import resumable_run
    from privacy.dp import load_published
    from privacy.errors import InputError
    from privacy.policy import load_policy

    policy = load_policy(demo_policy_path)
    copy = tmp_path / "copy"
    shutil.copytree(sanitized, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["output"]["sha256"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="the manifest does not describe this data"):
        load_published(copy, policy, session_keyring)
    (copy / "manifest.json").write_text("[]")
    with pytest.raises(InputError, match="not a sanitize manifest"):
        load_published(copy / manifest["output"]["path"], policy, session_keyring)
    with pytest.raises(InputError, match="no audit trail"):
        resumable_run(tmp_path / "empty", session_keyring)
