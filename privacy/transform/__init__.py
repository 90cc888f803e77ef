"""Column operators: one small class per policy rule, each a polars expression.

Importing this package registers every operator in :data:`OPERATORS`.
"""

from privacy.transform._base import (
    OPERATORS,
    ColumnOperator,
    TransformContext,
    register_operator,
)
from privacy.transform._engine import TransformResult, apply_policy, operators_for
from privacy.transform.date_shift import DateShift
from privacy.transform.drop import Drop
from privacy.transform.generalize import Generalize
from privacy.transform.keep import Keep
from privacy.transform.mask import Mask
from privacy.transform.pseudonymize import Pseudonymize
from privacy.transform.redact import Redact
from privacy.transform.scrub import Scrub

__all__ = [
    "OPERATORS",
    "ColumnOperator",
    "DateShift",
    "Drop",
    "Generalize",
    "Keep",
    "Mask",
    "Pseudonymize",
    "Redact",
    "Scrub",
    "TransformContext",
    "TransformResult",
    "apply_policy",
    "operators_for",
    "register_operator",
]
