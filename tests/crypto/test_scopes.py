"""Key scopes: a keyring holding only the published scope (an analyst's) reads sanitized
outputs and trains, but cannot open the raw vault, use the pseudonym secret, or sign the
pipeline's audit trail; each refusal names the missing scope and is itself audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.cli import main
from privacy.audit import AuditTrail, read_trail
from privacy.crypto import Keyring
from privacy.errors import ScopeError

CUSTODIAN = "custodian passphrase"
ANALYST = "analyst passphrase"


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


@pytest.fixture
def rings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.delenv("PRIVPIPE_KEYRING", raising=False)
    custodian = tmp_path / "custodian" / "keyring.json"
    Keyring.create(custodian, CUSTODIAN, scrypt_n=2**14)
    analyst = tmp_path / "analyst" / "keyring.json"
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", CUSTODIAN)
    monkeypatch.setenv("PRIVPIPE_NEW_PASSPHRASE", ANALYST)
    args = ["keys", "export", "--keyring", str(custodian), "--scope", "published"]
    assert main([*args, "--out", str(analyst)]) == 0
    return custodian, analyst


def test_an_exported_keyring_holds_only_its_scopes(rings: tuple[Path, Path]) -> None:
    custodian, analyst = rings
    full = Keyring.open(custodian, CUSTODIAN)
    ring = Keyring.open(analyst, ANALYST)
    assert ring.scopes == {"published"}
    assert [k.id for k in ring.list_keys()] == [
        k.id for k in full.list_keys() if k.scope == "published"
    ]
    assert ring.signing_key_id != full.signing_key_id  # its own, never the pipeline's
    assert "pseudonym" not in analyst.read_text()  # no pseudonym key id, nothing
    with pytest.raises(ScopeError, match=r"does not hold the 'pseudonym' scope") as caught:
        ring.pseudonym_key()
    assert caught.value.scope == "pseudonym"
    with pytest.raises(ScopeError, match=r"'vault' scope"):
        ring.for_scope("vault")
    # the export is on the custodian's trail
    steps = [r for r in read_trail(custodian.parent / "audit.jsonl") if r.get("step")]
    assert steps[-1]["step"] == "keys.export" and steps[-1]["params"]["scopes"] == ["published"]


def test_only_the_audit_scope_extends_a_trail_the_pipeline_signed(
    tmp_path: Path, rings: tuple[Path, Path]
) -> None:
    custodian, analyst = rings
    trail = tmp_path / "run" / "audit.jsonl"
    with AuditTrail(trail, Keyring.open(custodian, CUSTODIAN)) as pipeline:
        pipeline.append("ingest")
    with pytest.raises(ScopeError, match=r"needs the 'audit' scope"):
        AuditTrail(trail, Keyring.open(analyst, ANALYST))
    with AuditTrail(tmp_path / "own.jsonl", Keyring.open(analyst, ANALYST)) as own:
        own.append("train")  # its own trail: signed by its own key


@pytest.mark.prefect
def test_the_analyst_reads_and_trains_but_is_refused_the_raw_side(
    tmp_path: Path,
    rings: tuple[Path, Path],
    people_csv: Path,
    demo_policy_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    custodian, analyst = rings
    policy = tmp_path / "policy.yaml"
    data: dict[str, Any] = yaml.safe_load(demo_policy_path.read_text())
    for column in data["columns"].values():
        if (column.get("hierarchy") or {}).get("kind") == "file":
            column["hierarchy"]["path"] = str(demo_policy_path.parent / column["hierarchy"]["path"])
    # the analyst trains on the release: the deidentified training view is the custodian's
    data["training"] = {**data.get("training", {}), "epochs": 2, "input": "published"}
    policy.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    custodian_args = ["--policy", str(policy), "--keyring", str(custodian)]
    assert main(["-q", "sanitize", str(people_csv), *custodian_args, "--out", str(out)]) == 0

    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", ANALYST)
    monkeypatch.setenv("PRIVPIPE_LEDGER", str(tmp_path / "ledger.json"))
    k = ["--keyring", str(analyst)]
    capsys.readouterr()
    # published data: readable, and trainable
    assert main(["decrypt", str(out / "data.parquet.sealed"), str(tmp_path / "d.parquet"), *k]) == 0
    model = tmp_path / "model"
    train = ["-q", "train", str(out), "--policy", str(policy), *k, "--out", str(model)]
    assert main(train) == 0
    assert (model / "model_card.json").is_file()

    # the raw vault: refused, naming the scope; nothing written
    vault = next((out / "vault").iterdir())
    target = tmp_path / "raw.csv"
    assert main(["decrypt", str(vault), str(target), *k]) == 2
    err = _error_line(capsys)
    assert "'vault' scope" in err and "does not hold that scope" in err
    assert not target.exists()
    # sanitizing needs the vault and the pseudonym secret: refused before Prefect starts
    again = ["sanitize", str(people_csv), "--policy", str(policy), *k, "--out", str(tmp_path / "x")]
    assert main(again) == 2
    assert "'vault' scope" in _error_line(capsys)

    refusals = [
        r for r in read_trail(analyst.parent / "audit.jsonl") if r.get("step") == "access.refused"
    ]
    assert [(r["params"]["command"], r["params"]["scope"]) for r in refusals] == [
        ("decrypt", "vault"),
        ("sanitize", "vault"),
    ]
    assert all(r["outcome"] == "refused" and r["actor"]["user"] for r in refusals)
    assert main(["audit", "verify", str(analyst.parent / "audit.jsonl"), *k]) == 0


def test_a_key_operation_on_the_pipelines_trail_is_refused_before_it_runs(
    tmp_path: Path,
    rings: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    custodian, analyst = rings
    pipeline_trail = custodian.parent / "audit.jsonl"  # signed by the pipeline's key
    plain = tmp_path / "notes.txt"
    plain.write_text("nothing personal\n")
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", ANALYST)
    sealed = tmp_path / "notes.txt.sealed"
    args = ["encrypt", str(plain), str(sealed), "--keyring", str(analyst)]
    capsys.readouterr()
    assert main([*args, "--audit", str(pipeline_trail)]) == 2
    assert "needs the 'audit' scope" in _error_line(capsys)
    assert not sealed.exists()  # refused before the work, not after
    (refusal,) = [
        r for r in read_trail(analyst.parent / "audit.jsonl") if r.get("step") == "access.refused"
    ]
    assert refusal["params"] == {"command": "encrypt", "scope": "audit", "keyring": str(analyst)}
