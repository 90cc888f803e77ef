"""What a stage did: the record every stage returns and the flow hands to the audit trail."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["StageRecord", "Timer", "merge_records"]


@dataclass
class StageRecord:
    """What one stage did. Safe to log, persist and audit: no value from the data."""

    stage: str
    rows_in: int
    rows_out: int
    duration_s: float = 0.0
    status: str = "ok"
    counts: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Timer:
    """Times a stage: ``seconds`` once the block ends."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = round(time.perf_counter() - self.start, 4)


def merge_records(stage: str, records: Sequence[Mapping[str, Any]]) -> StageRecord:
    """One record for a stage that ran per partition: rows summed, the transform's
    per-column counts summed, the shares of PII detection weighted by the rows each
    partition sampled; the slowest partition's time (the flow records the wall time)."""
    first = records[0]
    merged = StageRecord(
        stage,
        rows_in=sum(r["rows_in"] for r in records),
        rows_out=sum(r["rows_out"] for r in records),
        duration_s=max(r["duration_s"] for r in records),
        status=first["status"],
        counts=dict(first["counts"]),
        params=dict(first["params"]),
    )
    if stage == "detect":
        sample = first["params"]["sample_rows"]
        weights = [min(sample, r["rows_in"]) for r in records]
        found: dict[str, dict[str, float]] = {}
        for record, weight in zip(records, weights, strict=True):
            for column, entities in record["counts"]["pii_found"].items():
                for entity, share in entities.items():
                    cell = found.setdefault(column, {})
                    cell[entity] = cell.get(entity, 0.0) + share * weight
        total = sum(weights) or 1
        merged.counts["pii_found"] = {
            c: {e: round(v / total, 4) for e, v in entities.items()}
            for c, entities in found.items()
        }
    elif stage == "transform":
        stats: dict[str, dict[str, int]] = {}
        for record in records:
            for column, figures in record["counts"].items():
                if isinstance(figures, dict):
                    sums = stats.setdefault(column, {})
                    for name, value in figures.items():
                        sums[name] = sums.get(name, 0) + value
        merged.counts.update(stats)
    merged.counts["partitions"] = len(records)
    return merged
