"""The demo policy with some of its settings changed, for tests that train or plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from privacy.policy import Policy, policy_from_dict

DEMO = Path(__file__).resolve().parents[2] / "policies" / "demo.yaml"


def demo_policy(**training: Any) -> Policy:
    """The demo policy, its ``training`` section updated with ``training``."""
    data = yaml.safe_load(DEMO.read_text())
    data["training"] = {**data["training"], **training}
    return policy_from_dict(data)
