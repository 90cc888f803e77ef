"""privpipe audit verify / show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.cli import main
from privacy.audit import AuditTrail
from privacy.crypto import Keyring


@pytest.fixture
def trail(tmp_path: Path, keyring: Keyring) -> Path:
    path = tmp_path / "audit.jsonl"
    for run in ("r1", "r2"):
        with AuditTrail(path, keyring, context={"run_id": run, "flow": "sanitize"}) as t:
            t.append("ingest", counts={"rows_in": 5, "rows_out": 5}, duration_s=0.5)
            t.append("gate", outcome="failed", error="PrivacyGuaranteeError")
    return path


def test_verify_intact_exits_0_with_one_line(
    trail: Path, keyring: Keyring, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "verify", str(trail), "--keyring", str(keyring.path)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "intact: 6 records (4 steps, 2 failed; 2 signed checkpoints), 2 runs" in out


def test_verify_with_an_out_of_band_public_key(
    trail: Path, keyring: Keyring, capsys: pytest.CaptureFixture[str]
) -> None:
    key = keyring.signing_public_key.hex()
    assert main(["audit", "verify", str(trail), "--public-key", key]) == 0
    assert main(["audit", "verify", str(trail), "--public-key", "00" * 32]) == 3
    assert "bad signature" in capsys.readouterr().err


def test_verify_tampered_exits_3_naming_the_line(
    trail: Path, keyring: Keyring, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = trail.read_bytes().splitlines(keepends=True)
    del lines[1]
    trail.write_bytes(b"".join(lines))
    assert main(["audit", "verify", str(trail), "--keyring", str(keyring.path)]) == 3
    err = capsys.readouterr().err
    assert (
        err == f"error: {trail}: line 2: out of sequence: expected record 2, found record 3 "
        "(records deleted, duplicated or reordered)\n"
    )


def test_show_latest_run_as_table_and_json(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "show", str(trail)]) == 0
    table = capsys.readouterr().out
    assert "run r2" in table and "ingest" in table and "PrivacyGuaranteeError" in table
    assert main(["audit", "show", str(trail), "--run", "r1", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["step"]) for r in records] == [("r1", "ingest"), ("r1", "gate")]
    assert main(["audit", "show", str(trail), "--run", "nope"]) == 2
