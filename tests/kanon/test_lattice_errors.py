"""The lattice's own refusals are in privpipe's error tree, naming the policy key."""

from __future__ import annotations

import pytest

from privacy.errors import PolicyError


def test_an_unknown_metric_is_a_policy_error_naming_the_key() -> None:
    from privacy.kanon import Lattice

    with pytest.raises(PolicyError, match=r"privacy\.metric: unknown metric 'nope'"):
        Lattice(None, [], [], max_suppression=0.0, metric="nope")  # type: ignore[arg-type]
