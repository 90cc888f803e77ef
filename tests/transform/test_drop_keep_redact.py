from __future__ import annotations

import polars as pl

from tests.transform._util import run


def test_drop_removes_column_and_keep_passes_through() -> None:
    frame = pl.DataFrame({"a": ["x", "y"], "b": [1, 2]})
    out, result = run(frame, {"a": {"rule": "drop"}, "b": {"rule": "keep", "type": "integer"}})
    assert out.columns == ["b"]
    assert out.get_column("b").to_list() == [1, 2]
    assert result.dropped == ["a"] and result.rules == {"a": "drop", "b": "keep"}


def test_redact_replaces_values_and_keeps_nulls() -> None:
    frame = pl.DataFrame({"a": ["secret", None, "other"]})
    out, _ = run(frame, {"a": {"rule": "redact"}})
    assert out.get_column("a").to_list() == ["[REDACTED]", None, "[REDACTED]"]


def test_redact_to_null_and_to_custom_constant() -> None:
    frame = pl.DataFrame({"a": ["s", "t"], "b": ["u", "v"]})
    out, _ = run(
        frame,
        {"a": {"rule": "redact", "replacement": None}, "b": {"rule": "redact", "replacement": "X"}},
    )
    assert out.get_column("a").to_list() == [None, None]
    assert out.get_column("b").to_list() == ["X", "X"]
