from __future__ import annotations

import polars as pl

from tests.transform._util import run

COLUMNS = {
    "name": {"rule": "drop"},
    "email": {"rule": "pseudonymize", "prefix": "e_"},
    "city": {"rule": "keep"},
    "notes": {"rule": "scrub"},
}


def _frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "name": ["Ann Lee", "Bo Chen", None],
            "email": ["ann@x.org", "bo@y.org", "c@z.org"],
            "city": ["Springfield", "Shelbyville", "Ogdenville"],
            "notes": ["Ann Lee wrote from ann@x.org in Springfield.", "Ann Lee called", None],
        }
    )


def test_only_the_rows_own_identifier_spans_are_replaced(key) -> None:
    out, result = run(_frame(), COLUMNS, key)
    notes = out.get_column("notes").to_list()
    assert notes[0] == "<NAME> wrote from <EMAIL> in Springfield."  # kept column untouched
    assert notes[1] == "Ann Lee called"  # another row's name: for Presidio, not this pass
    assert notes[2] is None
    assert result.stats["notes"]["spans_replaced"] == 2
    # what the reviewer's report shows: spans per source and the share of cells changed
    assert result.stats["notes"]["own:name"] == 1 and result.stats["notes"]["own:email"] == 1
    assert result.stats["notes"]["cells_changed"] == 1  # row 1 unchanged, row 2 null
    assert result.stats["email"]["cells_changed"] == 3
    assert "city" not in result.stats  # kept: nothing changed by definition


def test_pseudonymize_operator_matches_the_column_tokens(key) -> None:
    columns = {**COLUMNS, "notes": {"rule": "scrub", "operator": "pseudonymize"}}
    out, _ = run(_frame(), columns, key)
    token = out.get_column("email")[0]
    assert token in out.get_column("notes")[0]


def test_redact_operator(key) -> None:
    columns = {**COLUMNS, "notes": {"rule": "scrub", "operator": "redact"}}
    out, _ = run(_frame(), columns, key)
    assert out.get_column("notes")[0] == "[REDACTED] wrote from [REDACTED] in Springfield."
