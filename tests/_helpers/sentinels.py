"""Planted PII: the values, where they are planted, and the searches for them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl

from tests.conftest import PASSPHRASE

SENTINELS = {
    "person_id": "PSENTINEL4242",
    "name": "Qwertina Zyxsentinel",
    "email": "qwertina.zyxsentinel@sentinel-pii.example",
    "phone": "(919) 555-0142x4242",
    "ssn": "219-42-4242",
    "address": "4242 Zyxsentinel Way, Nowhereville, ZZ 04242",
}
BAD_AGE = "Zyxsentinel-Age"


def plant(people: pl.DataFrame, rows: list[int]) -> pl.DataFrame:
    frame = people.with_columns(pl.col("age").cast(pl.String))
    note = f"Reached {SENTINELS['name']} at {SENTINELS['email']}, SSN {SENTINELS['ssn']}."
    for row in rows:
        for column, value in {**SENTINELS, "notes": note}.items():
            frame[row, column] = value
    return frame


def sentinels_in(root: Path, skip: set[Path] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Each planted value, and the session keyring's passphrase, in each file under root."""
    found = []
    needles = [v.encode() for v in (*SENTINELS.values(), BAD_AGE, PASSPHRASE)]
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p not in skip):
        data = path.read_bytes()
        found += [f"{path}: {n.decode()}" for n in needles if n in data]
    return found


def cell_hits(database: Path, needles: list[str]) -> tuple[list[str], list[str]]:
    """(hits, the text of every cell): each text or blob cell of each table."""
    hits, cells = [], []
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            columns = [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]
            for column in columns:
                query = (
                    f'SELECT "{column}" FROM "{table}" '
                    f"WHERE typeof(\"{column}\") IN ('text', 'blob')"
                )
                for (value,) in db.execute(query):
                    text = value.decode(errors="replace") if isinstance(value, bytes) else value
                    cells.append(text)
                    hits += [f"{table}.{column}: {n}" for n in needles if n.lower() in text.lower()]
    return hits, cells
