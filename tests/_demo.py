"""Test data built from the demo's: a copy of its policy with sections replaced, and its
people with one identifier leaked into a kept column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import yaml

__all__ = ["demo_policy_copy", "leaky_people"]


def demo_policy_copy(path: Path, demo_policy_path: Path, **sections: Any) -> Path:
    """Write to ``path`` the demo policy with ``sections`` replaced (``training``
    disabled unless given), its hierarchy files still found beside the demo policy."""
    data = yaml.safe_load(demo_policy_path.read_text())
    data["training"] = {"enabled": False}
    data.update(sections)
    for column in data["columns"].values():
        hierarchy = column.get("hierarchy") or {}
        if hierarchy.get("kind") == "file":
            hierarchy["path"] = str(demo_policy_path.parent / hierarchy["path"])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def leaky_people(people: pl.DataFrame) -> pl.DataFrame:
    """One row's email copied into a kept column: below detect's noise floor (one cell
    in 500), so only the gate's verbatim check stops it."""
    row = pl.int_range(pl.len()) == 7
    return people.with_columns(
        pl.when(row).then(pl.col("email")).otherwise(pl.col("workclass")).alias("workclass")
    )
