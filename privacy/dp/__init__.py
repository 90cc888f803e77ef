"""Differentially private releases: models (Opacus), synthetic tables (MST / AIM on
Private-PGM) and statistics (OpenDP), one privacy budget ledger, cards."""

from privacy.dp._audit import epsilon_from_card, membership_inference
from privacy.dp._checkpoint import (
    CHECKPOINT_SCOPE,
    decode_weights,
    require_resume_scope,
)
from privacy.dp._encode import TabularEncoder, feature_columns
from privacy.dp._inputs import load_published, load_training_view
from privacy.dp._ledger import (
    BudgetLedger,
    DataIdentity,
    LedgerIntegrityError,
    default_ledger_path,
)
from privacy.dp._release_record import release_record
from privacy.dp._stats import StatisticsRelease, plan_statistics, release_statistics
from privacy.dp._synthetic_release import (
    SyntheticTable,
    make_synthetic_table,
    plan_synthetic,
)
from privacy.dp._train import (
    TrainingStopped,
    TrainResult,
    train_model,
    train_private,
)

__all__ = [
    "CHECKPOINT_SCOPE",
    "BudgetLedger",
    "DataIdentity",
    "LedgerIntegrityError",
    "StatisticsRelease",
    "SyntheticTable",
    "TabularEncoder",
    "TrainResult",
    "TrainingStopped",
    "decode_weights",
    "default_ledger_path",
    "epsilon_from_card",
    "feature_columns",
    "load_published",
    "load_training_view",
    "make_synthetic_table",
    "membership_inference",
    "plan_statistics",
    "plan_synthetic",
    "release_record",
    "release_statistics",
    "require_resume_scope",
    "train_model",
    "train_private",
]
