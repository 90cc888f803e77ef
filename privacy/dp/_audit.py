"""Empirical privacy checks of a trained model, and the reviewer's check of its ε.

Beside the accountant's upper bound on ε: the loss-threshold membership-inference attack
(Yeom et al. 2018) and the one-run canary audit (Steinke, Nasr, Jagielski 2023), whose
correct guesses give an empirical lower bound.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["canary_bound", "epsilon_from_card", "membership_inference"]


def membership_inference(
    train_loss: npt.NDArray[np.float32], test_loss: npt.NDArray[np.float32], seed: int
) -> dict[str, Any]:
    """Yeom et al. (2018): guess "member" when the loss is low. Scored on equal numbers
    of training (members) and held-out rows; AUC 0.5 is a coin."""
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(seed)
    size = min(len(train_loss), len(test_loss))
    members = rng.choice(train_loss, size, replace=False)
    outsiders = rng.choice(test_loss, size, replace=False)
    truth = np.concatenate([np.ones(size), np.zeros(size)])
    score = -np.concatenate([members, outsiders])
    fpr, tpr, _ = roc_curve(truth, score)
    grid = np.linspace(0.0, 1.0, 51)
    return {
        "roc": {
            "fpr": [round(float(x), 4) for x in grid],
            "tpr": [round(float(x), 4) for x in np.interp(grid, fpr, tpr)],
        },
        "attack": "loss threshold (Yeom et al. 2018)",
        "auc": round(float(roc_auc_score(truth, score)), 6),
        "tpr_at_1pct_fpr": round(float(np.interp(0.01, fpr, tpr)), 6),
        "rows_each": int(size),
    }


def canary_bound(
    scores: npt.NDArray[np.float32], planted: npt.NDArray[np.bool_], beta: float = 0.05
) -> dict[str, Any]:
    """The one-run audit of Steinke, Nasr and Jagielski (2023): guess "planted" for the
    fifth of the canaries that score highest (lowest loss) and "not planted" for the
    fifth that score lowest; under ε-DP the correct guesses are at most Binomial(r,
    e^ε / (1 + e^ε)), so an ε under which the count observed has probability below
    ``beta`` is refuted. Returns the largest refuted ε: an empirical lower bound at
    confidence 1 - beta, to set beside the accountant's upper bound. (The bound is the
    paper's pure-ε one; δ adds at most about canaries x δ correct guesses, negligible at
    the δ used here.)"""
    from scipy.stats import binom

    k = len(scores) // 10
    order = np.argsort(scores, kind="stable")
    low, high = order[:k], order[len(order) - k :]
    correct = int(planted[high].sum() + (~planted[low]).sum())
    guesses = 2 * k

    def tail(epsilon: float) -> float:
        return float(binom.sf(correct - 1, guesses, 1.0 / (1.0 + math.exp(-epsilon))))

    bound = 0.0
    if guesses and tail(0.0) < beta:
        lo, hi = 0.0, 50.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if tail(mid) < beta else (lo, mid)
        bound = lo
    return {
        "method": "one-run canary audit (Steinke, Nasr, Jagielski 2023)",
        "canaries": len(scores),
        "guesses": guesses,
        "correct": correct,
        "confidence": 1 - beta,
        "epsilon_lower_bound": round(bound, 4),
    }


def epsilon_from_card(card: dict[str, Any]) -> float:
    """ε recomputed from a model card's noise multiplier, sample rate and steps with the
    card's accountant: a reviewer's check of the reported figure."""
    from opacus.accountants import create_accountant

    p = card["privacy"]
    accountant = create_accountant(p["accountant"])
    accountant.history = [(p["noise_multiplier"], p["sample_rate"], p["steps"])]
    return float(accountant.get_epsilon(delta=p["delta"]))
