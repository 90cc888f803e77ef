"""Differentially private training (Opacus), the privacy budget ledger, model cards."""

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
    "TabularEncoder",
    "TrainResult",
    "TrainingStopped",
    "decode_weights",
    "default_ledger_path",
    "epsilon_from_card",
    "feature_columns",
    "load_published",
    "load_training_view",
    "membership_inference",
    "require_resume_scope",
    "train_model",
    "train_private",
]
