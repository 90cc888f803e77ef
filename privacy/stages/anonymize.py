"""Anonymize: count the quasi-identifier combinations, search the generalization, rewrite."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import polars as pl

from privacy import kanon
from privacy.policy import Policy
from privacy.stages.record import StageRecord, Timer

__all__ = ["anonymize", "count", "plan_anonymization"]


def count(frame: pl.DataFrame, policy: Policy, *, row_offset: int = 0) -> pl.DataFrame | None:
    """Records per combination of quasi-identifier (and sensitive) values of a
    transformed frame or partition: all the anonymize stage needs from it (``None``
    where the policy names no quasi-identifier)."""
    qis = policy.columns_with_role("quasi_identifier")
    if not qis:
        return None
    sensitive = policy.columns_with_role("sensitive")
    return kanon.count_records(
        frame, qis, sensitive[0] if len(sensitive) == 1 else None, row_offset=row_offset
    )


def plan_anonymization(
    counts: Sequence[pl.DataFrame] | None,
    policy: Policy,
    progress: Callable[[int, int], None] | None = None,
    *,
    rows: int,
) -> tuple[kanon.Rewrite | None, StageRecord]:
    """The anonymize stage's decision, from the counts of every partition (merged):
    the generalization search, suppression, and the re-identification risk before and
    after. ``None`` (nothing to rewrite) where there are no quasi-identifiers or rows."""
    with Timer() as timer:
        qis = policy.columns_with_role("quasi_identifier")
        rewrite = None
        if not counts or not rows:
            records_out, summary = rows, {"quasi_identifiers": qis}
        else:
            merged = counts[0] if len(counts) == 1 else kanon.merge_counts(counts)
            merged = merged.with_columns(pl.col(pl.Categorical).cast(pl.String))
            rewrite, result = kanon.plan(merged, policy, progress=progress)
            records_out, summary = result.records_out, result.summary()
    privacy = policy.privacy
    return rewrite, StageRecord(
        "anonymize",
        rows_in=rows,
        rows_out=records_out,
        duration_s=timer.seconds,
        counts=summary,
        params={
            "k": privacy.k,
            "l_diversity": privacy.l_diversity.model_dump() if privacy.l_diversity else None,
            "t_closeness": privacy.t_closeness.model_dump() if privacy.t_closeness else None,
            "max_suppression": privacy.max_suppression,
            "suppressed_records": privacy.suppressed_records,
            "algorithm": privacy.algorithm,
            "metric": privacy.metric,
        },
    )


def anonymize(
    frame: pl.DataFrame,
    policy: Policy,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pl.DataFrame, StageRecord]:
    """Make the quasi-identifiers k-anonymous (and l-diverse, t-close where the policy
    asks): :func:`count`, :func:`plan_anonymization`, and the rewrite of ``frame``."""
    started = time.perf_counter()
    counts = count(frame, policy)
    rewrite, record = plan_anonymization(
        None if counts is None else [counts], policy, progress, rows=frame.height
    )
    out = frame if rewrite is None else kanon.apply(frame, rewrite)
    record.duration_s = round(time.perf_counter() - started, 4)
    return out, record
