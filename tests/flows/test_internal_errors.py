"""An exception that is not privpipe's: replaced by its type and stage before Prefect
records it (its message may hold a value), and exit 1 with one ``error: internal
error (...)`` line; ``--debug`` still shows the original, in this process only."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from flows.cli import main
from privacy.errors import InputError


def _secret() -> str:
    """A value that must not leave the failing process (a stand-in for a raw cell)."""
    return f"SECRET-{uuid.uuid4().hex}"


def test_a_stage_error_is_replaced_by_its_type_and_stage() -> None:
    from flows._tasks import InternalStageError, last_internal_error, sanitized

    secret = _secret()
    original = ValueError(f"could not parse {secret}")

    @sanitized("transform")
    def stage() -> None:
        raise original

    with pytest.raises(InternalStageError) as caught:
        stage()
    assert str(caught.value) == "internal error in stage transform (ValueError)"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert last_internal_error() is original  # kept here, for --debug


def test_a_privpipe_error_keeps_its_type_and_message_but_not_its_chain() -> None:
    from flows._tasks import sanitized

    secret = _secret()

    @sanitized("ingest")
    def stage() -> None:
        try:
            raise KeyError(secret)  # e.g. a lookup whose key is a raw value
        except KeyError:
            raise InputError("in.csv: row 3 is malformed") from None

    with pytest.raises(InputError, match=r"^in\.csv: row 3 is malformed$") as caught:
        stage()
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_an_internal_error_is_exit_1_and_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import privacy.synth

    secret = _secret()

    def broken(rows: int, seed: int = 0) -> None:
        raise RuntimeError(f"bug near {secret}")

    monkeypatch.setattr(privacy.synth, "synthesize", broken)
    out = tmp_path / "people.csv"
    assert main(["synth", "--out", str(out), "--rows", "5"]) == 1
    captured = capsys.readouterr()
    assert captured.err == "error: internal error (RuntimeError); rerun with --debug for details\n"
    assert secret not in captured.out + captured.err
    assert not out.exists()

    assert main(["--debug", "synth", "--out", str(out), "--rows", "5"]) == 1
    err = capsys.readouterr().err
    # asked for, on this terminal only; and this error's traceback, not an earlier one's
    # (an earlier stage's original lingers in the process: the test above left one)
    assert "Traceback" in err and secret in err
    assert err.splitlines()[-1].startswith("error: internal error (RuntimeError)")


@pytest.mark.prefect
def test_an_internal_error_in_a_flow_stage_reaches_neither_prefect_nor_the_trail(
    tmp_path: Path,
    people_csv: Path,
    demo_policy_path: Path,
    session_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from privacy import stages
    from privacy.audit import read_trail

    secret = _secret()

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError(f"search failed on {secret}")

    monkeypatch.setattr(stages, "plan_anonymization", broken)
    out = tmp_path / "out"
    args = ["sanitize", str(people_csv), "--policy", str(demo_policy_path), "--out", str(out)]
    assert main([*args, "--json"]) == 1
    captured = capsys.readouterr()
    err = captured.err
    assert err.splitlines()[-1] == (
        "error: internal error in stage anonymize (ValueError); rerun with --debug for details"
    ), err
    assert json.loads(captured.out.strip().splitlines()[-1]) == {
        "status": "error",
        "error": "InternalError",
        "message": "internal error",
    }
    assert secret not in captured.out + err and "Traceback" not in err
    for name in (stages.DATA_FILE, stages.SEALED_DATA_FILE, stages.MANIFEST_FILE):
        assert not (out / name).exists()
    failed = [r for r in read_trail(out / "audit.jsonl") if r["outcome"] == "failed"]
    assert [(r["step"], r["error"]) for r in failed] == [("anonymize", "InternalStageError")]
    assert secret.encode() not in (out / "audit.jsonl").read_bytes()
    # what Prefect stored (its database, WAL included, and logs) never saw the message
    home = session_root / "prefect-home"
    leaked = [p for p in home.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaked == []
