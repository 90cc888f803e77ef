"""Differentially private training (Opacus), the privacy budget ledger, model cards."""

from privacy.dp._audit import canary_bound, epsilon_from_card, membership_inference
from privacy.dp._encode import TabularEncoder, feature_columns
from privacy.dp._ledger import BudgetLedger, default_ledger_path
from privacy.dp._train import (
    TrainingStopped,
    TrainResult,
    train_model,
)

__all__ = [
    "BudgetLedger",
    "TabularEncoder",
    "TrainResult",
    "TrainingStopped",
    "canary_bound",
    "default_ledger_path",
    "epsilon_from_card",
    "feature_columns",
    "membership_inference",
    "train_model",
]
