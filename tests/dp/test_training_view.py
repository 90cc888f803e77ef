"""``training.input: deidentified``: sanitize keeps the transform stage's output as a
sealed training view under the vault scope; DP training reads it (quasi-identifiers
intact), the card and the trail say so, and the view cannot be swapped or read by a
keyring without the vault scope."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from flows.cli import main
from privacy.audit import read_trail
from privacy.crypto import unseal_bytes
from privacy.policy import load_policy
from privacy.stages import training_view_associated_data

pytestmark = pytest.mark.prefect  # runs flows: Prefect's temporary server


def _policy(tmp: Path, demo_policy_path: Path, **training: Any) -> Path:
    data: dict[str, Any] = yaml.safe_load(demo_policy_path.read_text())
    for column in data["columns"].values():
        if (column.get("hierarchy") or {}).get("kind") == "file":
            column["hierarchy"]["path"] = str(demo_policy_path.parent / column["hierarchy"]["path"])
    data["training"] = {**data["training"], "epochs": 2, **training}
    path = tmp / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def run(
    people, demo_policy_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("view")
    source = folder / "people.csv"
    people.write_csv(source)
    policy = _policy(folder, demo_policy_path)
    out = folder / "out"
    assert main(["-q", "sanitize", str(source), "--policy", str(policy), "--out", str(out)]) == 0
    return {"out": out, "policy": policy, "folder": folder}


def test_sanitize_keeps_a_sealed_view_with_the_quasi_identifiers_intact(
    run: dict[str, Path], people: pl.DataFrame, session_keyring: Any
) -> None:
    out = run["out"]
    manifest = json.loads((out / "manifest.json").read_text())
    view = manifest["training_view"]
    assert view["path"] == "vault/training-view.parquet.sealed" and view["scope"] == "vault"
    policy = load_policy(run["policy"])
    plain = unseal_bytes(
        out / view["path"],
        session_keyring.for_scope("vault"),
        expected=training_view_associated_data(policy, manifest["input"]),
    )
    frame = pl.read_parquet(io.BytesIO(plain))
    assert frame.height == view["rows"] == people.height  # nothing suppressed from it
    # quasi-identifiers as they were; direct identifiers transformed as in the release
    assert sorted(frame["age"].to_list()) == sorted(people["age"].to_list())
    assert "name" not in frame.columns and "ssn" not in frame.columns
    assert not set(frame["person_id"].to_list()) & set(people["person_id"].to_list())
    published = manifest["output"]
    assert published["sha256"] != view["sha256"]
    publish = [r for r in read_trail(out / "audit.jsonl") if r.get("step") == "publish"][-1]
    assert publish["params"]["training_view"]["sha256"] == view["sha256"]


def test_dp_training_reads_the_view_and_says_so(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"
    args = ["train", str(run["out"]), "--policy", str(run["policy"]), "--out", str(model)]
    assert main([*args, "--ledger", str(tmp_path / "ledger.json")]) == 0
    assert "trained on the deidentified data" in capsys.readouterr().out
    card = json.loads((model / "model_card.json").read_text())
    manifest = json.loads((run["out"] / "manifest.json").read_text())
    assert card["data"]["input"] == "deidentified"
    assert card["data"]["sha256"] == manifest["training_view"]["sha256"]
    assert "vault" in card["data"]["input_why"]
    train = [r for r in read_trail(model / "audit.jsonl") if r.get("step") == "train"][-1]
    assert train["params"]["training_input"] == "deidentified"
    report = (model / "report.html").read_text()
    assert "deidentified" in report and "Precision and recall across thresholds" in report


def test_a_view_swapped_for_the_published_data_is_refused(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "copy"
    shutil.copytree(run["out"], out)
    manifest = json.loads((out / "manifest.json").read_text())
    view = out / manifest["training_view"]["path"]
    shutil.copy(out / "data.parquet.sealed", view)  # the release, under the view's name
    manifest["training_view"]["sha256"] = manifest["output"]["sha256"]  # and its digest
    (out / "manifest.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    args = ["train", str(out), "--policy", str(run["policy"]), "--out", str(tmp_path / "m")]
    assert main([*args, "--ledger", str(tmp_path / "ledger.json")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training-view.parquet.sealed" in err[0]
    assert not (tmp_path / "m" / "model_card.json").exists()
    # a replaced view whose digest the manifest does not give is refused by the digest
    shutil.copy(run["out"] / "data.parquet.sealed", view)
    manifest["training_view"]["sha256"] = "0" * 64
    (out / "manifest.json").write_text(json.dumps(manifest))
    args[-1] = str(tmp_path / "m2")
    assert main([*args, "--ledger", str(tmp_path / "ledger.json")]) != 0
    assert "training_view.sha256" in capsys.readouterr().err


def test_deidentified_needs_the_output_folder_and_dp(
    run: dict[str, Path],
    demo_policy_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = run["out"] / "data.parquet.sealed"
    args = ["train", str(data), "--policy", str(run["policy"]), "--out", str(tmp_path / "m")]
    assert main([*args, "--ledger", str(tmp_path / "ledger.json")]) == 2
    err = capsys.readouterr().err
    assert "not a sanitize output folder" in err and "training.input: published" in err
    bad = _policy(tmp_path, demo_policy_path, input="deidentified", dp=False)
    assert main(["policy", "check", str(bad)]) == 2
    refused = capsys.readouterr().err
    assert "training" in refused and "needs dp: true" in refused


def test_published_input_writes_no_view_and_trains_on_the_release(
    people: pl.DataFrame, demo_policy_path: Path, tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    people.write_csv(source)
    policy = _policy(tmp_path, demo_policy_path, input="published")
    data = yaml.safe_load(policy.read_text())
    for release in ("synthetic", "statistics"):  # they read the view too
        data[release]["enabled"] = False
    policy.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    assert main(["-q", "sanitize", str(source), "--policy", str(policy), "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert "training_view" not in manifest
    assert not (out / "vault" / "training-view.parquet.sealed").exists()
    model = tmp_path / "model"
    args = ["-q", "train", str(out), "--policy", str(policy), "--out", str(model)]
    assert main([*args, "--ledger", str(tmp_path / "ledger.json")]) == 0
    card = json.loads((model / "model_card.json").read_text())
    assert card["data"]["input"] == "published"
    assert card["data"]["sha256"] == manifest["output"]["sha256"]


def test_train_in_two_processes_charges_once_and_seals_one_model(
    run: dict[str, Path], tmp_path: Path, session_keyring: Any
) -> None:
    from privacy.dp import BudgetLedger

    model, ledger = tmp_path / "model", tmp_path / "ledger.jsonl"
    args = ["-q", "train", str(run["out"]), "--policy", str(run["policy"]), "--out", str(model)]
    assert main([*args, "--ledger", str(ledger), "--nproc", "2"]) == 0
    card = json.loads((model / "model_card.json").read_text())
    assert card["privacy"]["processes"] == 2 and card["data"]["input"] == "deidentified"
    assert BudgetLedger(ledger, session_keyring).spent("demo") == card["privacy"]["target_epsilon"]
    assert sorted(p.name for p in model.glob("*.sealed")) == ["model.safetensors.sealed"]
    train = [r for r in read_trail(model / "audit.jsonl") if r.get("step") == "train"]
    assert len(train) == 1 and train[0]["params"]["processes"] == 2


def test_an_analysts_keyring_cannot_open_the_view(
    run: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import os

    from tests.conftest import KEYRING

    analyst = tmp_path / "analyst" / "keyring.json"
    monkeypatch.setenv("PRIVPIPE_NEW_PASSPHRASE", "analyst passphrase")
    export = ["keys", "export", "--keyring", str(KEYRING), "--scope", "published"]
    assert main([*export, "--out", str(analyst)]) == 0
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", "analyst passphrase")
    assert os.environ["PRIVPIPE_PASSPHRASE"] == "analyst passphrase"
    capsys.readouterr()
    model = tmp_path / "model"
    args = ["train", str(run["out"]), "--policy", str(run["policy"]), "--out", str(model)]
    code = main([*args, "--keyring", str(analyst), "--ledger", str(tmp_path / "ledger.jsonl")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'vault' scope" in err[0]
    assert not (model / "model_card.json").exists()
