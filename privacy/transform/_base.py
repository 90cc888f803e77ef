"""The column-operator contract and its registry.

An operator turns one policy rule for one column into a polars expression evaluated over
the whole input frame, so every rule of a policy runs in a single vectorized ``select``
(a rule that needs another column, like ``date_shift`` keyed by a person id, reads the
original, untransformed value). Operators follow the scikit-learn habit: ``__init__``
only stores, ``get_params`` describes the operator for the audit trail (never a key or
a value from the data).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from privacy.crypto import KeyProvider
from privacy.detect import TextScanner
from privacy.errors import KeyAccessError
from privacy.policy import ColumnSpec

__all__ = ["OPERATORS", "ColumnOperator", "TransformContext", "map_distinct", "register_operator"]


@dataclass
class TransformContext:
    """What operators may use besides their own column: the other columns' specs, and
    key material (fetched only by operators that need it)."""

    columns: Mapping[str, ColumnSpec]
    keys: KeyProvider | None = None
    policy_name: str = ""  # reversible tokens are bound to it (and to their column)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    scanner: TextScanner | None = None  # Presidio span detection for ``scrub``

    def pseudonym_key(self) -> bytes:
        if self.keys is None:
            raise KeyAccessError("this policy needs a pseudonym key, and no key provider is set")
        return self.keys.pseudonym_key()


class ColumnOperator(ABC):
    """One rule applied to one column."""

    rule: ClassVar[str]
    needs_key: ClassVar[bool] = False

    def __init__(self, column: str, spec: ColumnSpec) -> None:
        self.column = column
        self.spec = spec

    @abstractmethod
    def expr(self, ctx: TransformContext) -> pl.Expr | None:
        """The output column as an expression over the input frame; None drops it."""

    def get_params(self) -> dict[str, Any]:
        """The rule's parameters, safe to record (the policy's own settings only)."""
        skip = {
            "type",
            "role",
            "nullable",
            "format",
            "description",
            "acknowledge_pii",
            "hierarchy",
            "rule",
        }
        return {k: v for k, v in self.spec.model_dump(mode="json").items() if k not in skip}

    def uses_key(self) -> bool:
        """Whether this operator needs the pseudonym key."""
        return self.needs_key

    @property
    def source(self) -> pl.Expr:
        return pl.col(self.column)

    def source_as_text(self) -> pl.Expr:
        return self.source.cast(pl.String)


def map_distinct(
    values: pl.Series, fn: Callable[[list[str]], pl.Series], dtype: pl.DataType
) -> pl.Series:
    """``fn`` applied to the distinct values (as text, nulls left out), mapped back over
    ``values``; nulls stay null. ``fn`` returns one result per value, in order.

    Keyed operators run Python per value (a keyed hash has no polars kernel); real
    columns repeat values, so computing per distinct value and joining back is the cheap
    way.
    """
    text = values.cast(pl.String)
    distinct = text.drop_nulls().unique()
    results = fn(distinct.to_list()).cast(dtype)
    return text.replace_strict(distinct, results, default=None, return_dtype=dtype)


OPERATORS: dict[str, type[ColumnOperator]] = {}


def register_operator(cls: type[ColumnOperator]) -> type[ColumnOperator]:
    """Class decorator: make ``cls`` the operator for its ``rule``."""
    OPERATORS[cls.rule] = cls
    return cls
