from __future__ import annotations

from typing import Any

import polars as pl

from privacy.crypto import KeyProvider
from privacy.policy import policy_from_dict
from privacy.transform import apply_policy


def run(frame: pl.DataFrame, columns: dict[str, Any], keys: KeyProvider | None = None):  # type: ignore[no-untyped-def]
    policy = policy_from_dict({"name": "t", "columns": columns})
    return apply_policy(frame, policy, keys)
