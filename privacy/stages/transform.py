"""Transform: apply every column rule of the policy."""

from __future__ import annotations

import polars as pl

from privacy.crypto import KeyProvider
from privacy.detect import TextScanner
from privacy.policy import Policy
from privacy.stages.record import StageRecord, Timer
from privacy.transform import apply_policy

__all__ = ["transform"]


def transform(
    frame: pl.DataFrame,
    policy: Policy,
    keys: KeyProvider | None,
    scanner: TextScanner | None = None,
) -> tuple[pl.DataFrame, StageRecord]:
    """Apply every column rule (``scanner``: Presidio spans for ``scrub``)."""
    with Timer() as timer:
        out, result = apply_policy(frame, policy, keys, scanner)
    return out, StageRecord(
        "transform",
        rows_in=frame.height,
        rows_out=out.height,
        duration_s=timer.seconds,
        counts={"columns_out": out.width, "dropped": len(result.dropped), **result.stats},
        params={"rules": result.rules, "rule_params": result.params, "key_id": result.key_id},
    )
