"""``privpipe scan`` writes no value from the data: not in its JSON, not in its table,
not in the draft policy. Every row is sampled, planted PII included, and every value of
every text column is searched for (numbers are left out: a hierarchy's bounds and a
share are numbers too)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flows.cli import main
from tests._helpers.sentinels import SENTINELS, plant

ROWS = 120


@pytest.fixture(scope="module")
def scanned(
    people: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> tuple[pl.DataFrame, str, str]:
    folder = tmp_path_factory.mktemp("scan")
    source = folder / "planted.csv"
    plant(people.head(ROWS), [3, 60, 117]).write_csv(source)
    draft = folder / "draft.yaml"
    return pl.read_csv(source), str(source), str(draft)


def _text_values(frame: pl.DataFrame) -> list[tuple[str, str]]:
    return [
        (column, value)
        for column in frame.columns
        if frame.schema[column] == pl.String
        for value in frame.get_column(column).drop_nulls().unique().to_list()
    ]


def test_scan_prints_and_drafts_no_value_of_any_sampled_row(
    scanned: tuple[pl.DataFrame, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    frame, source, draft = scanned
    sample = ["--sample", str(ROWS)]  # every row, so every value was sampled
    assert main(["scan", source, *sample, "--json", "--suggest-policy", draft]) == 0
    assert main(["scan", source, *sample]) == 0
    captured = capsys.readouterr()
    written = captured.out + captured.err + Path(draft).read_text()
    assert f"{ROWS:,} sampled" in " ".join(written.split())  # the table was printed
    assert "rule: drop" in written  # and the draft written
    values = _text_values(frame)
    assert len(values) > 5 * ROWS  # names, e-mails, phones, notes, ...: every one
    assert {v for _, v in values} >= set(SENTINELS.values())
    found = [(column, value) for column, value in values if value in written]
    assert found == [], found
    assert "zyxsentinel" not in written.lower()  # nor a piece of the planted name
