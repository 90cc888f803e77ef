"""Tabular features for training: categories one-hot, numbers standardized.

The encoder is fitted on the training split only (vocabularies, means and standard
deviations never see the held-out rows) and saved beside the model as JSON. A category
unseen in training encodes as all zeros. Which columns are features comes from the
policy: everything published except the label and the columns whose values are
per-person tokens or free text (pseudonymized, redacted, masked, date-shifted,
scrubbed), which would only let a model memorize people.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from privacy.errors import InputError
from privacy.policy import Policy

__all__ = ["TabularEncoder", "feature_columns"]

_NOT_FEATURES = {"drop", "pseudonymize", "redact", "mask", "date_shift", "scrub"}


def feature_columns(policy: Policy, frame: pl.DataFrame, label: str) -> list[str]:
    return [
        name
        for name, spec in policy.columns.items()
        if name != label and name in frame.columns and spec.rule not in _NOT_FEATURES
    ]


@dataclass
class TabularEncoder:
    label: str
    positive: str
    categorical: dict[str, list[str]]
    numeric: dict[str, list[float]]  # column -> [mean, std]

    @classmethod
    def fit(
        cls, frame: pl.DataFrame, columns: list[str], label: str, positive: str | None
    ) -> TabularEncoder:
        labels = frame.get_column(label).cast(pl.String)
        classes = sorted(labels.drop_nulls().unique().to_list())
        if len(classes) != 2 and positive is None:
            raise InputError(
                f"column {label!r}: {len(classes)} classes; set training.positive_class"
            )
        positive = positive if positive is not None else classes[-1]
        if positive not in classes:
            raise InputError("training.positive_class: no training row has that label")
        categorical: dict[str, list[str]] = {}
        numeric: dict[str, list[float]] = {}
        for column in columns:
            values = frame.get_column(column)
            if values.dtype.is_numeric():
                mean = float(values.cast(pl.Float64).mean() or 0.0)  # type: ignore[arg-type]
                std = float(values.cast(pl.Float64).std() or 1.0)  # type: ignore[arg-type]
                numeric[column] = [mean, std if std > 0 else 1.0]
            else:
                text = values.cast(pl.String).fill_null("")
                categorical[column] = sorted(text.unique().to_list())
        return cls(label, positive, categorical, numeric)

    @property
    def width(self) -> int:
        return sum(len(v) for v in self.categorical.values()) + len(self.numeric)

    def features(self, frame: pl.DataFrame) -> npt.NDArray[np.float32]:
        blocks = []
        for column, vocabulary in self.categorical.items():
            text = frame.get_column(column).cast(pl.String).fill_null("")
            codes = text.replace_strict(
                vocabulary, list(range(len(vocabulary))), default=-1, return_dtype=pl.Int64
            ).to_numpy()
            block = np.zeros((frame.height, len(vocabulary)), dtype=np.float32)
            known = codes >= 0
            block[np.flatnonzero(known), codes[known]] = 1.0
            blocks.append(block)
        for column, (mean, std) in self.numeric.items():
            x = frame.get_column(column).cast(pl.Float64).fill_null(mean).to_numpy()
            blocks.append(((x - mean) / std).astype(np.float32).reshape(-1, 1))
        if not blocks:
            return np.zeros((frame.height, 0), dtype=np.float32)
        return np.hstack(blocks)

    def labels(self, frame: pl.DataFrame) -> npt.NDArray[np.int64]:
        text = frame.get_column(self.label).cast(pl.String)
        return (text == self.positive).fill_null(False).to_numpy().astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TabularEncoder:
        return cls(**data)
