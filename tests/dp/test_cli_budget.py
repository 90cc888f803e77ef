"""privpipe budget show / set: the ledger verified before a number is shown, a budget
changed only by the custodian and on the record, one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flows.cli import main
from privacy.audit import read_trail
from privacy.crypto import Keyring
from privacy.dp import BudgetLedger, DataIdentity

DATA = DataIdentity("f" * 64, "1" * 64, "key-1", label="people")


@pytest.fixture
def ledger(tmp_path: Path, session_keyring: Keyring) -> Path:
    path = tmp_path / "ledger.jsonl"
    book = BudgetLedger(path, session_keyring)
    book.charge(DATA, epsilon=1.0, delta=1e-6, budget=3.0, run_id="run-1")
    book.charge(DATA, epsilon=0.5, delta=1e-6, budget=3.0, run_id="run-2")
    return path


def test_show_verifies_then_prints_each_data_set(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["budget", "show", "--ledger", str(ledger)]) == 0
    out = capsys.readouterr().out
    assert "verified, signed by sig-" in out and "authenticated by its passphrase" in out
    assert f"{DATA.dataset_id}  people: spent ε 1.5 of 3 (1.5 left)" in out and "2 runs" in out
    assert main(["budget", "show", "people", "--ledger", str(ledger)]) == 0
    out = capsys.readouterr().out
    assert "run run-1: ε 1" in out and "run run-2: ε 0.5" in out
    assert main(["budget", "show", DATA.dataset_id, "--ledger", str(ledger), "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["epsilon_spent"] == 1.5 and entry["budget"] == 3.0


def test_show_refuses_a_deleted_ledger_with_exit_3(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.unlink()
    assert main(["budget", "show", "--ledger", str(ledger)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ledger is gone, but the witness" in err[0]


def test_show_of_an_unknown_data_set_is_one_line(
    ledger: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["budget", "show", "nobody", "--ledger", str(ledger)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {ledger}: no data set 'nobody' in the ledger"


def test_set_changes_the_budget_on_the_record(
    ledger: Path, session_keyring: Keyring, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["budget", "set", "people", "5", "--reason", "ethics board, ticket 42"]
    assert main([*args, "--ledger", str(ledger)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"budget of {DATA.dataset_id} (people): 3 -> 5 (spent 1.5); recorded in {ledger}"
    )
    book = BudgetLedger(ledger, session_keyring)
    assert book.entry(DATA)["budget"] == 5.0  # type: ignore[index]
    (record,) = [r for r in read_trail(ledger) if r["step"] == "budget-set"]
    assert record["params"]["reason"] == "ethics board, ticket 42"
    assert record["params"]["previous"] == 3.0
    assert main(["budget", "show", "people", "--ledger", str(ledger)]) == 0
    assert "budget 3 -> 5 by " in capsys.readouterr().out


def test_set_needs_the_custodians_keyring_and_a_reason(
    ledger: Path, session_keyring: Keyring, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    analyst = tmp_path / "analyst.json"
    session_keyring.export(analyst, os.environ["PRIVPIPE_PASSPHRASE"], ["published"])
    before = ledger.read_bytes()
    args = ["budget", "set", "people", "50", "--ledger", str(ledger)]
    assert main([*args, "--reason", "mine", "--keyring", str(analyst)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the keyring must hold the 'vault' scope" in err[0]
    assert ledger.read_bytes() == before
    assert main(args) == 2  # no --reason: a usage error
    assert "--reason" in capsys.readouterr().err


def test_train_resume_with_a_keyring_without_vault_says_why(
    tmp_path: Path,
    session_keyring: Keyring,
    demo_policy_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    analyst = tmp_path / "analyst.json"
    session_keyring.export(analyst, os.environ["PRIVPIPE_PASSPHRASE"], ["published"])
    data = tmp_path / "data.parquet"
    data.write_bytes(b"")
    args = ["train", str(data), "--policy", str(demo_policy_path), "--out", str(tmp_path / "m")]
    assert main([*args, "--resume", "--keyring", str(analyst)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume: checkpoints are run intermediates" in err[0]
    assert "'vault' scope, which this keyring does not hold" in err[0]


def test_show_and_set_say_what_they_need(
    ledger: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = tmp_path / "nowhere.witness"
    assert main(["budget", "show", "--ledger", str(ledger), "--witness", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {missing}: witness file not found"
    monkeypatch.delenv("PRIVPIPE_KEYRING")
    assert main(["budget", "show", "--ledger", str(ledger)]) == 2
    assert "budget show needs the ledger's signing key" in capsys.readouterr().err
    assert main(["budget", "set", "people", "4", "--reason", "x", "--ledger", str(ledger)]) == 2
    assert "budget set needs the custodian's keyring" in capsys.readouterr().err
