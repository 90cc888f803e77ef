"""Planted PII must not reach anything a run leaves behind except the sanitized data,
and must not survive in that either.

The run goes through the CLI and Prefect like a user's; then every byte under Prefect's
home (its SQLite database and write-ahead log included), the output folder and the
temporary folder is searched for each planted value.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flows.cli import main
from tests.conftest import PREFECT_HOME, WORK_TMP

pytestmark = pytest.mark.prefect

SENTINELS = {
    "person_id": "PSENTINEL4242",
    "name": "Qwertina Zyxsentinel",
    "email": "qwertina.zyxsentinel@sentinel-pii.example",
    "phone": "(919) 555-0142x4242",
    "ssn": "219-42-4242",
    "address": "4242 Zyxsentinel Way, Nowhereville, ZZ 04242",
}
BAD_AGE = "Zyxsentinel-Age"


def _plant(people: pl.DataFrame, rows: list[int]) -> pl.DataFrame:
    frame = people.with_columns(pl.col("age").cast(pl.String))
    note = f"Reached {SENTINELS['name']} at {SENTINELS['email']}, SSN {SENTINELS['ssn']}."
    for row in rows:
        for column, value in {**SENTINELS, "notes": note}.items():
            frame[row, column] = value
    return frame


def _hits(root: Path, skip: set[Path] = frozenset()) -> list[str]:  # type: ignore[assignment]
    found = []
    needles = [v.encode() for v in (*SENTINELS.values(), BAD_AGE)]
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p not in skip):
        data = path.read_bytes()
        found += [f"{path}: {n.decode()}" for n in needles if n in data]
    return found


def test_planted_pii_reaches_no_file_prefect_or_error_message(
    tmp_path: Path,
    people: pl.DataFrame,
    demo_policy_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = tmp_path / "in" / "good.csv"
    bad = tmp_path / "in" / "bad.csv"
    good.parent.mkdir()
    planted = _plant(people, [3, 250])
    planted.write_csv(good)
    planted.with_columns(
        pl.when(pl.int_range(pl.len()) == 77)
        .then(pl.lit(BAD_AGE))
        .otherwise(pl.col("age"))
        .alias("age")
    ).write_csv(bad)
    out_good, out_bad = tmp_path / "out-good", tmp_path / "out-bad"

    assert (
        main(["sanitize", str(good), "--policy", str(demo_policy_path), "--out", str(out_good)])
        == 0
    )
    assert (
        main(["sanitize", str(bad), "--policy", str(demo_policy_path), "--out", str(out_bad)]) == 2
    )
    captured = capsys.readouterr()
    assert "row 78, column 'age': value is not a valid integer" in captured.err
    assert BAD_AGE not in captured.err + captured.out
    assert not any(v in captured.err + captured.out for v in SENTINELS.values())

    # the sanitized data itself holds none of the planted values, in any column
    data = pl.read_parquet(out_good / "data.parquet")
    for column in data.columns:
        text = data.get_column(column).cast(pl.String).drop_nulls()
        for value in SENTINELS.values():
            assert not text.str.contains(value, literal=True).any(), (column, value)

    assert PREFECT_HOME.is_dir() and any(PREFECT_HOME.rglob("prefect.db*"))
    assert _hits(PREFECT_HOME) == []
    assert _hits(out_good, skip={out_good / "data.parquet"}) == []
    assert _hits(out_bad) == []
    assert not any(WORK_TMP.glob("privpipe-work-*")), "a run left its workspace behind"
