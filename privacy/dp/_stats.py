"""DP statistics: counts, sums and means by group, every declared key released.

Each query's groups are every combination of its ``by`` columns' declared values
(:mod:`privacy.dp._domain`; a key read from the data is refused, as its presence would
say someone has it), so an empty cell is released too, with its noise. polars counts
and sums the rows into the cells; OpenDP's measurements add the noise
(:class:`privacy.dp._noise.Accountant`):

* a count has sensitivity 1 (one record is in one cell): the discrete Laplace (pure
  DP) or the discrete Gaussian (zCDP);
* a sum clips each value to its declared ``[low, high]``: sensitivity ``max(|low|,
  |high|)``, the Laplace or the Gaussian;
* a mean is a noisy sum over a noisy count, half the query's share each.

The release's ε is split evenly over the queries (and, for the Gaussian, the ρ its
(ε, δ) converts to). Each value carries its noise scale, its standard deviation and a
95 % interval (Laplace: ± b·ln 20; Gaussian: ± 1.96 σ; a mean: the ratio of the sum's
and the count's interval ends, unbounded while the count's may reach zero).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from privacy.dp._domain import ColumnDomain, column_domain
from privacy.dp._ledger import BudgetLedger, DataIdentity
from privacy.dp._noise import Accountant, rho_for_epsilon
from privacy.errors import PolicyError
from privacy.policy import BinsDomain, Policy, StatisticsSpec, StatQuery

__all__ = [
    "QueryPlan",
    "StatisticsRelease",
    "measure_queries",
    "plan_statistics",
    "release_statistics",
]

_Z95 = 1.959963984540054


@dataclass(frozen=True)
class QueryPlan:
    """One query ready to measure: its groups' domains and the clipping bounds."""

    query: StatQuery
    groups: list[ColumnDomain]
    bounds: tuple[float, float] | None

    @property
    def cells(self) -> int:
        return math.prod(d.size for d in self.groups) if self.groups else 1

    @property
    def sensitivity(self) -> float:
        return max(abs(self.bounds[0]), abs(self.bounds[1])) if self.bounds else 1.0

    def keys(self) -> list[str]:
        """A label per cell, in cell order: ``sex=Male; race=White``."""
        if not self.groups:
            return ["(all)"]
        grids = np.meshgrid(*[np.arange(d.size) for d in self.groups], indexing="ij")
        labels = [d.labels() for d in self.groups]
        return [
            "; ".join(
                f"{d.name}={labels[j][int(g.ravel()[i])]}"
                for j, (d, g) in enumerate(zip(self.groups, grids, strict=True))
            )
            for i in range(self.cells)
        ]


@dataclass
class StatisticsRelease:
    table: pl.DataFrame
    card: dict[str, Any]


def _spec(policy: Policy) -> StatisticsSpec:
    if policy.statistics is None:
        raise PolicyError("statistics: the policy has no statistics section")
    return policy.statistics


def plan_statistics(policy: Policy) -> list[QueryPlan]:
    """Every query's groups and bounds, from the policy only; refused, naming the key,
    where a group column or a summed column has no declared domain or bounds."""
    plans = []
    for i, query in enumerate(_spec(policy).queries):
        key = f"statistics.queries.{i}"
        groups = [column_domain(policy, name, f"{key}.by") for name in query.by]
        bounds = None
        if query.column is not None:
            spec = policy.columns[query.column]
            if spec.type not in ("integer", "float"):
                raise PolicyError(f"{key}.column: {query.column!r} is not a number ({spec.type})")
            declared = spec.domain
            if query.bounds is not None:
                bounds = (float(query.bounds[0]), float(query.bounds[1]))
            elif isinstance(declared, BinsDomain):
                bounds = (float(declared.bounds[0]), float(declared.bounds[1]))
            else:
                raise PolicyError(
                    f"{key}.bounds: the {query.kind} of {query.column!r} needs declared bounds "
                    f"(bounds read from the data would publish its extremes): add {key}.bounds "
                    f"or columns.{query.column}.domain.bounds"
                )
        plans.append(QueryPlan(query, groups, bounds))
    return plans


def exact_cells(
    frame: pl.DataFrame, plan: QueryPlan
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The exact count and clipped sum of every cell of ``plan``, by polars."""
    if plan.groups:
        codes = [d.encode(frame.get_column(d.name)) for d in plan.groups]
        cell = np.ravel_multi_index(tuple(codes), [d.size for d in plan.groups])
    else:
        cell = np.zeros(frame.height, dtype=np.int64)
    work = pl.DataFrame({"cell": cell})
    if plan.bounds is not None and plan.query.column is not None:
        low, high = plan.bounds
        values = frame.get_column(plan.query.column).cast(pl.Float64).fill_null(0.0)
        work = work.with_columns(values.clip(low, high).alias("value"))
    else:
        work = work.with_columns(pl.lit(0.0).alias("value"))
    grouped = work.group_by("cell").agg(pl.len().alias("n"), pl.col("value").sum().alias("sum"))
    counts = np.zeros(plan.cells, dtype=np.int64)
    sums = np.zeros(plan.cells, dtype=np.float64)
    index = grouped.get_column("cell").to_numpy()
    counts[index] = grouped.get_column("n").to_numpy()
    sums[index] = grouped.get_column("sum").to_numpy()
    return counts, sums


def _half_width(mechanism: str, scale: float) -> float:
    return scale * math.log(20) if mechanism == "laplace" else _Z95 * scale


def _std(mechanism: str, scale: float) -> float:
    return scale * math.sqrt(2) if mechanism == "laplace" else scale


def measure_queries(
    exact: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]],
    plans: list[QueryPlan],
    spec: StatisticsSpec,
    accountant: Accountant,
) -> list[dict[str, Any]]:
    """The noisy value of every cell of every query, with its scale, standard deviation
    and 95 % interval: one dict per query (``values``, ``scale``, ...)."""
    share = accountant.allowance / len(plans)
    out = []
    for (counts, sums), plan in zip(exact, plans, strict=True):
        query = plan.query
        parts = 2 if query.kind == "mean" else 1
        loss = share / parts
        name = f"statistics {query.name}"
        if query.kind in ("count", "mean"):
            count_scale = accountant.noise_scale(loss, 1.0)
            noisy_counts = accountant.counts(counts, count_scale, name + " count").astype(
                np.float64
            )
        if query.kind in ("sum", "mean"):
            sum_scale = accountant.noise_scale(loss, plan.sensitivity, integer=False)
            noisy_sums = accountant.sums(sums, plan.sensitivity, sum_scale, name + " sum")
        if query.kind == "count":
            half = _half_width(spec.mechanism, count_scale)
            values, scale = noisy_counts, count_scale
            low, high = values - half, values + half
        elif query.kind == "sum":
            half = _half_width(spec.mechanism, sum_scale)
            values, scale = noisy_sums, sum_scale
            low, high = values - half, values + half
        else:
            count_half = _half_width(spec.mechanism, count_scale)
            sum_half = _half_width(spec.mechanism, sum_scale)
            safe = np.maximum(noisy_counts, 1.0)
            values = np.clip(noisy_sums / safe, *plan.bounds) if plan.bounds else noisy_sums / safe
            scale = sum_scale
            floor = noisy_counts - count_half
            ends = [
                (noisy_sums + a * sum_half) / (noisy_counts + b * count_half)
                for a in (-1, 1)
                for b in (-1, 1)
            ]
            with np.errstate(divide="ignore", invalid="ignore"):
                low = np.where(floor > 0, np.min(ends, axis=0), -np.inf)
                high = np.where(floor > 0, np.max(ends, axis=0), np.inf)
        out.append(
            {
                "plan": plan,
                "values": values,
                "scale": scale,
                "std": _std(spec.mechanism, scale),
                "low": low,
                "high": high,
                "count_scale": count_scale if query.kind != "sum" else None,
            }
        )
    return out


def release_statistics(
    frame: pl.DataFrame,
    policy: Policy,
    *,
    run_id: str,
    ledger: BudgetLedger,
    data: DataIdentity,
) -> StatisticsRelease:
    """The statistics release of ``frame`` (the training view) and its card: planned
    from the policy, charged (refused over budget before any noise), measured."""
    spec = _spec(policy)
    started = time.perf_counter()
    plans = plan_statistics(policy)
    missing = [
        c
        for p in plans
        for c in [*p.query.by, *([p.query.column] if p.query.column else [])]
        if c not in frame.columns
    ]
    if missing:
        raise PolicyError(f"statistics.queries: the training view has no column {missing[0]!r}")
    exact = [exact_cells(frame, plan) for plan in plans]
    zcdp = spec.mechanism == "gaussian"
    allowance = rho_for_epsilon(spec.epsilon, spec.delta) if zcdp else spec.epsilon
    identity = ledger.identify(data, frame, policy)
    method = {
        "mechanism": "Gaussian (OpenDP)" if zcdp else "Laplace (OpenDP)",
        "accountant": "zCDP (OpenDP measurements)" if zcdp else "pure DP (OpenDP measurements)",
        "composition": "ρ adds; ρ converted to (ε, δ) by OpenDP" if zcdp else "ε adds (basic)",
        **({"rho": allowance} if zcdp else {}),
    }
    delta = spec.delta if zcdp else 0.0
    entry = ledger.charge(
        identity,
        epsilon=spec.epsilon,
        delta=delta,
        budget=policy.budget,
        run_id=run_id,
        release="statistics",
        method=method,
    )
    accountant = Accountant("zcdp" if zcdp else "pure", allowance)
    measured = measure_queries(exact, plans, spec, accountant)
    table = statistics_table(measured, spec.mechanism)
    privacy = accountant.figures(spec.delta) | {
        "target_epsilon": spec.epsilon,
        "private": True,
        "mechanism": method["mechanism"],
    }
    card = {
        "kind": "statistics",
        "policy": policy.identity(),
        "mechanism": spec.mechanism,
        "queries": [
            {
                "name": m["plan"].query.name,
                "kind": m["plan"].query.kind,
                "column": m["plan"].query.column,
                "by": m["plan"].query.by,
                "cells": m["plan"].cells,
                "bounds": list(m["plan"].bounds) if m["plan"].bounds else None,
                "noise_scale": m["scale"],
                "std": m["std"],
                "count_noise_scale": m["count_scale"],
                "domains": {d.name: d.describe() for d in m["plan"].groups},
            }
            for m in measured
        ],
        "rows": int(table.height),
        "data": {"rows": frame.height},
        "privacy": privacy
        | {
            "method": method,
            "ledger": {
                "dataset": entry["dataset"],
                "label": entry["label"],
                "budget": entry["budget"],
                "charged": entry["charged"],
                "spent_after": entry["epsilon_spent"],
            },
        },
        "seconds": round(time.perf_counter() - started, 3),
    }
    return StatisticsRelease(table, card)


def statistics_table(measured: list[dict[str, Any]], mechanism: str) -> pl.DataFrame:
    """One row per released cell: the query, its group, the noisy value, the noise
    scale and standard deviation, and the 95 % interval."""
    frames = []
    for m in measured:
        plan = m["plan"]
        n = plan.cells
        frames.append(
            pl.DataFrame(
                {
                    "query": [plan.query.name] * n,
                    "kind": [plan.query.kind] * n,
                    "column": [plan.query.column] * n,
                    "group": plan.keys(),
                    "value": np.asarray(m["values"], dtype=np.float64),
                    "noise_scale": [float(m["scale"])] * n,
                    "noise_std": [float(m["std"])] * n,
                    "ci95_low": np.asarray(m["low"], dtype=np.float64),
                    "ci95_high": np.asarray(m["high"], dtype=np.float64),
                    "mechanism": [mechanism] * n,
                },
                schema_overrides={"column": pl.String},
            )
        )
    return pl.concat(frames)
