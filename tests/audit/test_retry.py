"""A user's retry after a failed run (issue 30, item 9): the first run failed, the user
deleted the output folder and ran again. The new run goes ahead, on the record: its
trail's first record and the witness name the trail it supersedes, and `audit verify`
and the report say so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.cli import main
from privacy.integrity import witness_path
from privacy.report import build_report
from tests.conftest import KEYRING

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


def test_a_retry_after_a_failed_run_and_a_deleted_folder_just_works(
    tmp_path: Path,
    people,  # type: ignore[no-untyped-def]
    demo_policy_path: Path,
    session_keyring,  # type: ignore[no-untyped-def]
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad, good = tmp_path / "bad.csv", tmp_path / "people.csv"
    people.drop("age").write_csv(bad)  # a declared column missing: ingest fails
    people.write_csv(good)
    out = tmp_path / "out"
    args = ["-q", "sanitize", "--policy", str(demo_policy_path), "--out", str(out)]
    assert main([*args, str(bad)]) != 0
    failed_records = len((out / "audit.jsonl").read_bytes().splitlines())
    shutil.rmtree(out)
    capsys.readouterr()
    assert main([*args, str(good)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["audit", "verify", str(out / "audit.jsonl")]) == 0
    said = capsys.readouterr().out
    assert f"supersedes a trail that was gone from {out / 'audit.jsonl'}" in said
    assert f"recorded {failed_records} records" in said
    text = build_report(out, session_keyring.signing_public_key, witness=witness_path(KEYRING))
    assert "supersedes a trail that was gone" in text
    assert 'data-verdict="releasable"' in text
