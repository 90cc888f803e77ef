"""How close a synthetic table is to its data, and how far from any one record.

Utility: the total variation distance of every 1-way and 2-way marginal between the
synthetic rows and the training rows (over the declared domain's codes), and TSTR:
the same classifier (scikit-learn's histogram gradient boosting, on the codes) trained
on the synthetic table and on the real training rows, each tested on the real holdout.

Privacy, each against a holdout of real rows the synthesizer never saw (what a table
that learned nothing about any one record would show):

* the exact-match share: synthetic rows equal to a training row, beside holdout rows
  equal to a training row (common rows recur in any sample of the population: a table
  that learned no one's record shows about the holdout's share, within sampling error);
* the distance to the closest record (Hamming distance over the codes) of synthetic
  rows and of holdout rows to the training rows, as quantiles;
* a membership-inference attack: training rows and holdout rows ranked by their
  distance to the closest synthetic row (nearer: "member"), reported as ROC AUC
  (0.5: the table tells members from non-members no better than chance).

These figures are measured on the real rows and are not differentially private: they
go in the card and the signed record for the reviewer, as the model's attack does.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from privacy.dp._domain import ColumnDomain

__all__ = ["Codes", "marginal_distances", "privacy_check", "tstr"]

Codes = npt.NDArray[np.int64]  # rows × columns
_SAMPLE = 1_000  # rows of each side the distance-based checks compare


def marginal_distances(
    real: Codes, synthetic: Codes, domains: list[ColumnDomain]
) -> dict[str, Any]:
    """The TVD of every 1-way and 2-way marginal, their averages and the worst pair."""
    sizes = [d.size for d in domains]
    names = [d.name for d in domains]

    def tvd(columns: tuple[int, ...]) -> float:
        index_real = np.ravel_multi_index(
            tuple(real[:, c] for c in columns), [sizes[c] for c in columns]
        )
        index_syn = np.ravel_multi_index(
            tuple(synthetic[:, c] for c in columns), [sizes[c] for c in columns]
        )
        cells = int(np.prod([sizes[c] for c in columns]))
        p = np.bincount(index_real, minlength=cells) / max(1, len(real))
        q = np.bincount(index_syn, minlength=cells) / max(1, len(synthetic))
        return float(0.5 * np.abs(p - q).sum())

    one = {names[i]: tvd((i,)) for i in range(len(names))}
    two = {
        f"{names[i]} × {names[j]}": tvd((i, j))
        for i, j in itertools.combinations(range(len(names)), 2)
    }
    worst = max(two, key=two.__getitem__) if two else None
    return {
        "one_way": one,
        "two_way": two,
        "one_way_mean": float(np.mean(list(one.values()))) if one else 0.0,
        "two_way_mean": float(np.mean(list(two.values()))) if two else 0.0,
        "two_way_max": two[worst] if worst else 0.0,
        "two_way_worst": worst,
    }


def tstr(
    train: Codes,
    synthetic: Codes,
    holdout: Codes,
    domains: list[ColumnDomain],
    label: str,
    positive: str | None,
    seed: int,
) -> dict[str, Any]:
    """Train on synthetic, test on real: accuracy and F1 of the classifier trained on
    the synthetic table and on the real training rows, both tested on the holdout."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import accuracy_score, f1_score

    names = [d.name for d in domains]
    target = names.index(label)
    features = [i for i in range(len(names)) if i != target]
    categorical = [domains[i].kind == "categories" for i in features]
    labels = domains[target].labels()
    positive_code = labels.index(positive) if positive in labels else None

    def score(rows: Codes) -> dict[str, float]:
        y = rows[:, target]
        model = HistGradientBoostingClassifier(
            categorical_features=np.array(categorical), random_state=seed, max_iter=200
        )
        if len(np.unique(y)) < 2:  # one class only: a constant guess
            predicted = np.full(len(holdout), y[0] if len(y) else 0)
        else:
            model.fit(rows[:, features], y)
            predicted = model.predict(holdout[:, features])
        truth = holdout[:, target]
        if positive_code is not None:
            f1 = f1_score(truth == positive_code, predicted == positive_code, zero_division=0)
        else:
            f1 = f1_score(truth, predicted, average="macro", zero_division=0)
        return {"accuracy": float(accuracy_score(truth, predicted)), "f1": float(f1)}

    return {
        "label": label,
        "positive_class": positive,
        "classifier": "sklearn HistGradientBoostingClassifier on the declared codes",
        "synthetic": score(synthetic),
        "real": score(train),
        "holdout_rows": len(holdout),
    }


def _nearest(rows: Codes, against: Codes) -> npt.NDArray[np.int64]:
    """Each row's Hamming distance to its closest row of ``against`` (chunked)."""
    out = np.empty(len(rows), dtype=np.int64)
    against8 = against.astype(np.int16)
    for start in range(0, len(rows), 64):
        chunk = rows[start : start + 64].astype(np.int16)
        distance = (chunk[:, None, :] != against8[None, :, :]).sum(axis=2)
        out[start : start + 64] = distance.min(axis=1)
    return out


@dataclass(frozen=True)
class _Rows:
    train: Codes
    holdout: Codes
    synthetic: Codes


def _sample(rows: Codes, draw: np.random.Generator) -> Codes:
    if len(rows) <= _SAMPLE:
        return rows
    return rows[np.sort(draw.choice(len(rows), _SAMPLE, replace=False))]


def privacy_check(train: Codes, holdout: Codes, synthetic: Codes, seed: int) -> dict[str, Any]:
    """The exact-match shares, the distance-to-closest-record quantiles and the
    membership attack's AUC (see the module docstring)."""
    from sklearn.metrics import roc_auc_score

    train, holdout, synthetic = (np.asarray(a, dtype=np.int64) for a in (train, holdout, synthetic))
    known = {row.tobytes() for row in np.ascontiguousarray(train)}

    def share(rows: Codes) -> float:
        rows = np.ascontiguousarray(rows)
        return float(np.mean([row.tobytes() in known for row in rows])) if len(rows) else 0.0

    draw = np.random.default_rng(seed)
    synthetic_sample, holdout_sample = _sample(synthetic, draw), _sample(holdout, draw)
    members = _sample(train, draw)
    dcr_synthetic = _nearest(synthetic_sample, train)
    dcr_holdout = _nearest(holdout_sample, train)
    to_members = _nearest(members, synthetic)
    to_others = _nearest(holdout_sample, synthetic)
    truth = np.r_[np.ones(len(to_members)), np.zeros(len(to_others))]
    closeness = -np.r_[to_members, to_others].astype(np.float64)
    auc = float(roc_auc_score(truth, closeness)) if len(to_others) and len(to_members) else 0.5
    quantiles = (0.05, 0.25, 0.5)
    return {
        "exact_match_share": share(synthetic),
        "holdout_exact_match_share": share(holdout),
        "dcr_synthetic": {
            f"q{int(q * 100)}": float(np.quantile(dcr_synthetic, q)) for q in quantiles
        },
        "dcr_holdout": {f"q{int(q * 100)}": float(np.quantile(dcr_holdout, q)) for q in quantiles},
        "dcr_synthetic_mean": float(dcr_synthetic.mean()),
        "dcr_holdout_mean": float(dcr_holdout.mean()),
        "membership_auc": auc,
        "attack": "distance to the closest synthetic row (Hamming, codes), members vs holdout",
        "compared_rows": len(synthetic_sample),
        "synthetic_rows": len(synthetic),
        "holdout_rows": len(holdout),
    }
