"""A DP synthetic table from a sanitize run's training view, in named steps.

``make_synthetic_table`` plans (the columns, their declared domains, text refused or
dropped: all before anything is read or charged), encodes the rows (a category the
policy does not declare is refused, still before the charge), splits off the holdout,
charges the ledger (over budget: refused, nothing measured), synthesizes, measures the
table (utility and the privacy check against the holdout), and gates it: a table that
breaks a declared count or a threshold raises :class:`PrivacyGuaranteeError`, and the
caller publishes nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from privacy.dp._domain import ColumnDomain, release_domain
from privacy.dp._ledger import BudgetLedger, DataIdentity
from privacy.dp._noise import rho_for_epsilon
from privacy.dp._synthetic import Synthesis, synthesize_codes
from privacy.dp._table_check import marginal_distances, privacy_check, tstr
from privacy.errors import PolicyError, PrivacyGuaranteeError
from privacy.policy import Policy, SyntheticSpec

__all__ = ["SyntheticTable", "make_synthetic_table", "plan_synthetic"]

_PROTECTING = ("drop", "redact", "mask", "pseudonymize", "date_shift", "generalize")


@dataclass
class SyntheticTable:
    frame: pl.DataFrame
    card: dict[str, Any]


@dataclass(frozen=True)
class SyntheticPlan:
    columns: list[str]
    domains: list[ColumnDomain]
    dropped_text: list[str]


def _spec(policy: Policy) -> SyntheticSpec:
    if policy.synthetic is None:
        raise PolicyError("synthetic: the policy has no synthetic section")
    return policy.synthetic


def plan_synthetic(policy: Policy) -> SyntheticPlan:
    """The columns synthesized and their domains; refused, naming the key, when a
    column is one the policy drops or protects, is free text (``synthetic.text:
    refuse``), or has no declared domain."""
    spec = _spec(policy)
    columns, dropped = [], []
    for i, name in enumerate(spec.columns):
        column = policy.columns[name]
        if column.rule == "scrub":
            if spec.text == "drop":
                dropped.append(name)
                continue
            raise PolicyError(
                f"synthetic.columns.{i}: {name!r} is free text (rule scrub), which is not "
                "synthesized: remove it, or set synthetic.text: drop"
            )
        if column.rule in _PROTECTING or column.role == "identifier":
            raise PolicyError(
                f"synthetic.columns.{i}: {name!r} is a column the policy "
                f"{'drops' if column.rule == 'drop' else 'protects'} (rule {column.rule}, "
                f"role {column.role}): a synthetic table never carries it"
            )
        columns.append(name)
    if len(columns) < 2:
        raise PolicyError("synthetic.columns: at least two columns to synthesize")
    return SyntheticPlan(columns, release_domain(policy, columns, "synthetic"), dropped)


def make_synthetic_table(
    frame: pl.DataFrame,
    policy: Policy,
    *,
    run_id: str,
    ledger: BudgetLedger,
    data: DataIdentity,
    progress: Callable[[str], None] | None = None,
) -> SyntheticTable:
    """The gated synthetic table of ``frame`` (the training view) and its card."""
    spec = _spec(policy)
    started = time.perf_counter()
    plan = plan_synthetic(policy)
    missing = [c for c in plan.columns if c not in frame.columns]
    if missing:
        raise PolicyError(f"synthetic.columns: the training view has no column {missing[0]!r}")
    codes = np.column_stack([d.encode(frame.get_column(d.name)) for d in plan.domains]).astype(
        np.int64
    )
    draw = np.random.default_rng(spec.seed)
    order = draw.permutation(len(codes))
    cut = round(len(codes) * spec.holdout)
    holdout, train = codes[np.sort(order[:cut])], codes[np.sort(order[cut:])]
    identity = ledger.identify(data, frame, policy)
    entry = ledger.charge(  # before any measurement: over budget, nothing is drawn
        identity,
        epsilon=spec.epsilon,
        delta=spec.delta,
        budget=policy.budget,
        run_id=run_id,
        release="synthetic",
        method={
            "mechanism": spec.mechanism.upper(),
            "accountant": "zCDP (OpenDP measurements)",
            "composition": "ρ adds (adaptive zCDP); ρ converted to (ε, δ) by OpenDP",
            "rho": rho_for_epsilon(spec.epsilon, spec.delta),
        },
    )
    synthesis = synthesize_codes(
        {d.name: train[:, i] for i, d in enumerate(plan.domains)},
        plan.domains,
        mechanism=spec.mechanism,
        epsilon=spec.epsilon,
        delta=spec.delta,
        rows=spec.rows,
        iterations=spec.iterations,
        seed=spec.seed,
        max_rounds=spec.max_rounds,
        progress=progress,
    )
    synthetic = np.column_stack([synthesis.codes[d.name] for d in plan.domains])
    out = pl.DataFrame([d.decode(synthetic[:, i], draw) for i, d in enumerate(plan.domains)])
    utility = marginal_distances(train, synthetic, plan.domains)
    label = policy.training.label
    fit = (
        tstr(
            train,
            synthetic,
            holdout,
            plan.domains,
            label,
            policy.training.positive_class,
            spec.seed,
        )
        if label in plan.columns and len(holdout)
        else None
    )
    check = privacy_check(train, holdout, synthetic, spec.seed)
    check["exact_match_limit"] = exact_match_limit(spec, check)  # what the gate holds it to
    card = _card(
        policy, spec, plan, synthesis, entry, utility, fit, check, len(train), len(holdout)
    )
    card["seconds"] = round(time.perf_counter() - started, 3)
    gate_synthetic(out, policy, card)
    return SyntheticTable(out, card)


def _card(
    policy: Policy,
    spec: SyntheticSpec,
    plan: SyntheticPlan,
    synthesis: Synthesis,
    entry: dict[str, Any],
    utility: dict[str, Any],
    fit: dict[str, Any] | None,
    check: dict[str, Any],
    rows_train: int,
    rows_holdout: int,
) -> dict[str, Any]:
    import mbi
    import opendp

    return {
        "kind": "synthetic",
        "policy": policy.identity(),
        "columns": plan.columns,
        "dropped_text": plan.dropped_text,
        "domain": {d.name: d.describe() for d in plan.domains},
        "rows": spec.rows,
        "data": {"rows_train": rows_train, "rows_holdout": rows_holdout},
        "privacy": synthesis.privacy
        | {
            "private": True,
            "measured": synthesis.measured,
            "rounds": synthesis.rounds,
            "ledger": {
                "dataset": entry["dataset"],
                "label": entry["label"],
                "budget": entry["budget"],
                "charged": entry["charged"],
                "spent_after": entry["epsilon_spent"],
            },
        },
        "utility": {"marginals": utility, "tstr": fit},
        "privacy_check": check,
        "thresholds": {
            "max_exact_match_share": spec.max_exact_match_share,
            "max_membership_auc": spec.max_membership_auc,
        },
        "software": {
            "mbi": getattr(mbi, "__version__", "2"),
            "opendp": getattr(opendp, "__version__", ""),
        },
        "synthesis_seconds": round(synthesis.seconds, 3),
    }


def gate_synthetic(table: pl.DataFrame, policy: Policy, card: dict[str, Any]) -> None:
    """Fail closed before anything is published: the declared columns and rows only
    (no column the policy drops or protects, no free text), then the privacy check's
    thresholds. Each failure names its guarantee and figures for the signed record."""
    spec = _spec(policy)
    plan_columns = card["columns"]
    for name in table.columns:
        column = policy.columns.get(name)
        if column is None or name not in plan_columns:
            raise PrivacyGuaranteeError(
                f"synthetic gate: column {name!r} was not declared in synthetic.columns",
                guarantee="synthetic-columns",
            )
        if column.rule in (*_PROTECTING, "scrub") or column.role == "identifier":
            raise PrivacyGuaranteeError(
                f"synthetic gate: column {name!r} is one the policy drops or protects",
                guarantee="synthetic-columns",
            )
    if table.columns != plan_columns:
        raise PrivacyGuaranteeError(
            f"synthetic gate: {table.width} columns, declared {len(plan_columns)}",
            guarantee="synthetic-columns",
            required=len(plan_columns),
            achieved=table.width,
        )
    if table.height != spec.rows:
        raise PrivacyGuaranteeError(
            f"synthetic gate: {table.height} rows, synthetic.rows declares {spec.rows}",
            guarantee="synthetic-rows",
            required=spec.rows,
            achieved=table.height,
        )
    check = card["privacy_check"]
    limit = exact_match_limit(spec, check)
    if check["exact_match_share"] > limit + 1e-12:
        raise PrivacyGuaranteeError(
            f"synthetic gate: {check['exact_match_share']:.4f} of the synthetic rows equal a "
            f"training row, above {limit:.4f} (the holdout shows "
            f"{check['holdout_exact_match_share']:.4f}): the table copies real rows",
            guarantee="synthetic-exact-match",
            required=limit,
            achieved=check["exact_match_share"],
        )
    if check["membership_auc"] > spec.max_membership_auc + 1e-12:
        raise PrivacyGuaranteeError(
            f"synthetic gate: the membership attack's AUC {check['membership_auc']:.3f} is "
            f"above synthetic.max_membership_auc {spec.max_membership_auc}",
            guarantee="synthetic-membership",
            required=spec.max_membership_auc,
            achieved=check["membership_auc"],
        )


def exact_match_limit(spec: SyntheticSpec, check: dict[str, Any]) -> float:
    """``synthetic.max_exact_match_share``, else the holdout's own share plus three
    standard errors of the difference of two shares (the synthetic rows' and the
    holdout's): a table that copies rows shows far more; one that learned none of them
    passes but for a 1-in-700 draw."""
    if spec.max_exact_match_share is not None:
        return float(spec.max_exact_match_share)
    share = float(check["holdout_exact_match_share"])
    rows = max(1, int(check.get("synthetic_rows", 0)))
    holdout = max(1, int(check.get("holdout_rows", 0)))
    variance = max(share * (1 - share), 1 / holdout) * (1 / rows + 1 / holdout)
    return share + 3 * math.sqrt(variance)
