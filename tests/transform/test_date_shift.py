from __future__ import annotations

from datetime import date

import polars as pl

from privacy.crypto import StaticKeyProvider
from tests.transform._util import run

COLUMNS = {
    "pid": {"rule": "pseudonymize"},
    "born": {"type": "date", "rule": "date_shift", "by": "pid", "max_days": 5},
    "seen": {"type": "date", "rule": "date_shift", "by": "pid", "max_days": 5},
}


def _frame(n: int = 400) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "pid": [f"P{i % 200}" for i in range(n)],
            "born": [date(1980, 1, 1)] * n,
            "seen": [date(2020, 6, 1)] * n,
        }
    )


def test_offset_is_per_person_nonzero_and_bounded(key) -> None:
    frame = _frame()
    out, _ = run(frame, COLUMNS, key)
    shift = (out.get_column("born") - frame.get_column("born")).dt.total_days()
    assert shift.abs().min() >= 1 and shift.abs().max() <= 5
    assert len(set(shift.to_list())) > 5  # offsets vary between people
    # every date of one person moves by the same offset: intervals survive
    assert (
        (out.get_column("seen") - out.get_column("born"))
        == (frame.get_column("seen") - frame.get_column("born"))
    ).all()
    per_person = pl.DataFrame({"pid": frame.get_column("pid"), "s": shift})
    assert per_person.group_by("pid").agg(pl.col("s").n_unique()).get_column("s").max() == 1


def test_offset_depends_on_key(key) -> None:
    frame = _frame(50)
    a = run(frame, COLUMNS, key)[0].get_column("born")
    b = run(frame, COLUMNS, StaticKeyProvider(b"\x02" * 32))[0].get_column("born")
    assert (a != b).any()


def test_null_dates_and_ids_stay_null(key) -> None:
    frame = pl.DataFrame(
        {"pid": ["a", None], "born": [None, date(2000, 1, 1)]},
        schema={"pid": pl.String, "born": pl.Date},
    )
    out, _ = run(frame, {k: COLUMNS[k] for k in ("pid", "born")}, key)
    assert out.get_column("born").to_list() == [None, None]
