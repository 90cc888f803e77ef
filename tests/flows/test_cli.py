"""The command line without Prefect: help, policy, synth, and the checks that fail fast."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from flows.cli import main

HEAVY = ("prefect", "torch", "presidio_analyzer", "spacy", "opacus", "polars")


def test_help_loads_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from flows.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage: privpipe" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("privpipe 0.")


def test_policy_check_ok_and_json(
    demo_policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "check", str(demo_policy_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["status"] == "ok" and result["name"] == "demo" and len(result["sha256"]) == 64


def test_policy_check_error_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\ncolumns:\n  a: {rule: keep}\nprivacy: {k: -1}\n")
    assert main(["policy", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {bad}: privacy.k:")
    assert "Traceback" not in err


def test_debug_shows_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\ncolumns: {}\n")
    assert main(["--debug", "policy", "check", str(bad)]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_policy_schema_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "privpipe policy" and "columns" in schema["properties"]


def test_synth_is_deterministic_and_writes_by_suffix(tmp_path: Path) -> None:
    assert main(["synth", "--rows", "200", "--seed", "4", "--out", str(tmp_path / "a.csv")]) == 0
    assert main(["synth", "--rows", "200", "--seed", "4", "--out", str(tmp_path / "b.csv")]) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (
        main(["synth", "--rows", "200", "--seed", "4", "--out", str(tmp_path / "c.parquet")]) == 0
    )
    assert pl.read_parquet(tmp_path / "c.parquet").height == 200


def test_synth_refuses_unknown_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "--rows", "10", "--out", str(tmp_path / "x.xlsx")]) == 2
    assert "cannot tell the format" in capsys.readouterr().err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sanitize"]) == 2
    assert "Missing" in capsys.readouterr().err


def test_sanitize_missing_input_fails_before_prefect(
    tmp_path: Path, demo_policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "sanitize",
            str(tmp_path / "nope.csv"),
            "--policy",
            str(demo_policy_path),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'nope.csv'}: input file not found\n"


def test_sanitize_refuses_non_empty_output(
    tmp_path: Path, people_csv: Path, demo_policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "something").write_text("x")
    code = main(["sanitize", str(people_csv), "--policy", str(demo_policy_path), "--out", str(out)])
    assert code == 2
    assert "output folder exists and is not empty (use --overwrite)" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["something"]
