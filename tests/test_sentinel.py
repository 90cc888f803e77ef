"""Planted PII must not reach anything a run leaves behind except the sanitized data,
and must not survive in that either.

A good run goes through the Prefect flow, with the run's workspace searched after every
stage (intermediates must be sealed while they exist); a failing run goes through the
CLI. Then every byte under Prefect's home (its SQLite database and write-ahead log
included), the output folders and the temporary folder is searched for each planted
value and for the keyring's passphrase. ``test_sentinel_wide.py`` searches wider, in
a process of its own: Prefect's database cell by cell once its server stopped, the
keyring's trail and witness, the train artifacts, a Dask run and the servers' environment.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import polars as pl
import pytest

from flows.cli import main
from tests._helpers.sentinels import BAD_AGE, SENTINELS, plant, sentinels_in
from tests.conftest import PREFECT_HOME, WORK_TMP

pytestmark = pytest.mark.prefect


def test_planted_pii_reaches_no_file_prefect_or_error_message(
    tmp_path: Path,
    people: pl.DataFrame,
    demo_policy_path: Path,
    session_keyring,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = tmp_path / "in" / "good.csv"
    bad = tmp_path / "in" / "bad.csv"
    good.parent.mkdir()
    planted = plant(people, [3, 250])
    planted.write_csv(good)
    planted.with_columns(
        pl.when(pl.int_range(pl.len()) == 77)
        .then(pl.lit(BAD_AGE))
        .otherwise(pl.col("age"))
        .alias("age")
    ).write_csv(bad)
    out_good, out_bad = tmp_path / "out-good", tmp_path / "out-bad"

    from flows import sanitize

    seen_mid_run: list[str] = []

    def scan_workspace(record: dict[str, object]) -> None:  # after each stage, mid-run
        workspaces = list(WORK_TMP.glob("privpipe-work-*"))
        assert workspaces, "the run's workspace should exist while it runs"
        seen_mid_run.extend(str(p) for w in workspaces for p in w.iterdir())
        seen_mid_run.extend(hit for w in workspaces for hit in sentinels_in(w))

    sanitize.set_progress(scan_workspace)
    try:
        summary = sanitize.sanitize_flow(
            str(good), str(demo_policy_path), str(out_good), os.environ["PRIVPIPE_KEYRING"]
        )
    finally:
        sanitize.set_progress(None)
    assert summary["status"] == "ok"
    # partitions, counts, the anonymization's plan: every intermediate is sealed
    assert seen_mid_run and all(p.endswith(".sealed") for p in seen_mid_run), seen_mid_run
    assert any(p.endswith("rewrite.json.sealed") for p in seen_mid_run)
    assert (
        main(["sanitize", str(bad), "--policy", str(demo_policy_path), "--out", str(out_bad)]) == 2
    )
    captured = capsys.readouterr()
    assert "row 78, column 'age': value is not a valid integer" in captured.err
    assert BAD_AGE not in captured.err + captured.out
    assert not any(v in captured.err + captured.out for v in SENTINELS.values())

    # the sanitized data itself holds none of the planted values, in any column
    from privacy.crypto import unseal_bytes

    data = pl.read_parquet(
        io.BytesIO(unseal_bytes(out_good / "data.parquet.sealed", session_keyring))
    )
    for column in data.columns:
        text = data.get_column(column).cast(pl.String).drop_nulls()
        for value in SENTINELS.values():
            assert not text.str.contains(value, literal=True).any(), (column, value)

    assert PREFECT_HOME.is_dir() and any(PREFECT_HOME.rglob("prefect.db*"))
    assert sentinels_in(PREFECT_HOME) == []
    assert (out_good / "audit.jsonl").stat().st_size and (out_bad / "audit.jsonl").stat().st_size
    assert sentinels_in(out_good) == []  # data, vault, manifest and audit trail
    assert sentinels_in(out_bad) == []
    assert not any(WORK_TMP.glob("privpipe-work-*")), "a run left its workspace behind"
    # the temporary folder, but for pytest's own folders (this test's inputs are there)
    left = {
        p for p in WORK_TMP.rglob("*") if any(q.name.startswith("pytest-of-") for q in p.parents)
    }
    assert sentinels_in(WORK_TMP, skip=left) == []
