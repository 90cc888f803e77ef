"""Detect: audit the declared policy against the data with Presidio."""

from __future__ import annotations

import polars as pl

from privacy.detect import TextScanner, classify_columns
from privacy.errors import PrivacyGuaranteeError
from privacy.policy import Policy
from privacy.stages.record import StageRecord, Timer

__all__ = ["MIN_PII_SHARE", "detect"]

MIN_PII_SHARE = 0.05  # of sampled cells: below this, a finding in a kept column is noise


def detect(frame: pl.DataFrame, policy: Policy, scanner: TextScanner) -> StageRecord:
    """Audit the declared policy against the data: a column the policy publishes as is
    (``keep``) in which Presidio finds personal data fails the run closed, unless the
    column's ``acknowledge_pii`` lists that entity. Judged on a sample of rows."""
    with Timer() as timer:
        kept = [n for n, spec in policy.columns.items() if spec.rule == "keep"]
        findings = classify_columns(
            frame.select(kept), scanner, sample=policy.detection.sample_rows
        )
        found = {f.column: f.entities for f in findings if f.entities}
        problems = [
            (f.column, entity, share)
            for f in findings
            for entity, share in f.entities.items()
            if share >= MIN_PII_SHARE and entity not in policy.columns[f.column].acknowledge_pii
        ]
        if problems:
            column, entity, share = problems[0]
            raise PrivacyGuaranteeError(
                f"detect: column {column!r} is declared keep but holds {entity} (in "
                f"{share:.0%} of sampled cells): transform it, or list {entity} under "
                f"columns.{column}.acknowledge_pii",
                guarantee="undeclared-pii",
                required=0,
                achieved=share,
            )
    return StageRecord(
        "detect",
        rows_in=frame.height,
        rows_out=frame.height,
        duration_s=timer.seconds,
        counts={"columns_audited": len(kept), "pii_found": found},
        params={
            "sample_rows": policy.detection.sample_rows,
            "score_threshold": policy.detection.score_threshold,
        },
    )
