"""Apply every column rule of a policy to a frame, in one vectorized pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from privacy.crypto import KeyProvider
from privacy.detect import TextScanner
from privacy.errors import PrivpipeError
from privacy.policy import Policy
from privacy.transform._base import OPERATORS, ColumnOperator, TransformContext

__all__ = ["TransformResult", "apply_policy", "operators_for"]


@dataclass
class TransformResult:
    """What the transform stage did, safe to record: rules and counts, never values."""

    rows: int
    rules: dict[str, str]
    params: dict[str, dict[str, Any]]
    dropped: list[str]
    key_id: str | None
    stats: dict[str, dict[str, int]] = field(default_factory=dict)


def operators_for(policy: Policy) -> list[ColumnOperator]:
    return [OPERATORS[spec.rule](name, spec) for name, spec in policy.columns.items()]


def apply_policy(
    frame: pl.DataFrame,
    policy: Policy,
    keys: KeyProvider | None = None,
    scanner: TextScanner | None = None,
) -> tuple[pl.DataFrame, TransformResult]:
    """The frame with every rule applied (dropped columns removed), and what was done.

    ``scanner`` adds Presidio span detection to ``scrub``; without it, scrub replaces
    only each row's own identifier values."""
    ctx = TransformContext(
        columns=policy.columns, keys=keys, scanner=scanner, policy_name=policy.name
    )
    operators = operators_for(policy)
    exprs = []
    for op in operators:
        expr = op.expr(ctx)
        if expr is not None:
            exprs.append(expr.alias(op.column))
    try:
        out = frame.select(exprs) if exprs else pl.DataFrame()
    except PrivpipeError as exc:
        # polars appends the failing expression to an error raised inside an operator;
        # the user gets privpipe's one line (the operator's message names the column)
        exc.args = (str(exc).split("\n", 1)[0],)
        raise
    for op in operators:  # the share of cells each rule changed, for the reviewer
        if op.rule in ("keep", "drop") or op.column not in out.columns:
            continue
        before = frame.get_column(op.column).cast(pl.String)
        after = out.get_column(op.column).cast(pl.String)
        changed = int(before.ne_missing(after).sum())
        ctx.stats.setdefault(op.column, {})["cells_changed"] = changed
    key_id = (
        keys.pseudonym_key_id
        if keys is not None and any(op.uses_key() for op in operators)
        else None
    )
    return out, TransformResult(
        rows=out.height,
        rules={op.column: op.rule for op in operators},
        params={op.column: op.get_params() for op in operators},
        dropped=[op.column for op in operators if op.rule == "drop"],
        key_id=key_id,
        stats=ctx.stats,
    )
