"""The sanitize stages: ingest, detect, transform, anonymize, gate, publish.

Each stage is a plain function over a polars frame and the policy that returns the new
frame (where it makes one) and a :class:`StageRecord`: counts, parameters and outcome,
never a value from the data. The Prefect flow strings them together; nothing here
knows about Prefect.

One module per stage (``ingest``, ``detect``, ``transform``, ``anonymize``, ``gate``,
``publish``); :mod:`privacy.stages.gate` is the one place that decides what may be
published. This package re-exports each stage's public names.
"""

from __future__ import annotations

from privacy.stages.anonymize import anonymize, count, plan_anonymization
from privacy.stages.detect import detect
from privacy.stages.gate import Gate, gate
from privacy.stages.ingest import (
    DEFAULT_PARTITION_ROWS,
    VAULT_DIR,
    ingest,
    ingest_database,
    input_digest,
    result_set_digest,
)
from privacy.stages.publish import (
    AUDIT_FILE,
    DATA_FILE,
    MANIFEST_FILE,
    SEALED_DATA_FILE,
    TRAINING_VIEW_FILE,
    Published,
    Release,
    object_store_prefix,
    publish,
    published_associated_data,
    release,
    training_view_associated_data,
    write_training_view,
)
from privacy.stages.record import StageRecord, merge_records
from privacy.stages.transform import transform

__all__ = [
    "Published",
    "DATA_FILE",
    "DEFAULT_PARTITION_ROWS",
    "SEALED_DATA_FILE",
    "TRAINING_VIEW_FILE",
    "VAULT_DIR",
    "AUDIT_FILE",
    "MANIFEST_FILE",
    "Gate",
    "StageRecord",
    "anonymize",
    "count",
    "detect",
    "gate",
    "ingest",
    "ingest_database",
    "input_digest",
    "result_set_digest",
    "merge_records",
    "plan_anonymization",
    "publish",
    "release",
    "Release",
    "object_store_prefix",
    "published_associated_data",
    "training_view_associated_data",
    "transform",
    "write_training_view",
]
