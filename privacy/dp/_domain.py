"""The domain of a DP release, from the policy and never from the data.

A synthetic table's model and a statistics release's group keys range over every value
a column may take. Read from the data (the categories seen, the min and the max), that
list would itself leak: a rare category, or the oldest person's age, is published by
being in it. So each column's domain is declared: ``columns.NAME.domain`` (a list of
categories, or bounds with a bin width), else the leaves of its file hierarchy, else an
interval hierarchy's bottom, top and first width. A column with none is refused with
the key to add. A number outside its bounds is clipped to them; a category outside its
list is refused (the policy is then wrong about the data, which the custodian fixes).
A nullable column has one more value, null.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from privacy.errors import InputError, PolicyError
from privacy.kanon import read_arx_hierarchy
from privacy.policy import (
    BinsDomain,
    CategoriesDomain,
    FileHierarchy,
    IntervalHierarchy,
    Policy,
)

__all__ = ["ColumnDomain", "release_domain"]

NULL_LABEL = "∅"


@dataclass(frozen=True)
class ColumnDomain:
    """One column's declared values, as codes ``0 .. size - 1``: categories, or the bins
    ``[low + i·width, low + (i+1)·width)`` of ``[low, high]`` (the last one closed)."""

    name: str
    kind: Literal["categories", "bins"]
    type: str  # the policy's column type, for decoding
    categories: tuple[str, ...] = ()
    low: float = 0.0
    high: float = 0.0
    width: float = 1.0
    null: bool = False  # one more code, the last: null
    source: str = ""  # the policy key it came from

    @property
    def end(self) -> float:
        """Where the bins end: ``high`` itself is in the last bin (an integer column's
        bins hold the integers ``low .. high``)."""
        return self.high + 1 if self.type == "integer" else self.high

    @property
    def bins(self) -> int:
        return max(1, math.ceil((self.end - self.low) / self.width - 1e-9))

    @property
    def size(self) -> int:
        values = len(self.categories) if self.kind == "categories" else self.bins
        return values + (1 if self.null else 0)

    def labels(self) -> list[str]:
        """A label per code: the category, or the bin (``17``, ``17-21``, ``[0.5, 1)``)."""
        if self.kind == "categories":
            out = list(self.categories)
        else:
            out = []
            for i in range(self.bins):
                low = self.low + i * self.width
                high = min(self.end, low + self.width)
                if self.type == "integer":
                    first, last = math.ceil(low), math.ceil(high) - 1
                    out.append(str(first) if first == last else f"{first}-{last}")
                else:
                    closing = "]" if i == self.bins - 1 else ")"
                    out.append(f"[{_num(low)}, {_num(high)}{closing}")
        return [*out, NULL_LABEL] if self.null else out

    def encode(self, series: pl.Series) -> npt.NDArray[np.int32]:
        """The code of every value; a category not declared, or a null where the column
        is not nullable, is refused (with counts, never the value)."""
        nulls = series.is_null().to_numpy()
        if nulls.any() and not self.null:
            raise InputError(
                f"column {self.name!r}: {int(nulls.sum())} empty cells, but the column is "
                f"declared nullable: false ({self.source})"
            )
        if self.kind == "categories":
            index = {value: i for i, value in enumerate(self.categories)}
            text = series.cast(pl.String)
            codes = text.replace_strict(index, default=-1, return_dtype=pl.Int32).to_numpy()
            unknown = (codes < 0) & ~nulls
            if unknown.any():
                raise InputError(
                    f"column {self.name!r}: {int(unknown.sum())} values are not among the "
                    f"{len(self.categories)} declared categories ({self.source}): declare "
                    "every value the column may take"
                )
        else:
            values = series.cast(pl.Float64).to_numpy()
            clipped = np.clip(np.nan_to_num(values, nan=self.low), self.low, self.high)
            codes = np.minimum(((clipped - self.low) / self.width).astype(np.int64), self.bins - 1)
        codes = np.array(codes, dtype=np.int32)
        if self.null:
            codes[nulls] = self.size - 1
        return codes

    def decode(self, codes: npt.NDArray[Any], rng: np.random.Generator) -> pl.Series:
        """Values for codes: the category (cast to the column's type), or a number drawn
        uniformly within its bin (an integer column's integers in it)."""
        codes = np.asarray(codes, dtype=np.int64)
        nulls = codes == self.size - 1 if self.null else np.zeros(len(codes), dtype=bool)
        if self.kind == "categories":
            table = np.array([*self.categories, None], dtype=object)
            values = table[np.where(nulls, len(self.categories), codes)]
            series = pl.Series(self.name, values, dtype=pl.String)
            return series.cast(_polars_type(self.type), strict=False)
        low = self.low + np.minimum(codes, self.bins - 1) * self.width
        high = np.minimum(low + self.width, self.end)
        if self.type == "integer":
            first = np.ceil(low).astype(np.int64)
            drawn = rng.integers(first, np.maximum(np.ceil(high).astype(np.int64), first + 1))
            out = pl.Series(self.name, drawn, dtype=pl.Int64)
        else:
            out = pl.Series(self.name, rng.uniform(low, high), dtype=pl.Float64)
        return out.scatter(np.flatnonzero(nulls), None) if nulls.any() else out

    def describe(self) -> dict[str, Any]:
        """What the card records of the domain: its kind, size and source."""
        out: dict[str, Any] = {"kind": self.kind, "values": self.size, "source": self.source}
        if self.kind == "bins":
            out |= {"bounds": [self.low, self.high], "width": self.width}
        return out


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _polars_type(kind: str) -> Any:
    return {
        "integer": pl.Int64,
        "float": pl.Float64,
        "boolean": pl.Boolean,
        "date": pl.Date,
        "datetime": pl.Datetime,
    }.get(kind, pl.String)


def release_domain(policy: Policy, columns: list[str], key: str) -> list[ColumnDomain]:
    """The declared domain of each of ``columns`` for the release at policy key ``key``
    (``synthetic``, ``statistics``); a column without one is refused, naming the key to
    add."""
    return [column_domain(policy, name, key) for name in columns]


def column_domain(policy: Policy, name: str, key: str) -> ColumnDomain:
    spec = policy.columns[name]
    declared = spec.domain
    null = bool(spec.nullable)
    if isinstance(declared, CategoriesDomain):
        return ColumnDomain(
            name,
            "categories",
            spec.type,
            tuple(declared.categories),
            null=null,
            source=f"columns.{name}.domain",
        )
    if isinstance(declared, BinsDomain):
        if spec.type not in ("integer", "float"):
            raise PolicyError(
                f"columns.{name}.domain: bounds and width need type integer or float "
                f"(the column is {spec.type}); declare categories instead"
            )
        low, high = declared.bounds
        return ColumnDomain(
            name,
            "bins",
            spec.type,
            low=low,
            high=high,
            width=declared.width,
            null=null,
            source=f"columns.{name}.domain",
        )
    hierarchy = spec.hierarchy
    if isinstance(hierarchy, FileHierarchy):
        path = policy.resolve_path(hierarchy.path)
        leaves = read_arx_hierarchy(path, name, hierarchy.separator).domain
        return ColumnDomain(
            name,
            "categories",
            spec.type,
            tuple(leaves),
            null=null,
            source=f"columns.{name}.hierarchy ({path.name})",
        )
    if (
        isinstance(hierarchy, IntervalHierarchy)
        and hierarchy.bottom is not None
        and hierarchy.top is not None
    ):
        return ColumnDomain(
            name,
            "bins",
            spec.type,
            low=hierarchy.bottom,
            high=hierarchy.top,
            width=hierarchy.widths[0],
            null=null,
            source=f"columns.{name}.hierarchy (intervals)",
        )
    raise PolicyError(
        f"{key}: column {name!r} has no declared domain (a domain read from the data "
        f"would publish its rare values and its extremes): add columns.{name}.domain, "
        "{categories: [...]} or {bounds: [low, high], width: w}"
    )
