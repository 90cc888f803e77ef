from __future__ import annotations

from datetime import date

import polars as pl

from tests.transform._util import run


def test_integer_intervals_with_top_and_bottom_coding() -> None:
    frame = pl.DataFrame({"age": [17, 20, 29, 30, 79, 80, 95, None]})
    spec = {"type": "integer", "rule": "generalize", "width": 10, "bottom": 20, "top": 80}
    out, _ = run(frame, {"age": spec})
    assert out.get_column("age").to_list() == [
        "<20",
        "20-29",
        "20-29",
        "30-39",
        "70-79",
        ">=80",
        ">=80",
        None,
    ]


def test_float_intervals_are_half_open() -> None:
    frame = pl.DataFrame({"h": [0.5, 2.5, 2.49]})
    out, _ = run(frame, {"h": {"type": "float", "rule": "generalize", "width": 2.5}})
    assert out.get_column("h").to_list() == ["[0.0, 2.5)", "[2.5, 5.0)", "[0.0, 2.5)"]


def test_code_prefix() -> None:
    frame = pl.DataFrame({"zip": ["12345", "98", None]})
    out, _ = run(frame, {"zip": {"rule": "generalize", "keep_prefix": 3}})
    assert out.get_column("zip").to_list() == ["123**", "98", None]


def test_dates_to_month_and_year() -> None:
    frame = pl.DataFrame({"d": [date(2024, 5, 17)], "e": [date(1999, 12, 31)]})
    out, _ = run(
        frame,
        {
            "d": {"type": "date", "rule": "generalize", "date_unit": "month"},
            "e": {"type": "date", "rule": "generalize", "date_unit": "year"},
        },
    )
    assert out.row(0) == ("2024-05", "1999")
