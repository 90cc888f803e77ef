"""privpipe synthesize and privpipe stats through Prefect (issue 32): each release is
sealed, carded, signed and charged to the one ledger; the report's verdict reads them
from their signed records and fails a card that was replaced; a domain the policy does
not declare and an overspend are refused with one line and exit 2, changing nothing;
a table that copies rows fails the gate closed and nothing is published."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from flows.cli import main
from privacy.audit import read_trail
from privacy.crypto import unseal_bytes
from privacy.dp import BudgetLedger, DataIdentity
from privacy.integrity import witness_path
from privacy.layout import release_associated_data
from privacy.policy import load_policy
from privacy.report import load_run, verdict

pytestmark = [pytest.mark.prefect, pytest.mark.slow]  # four flows on 1,500 people


def _policy(path: Path, demo: Path, **synthetic: Any) -> Path:
    data = yaml.safe_load(demo.read_text())
    data["synthetic"] = {**data["synthetic"], "rows": 1000, "iterations": 300, **synthetic}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def released(
    people, demo_policy_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("releases")
    source = root / "people.csv"
    people.head(1500).write_csv(source)
    policy = _policy(root / "policy.yaml", demo_policy_path)
    run = root / "run"
    ledger = root / "ledger.jsonl"
    assert (
        main(
            [
                "-q",
                "sanitize",
                str(source),
                "--policy",
                str(policy),
                "--out",
                str(run / "sanitized"),
            ]
        )
        == 0
    )
    for command, folder in (("synthesize", "synthetic"), ("stats", "stats")):
        args = [
            command,
            str(run / "sanitized"),
            "--policy",
            str(policy),
            "--out",
            str(run / folder),
        ]
        assert main(["-q", *args, "--ledger", str(ledger)]) == 0
    return {"root": root, "run": run, "policy": policy, "ledger": ledger}


def _verdict(run: Path, ring: Any, ledger: Path | None = None) -> Any:
    return verdict(
        load_run(run, ring.signing_public_key, witness=witness_path(ring.path), ledger=ledger)
    )


def test_each_release_is_sealed_carded_signed_and_on_one_ledger(
    released: dict[str, Path], session_keyring: Any
) -> None:
    run, policy = released["run"], load_policy(released["policy"])
    blob = (run / "synthetic" / "synthetic.parquet.sealed").read_bytes()
    table = pl.read_parquet(
        io.BytesIO(
            unseal_bytes(
                blob, session_keyring, expected=release_associated_data(policy, "synthetic")
            )
        )
    )
    assert table.columns == policy.synthetic.columns and table.height == 1000  # type: ignore[union-attr]
    with pytest.raises(Exception):  # noqa: B017 - sealed: not a Parquet file as it lies
        pl.read_parquet(io.BytesIO(blob))
    stats = pl.read_csv(
        io.BytesIO(
            unseal_bytes((run / "stats" / "statistics.csv.sealed").read_bytes(), session_keyring)
        )
    )
    assert stats.height == 10 + 32 + 2  # every declared group of the three queries
    card = json.loads((run / "synthetic" / "synthetic_card.json").read_text())
    record = [
        r for r in read_trail(run / "synthetic" / "audit.jsonl") if r.get("step") == "synthesize"
    ][-1]
    assert record["params"]["epsilon"] == card["privacy"]["epsilon"] <= 1.0 + 1e-9
    assert set(record["outputs"]["files"]) == {"synthetic.parquet.sealed", "synthetic_card.json"}
    charges = [r["params"] for r in read_trail(released["ledger"]) if r.get("step") == "charge"]
    assert [c["release"] for c in charges] == ["synthetic", "statistics"]
    assert len({tuple(c["datasets"]) for c in charges}) == 1  # one data set, one identity
    result = _verdict(run, session_keyring, released["ledger"])
    assert result.releasable, result.reasons
    keys = {g.key for g in result.rows if g.passed}
    expected = {
        *("synthetic-epsilon", "synthetic-budget", "synthetic-exact-match"),
        *("synthetic-membership", "statistics-epsilon", "statistics-budget"),
        *("synthetic-data", "statistics-data"),
    }
    assert expected <= keys
    assert 'id="chart-ledger"' in (run / "stats" / "report.html").read_text()


def test_a_replaced_card_fails_the_verdict(
    released: dict[str, Path], session_keyring: Any, tmp_path: Path
) -> None:
    """The insider edits the card the reviewer reads (a smaller ε, a better attack
    figure): its bytes are not the ones the signed record names."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(released["run"], copy)
    path = copy / "synthetic" / "synthetic_card.json"
    card = json.loads(path.read_text())
    card["privacy"]["epsilon"] = 0.01
    path.write_text(json.dumps(card))
    result = _verdict(copy, session_keyring)
    assert not result.releasable
    failed = {g.key for g in result.rows if g.passed is False}
    assert "synthesize-card-file" in failed
    shown = next(g for g in result.rows if g.key == "synthetic-epsilon")
    assert "0.01" not in shown.achieved  # the figure is the signed record's


def test_a_release_folder_from_another_run_fails_the_binding(
    released: dict[str, Path], session_keyring: Any, people, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import shutil

    other_source = tmp_path / "other.csv"
    people.tail(800).write_csv(other_source)
    other = tmp_path / "other"
    assert (
        main(
            [
                "-q",
                "sanitize",
                str(other_source),
                "--policy",
                str(released["policy"]),
                "--out",
                str(other),
            ]
        )
        == 0
    )
    copy = tmp_path / "run"
    shutil.copytree(released["run"], copy)
    shutil.rmtree(copy / "sanitized")
    shutil.copytree(other, copy / "sanitized")
    result = _verdict(copy, session_keyring)
    assert {"synthetic-data", "statistics-data"} <= {
        g.key for g in result.rows if g.passed is False
    }


def test_an_undeclared_domain_is_refused_before_anything(
    released: dict[str, Path],
    demo_policy_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = _policy(tmp_path / "p.yaml", demo_policy_path, columns=["age", "zip", "sex"])
    before = released["ledger"].read_bytes()
    out = tmp_path / "syn"
    code = main(
        [
            "synthesize",
            str(released["run"] / "sanitized"),
            "--policy",
            str(policy),
            "--out",
            str(out),
            "--ledger",
            str(released["ledger"]),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "add columns.zip.domain" in err[0]
    assert not out.exists() and released["ledger"].read_bytes() == before


def test_over_budget_is_refused_and_nothing_is_written(
    released: dict[str, Path],
    tmp_path: Path,
    session_keyring: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The data set's budget spent to the last 0.1 (by its raw input's keyed digest, one
    of the identities the releases were charged under): the statistics' 0.5 is refused
    before any noise is drawn, and neither the ledger nor the folder changes."""
    import shutil

    ledger = tmp_path / "ledger.jsonl"
    for part in released["ledger"].parent.glob("ledger.jsonl*"):  # the trail and its head
        shutil.copy(part, tmp_path / part.name)
    manifest = json.loads((released["run"] / "sanitized" / "manifest.json").read_text())
    raw = DataIdentity("0" * 64, manifest["input"]["hmac_sha256"], manifest["input"]["key_id"])
    BudgetLedger(ledger, session_keyring).charge(
        raw, epsilon=1.4, delta=0.0, budget=3.0, run_id="x"
    )
    before = ledger.read_bytes()
    out = tmp_path / "stats"
    args = ["stats", str(released["run"] / "sanitized"), "--policy", str(released["policy"])]
    code = main([*args, "--out", str(out), "--ledger", str(ledger)])
    err = capsys.readouterr().err
    assert (
        code == 2 and "privacy budget exhausted" in err and "spent 2.9 of 3.0, requested 0.5" in err
    )
    assert ledger.read_bytes() == before
    assert not list(out.glob("statistics.*"))


def test_a_table_that_copies_rows_fails_the_gate_and_is_not_published(
    released: dict[str, Path], demo_policy_path: Path, tmp_path: Path, session_keyring: Any
) -> None:
    """Three columns with few values: most synthetic rows equal some real row; with a
    threshold of 10 % the gate fails closed, on the record, and publishes nothing."""
    policy = _policy(
        tmp_path / "p.yaml",
        demo_policy_path,
        columns=["sex", "race", "income"],
        epsilon=0.3,
        max_exact_match_share=0.1,
    )
    sanitized = tmp_path / "sanitized"  # a view opens only under the policy that made it
    args = ["-q", "sanitize", str(released["root"] / "people.csv"), "--policy", str(policy)]
    assert main([*args, "--out", str(sanitized)]) == 0
    out = tmp_path / "syn"
    ledger = tmp_path / "ledger.jsonl"
    code = main(
        [
            "-q",
            "synthesize",
            str(sanitized),
            "--policy",
            str(policy),
            "--out",
            str(out),
            "--ledger",
            str(ledger),
        ]
    )
    assert code == 2
    assert (
        not (out / "synthetic.parquet.sealed").exists()
        and not (out / "synthetic_card.json").exists()
    )
    failed = [r for r in read_trail(out / "audit.jsonl") if r.get("outcome") == "failed"]
    assert failed[-1]["params"]["guarantee"] == "synthetic-exact-match"
    result = _verdict(out, session_keyring)
    assert not result.releasable
    assert any(g.key == "synthetic-exact-match" and g.passed is False for g in result.rows)


def test_a_replaced_release_file_fails_audit_verify_and_the_verdict(
    released: dict[str, Path], session_keyring: Any, tmp_path: Path
) -> None:
    """The insider swaps the sealed statistics for another sealed file (one they could
    make with a published-scope keyring): its SHA-256 is not the one the signed record
    names, so `audit verify` exits 3 and the verdict fails the file's row."""
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(released["run"], copy)
    target = copy / "stats" / "statistics.csv.sealed"
    shutil.copy(copy / "synthetic" / "synthetic.parquet.sealed", target)
    assert main(["audit", "verify", str(copy / "stats" / "audit.jsonl")]) == 3
    result = _verdict(copy, session_keyring)
    assert not result.releasable
    assert "file-statistics-statistics.csv.sealed" in {
        g.key for g in result.rows if g.passed is False
    }
