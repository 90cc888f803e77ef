"""One-way tokens are at least 128 bits, and a collision is caught when it is written.

The review's attack: 8-hex-digit tokens (32 bits) over 300k distinct values collided 13
times, so two people were published as one. A policy may no longer ask for fewer than
32 hex digits; below the policy (the library API, which tests may drive with a tiny
length), two distinct values given one token fail the run, naming the column only.
"""

from __future__ import annotations

import polars as pl
import pytest

from privacy.crypto import StaticKeyProvider
from privacy.errors import PolicyError, PrivacyGuaranteeError
from privacy.policy import PseudonymizeRule, policy_from_dict
from privacy.transform import apply_policy
from privacy.transform.pseudonymize import pseudonym_tokens

KEY = StaticKeyProvider(bytes(range(32)))


def _one_way(column: str, values: list[str], length: int) -> pl.Series:
    """The transform stage's own path, on a rule the policy loader would refuse (built
    unvalidated: test only)."""
    policy = policy_from_dict({"name": "t", "columns": {column: {"rule": "pseudonymize"}}})
    spec = PseudonymizeRule.model_construct(rule="pseudonymize", length=length)
    forced = policy.model_copy(update={"columns": {column: spec}})
    out, _ = apply_policy(pl.DataFrame({column: values}), forced, KEY)
    return out.get_column(column)


def test_attack_eight_hex_digit_tokens_collide_on_300k_values() -> None:
    values = [f"{i:09d}" for i in range(300_000)]
    # the policy that made them is refused, naming the key
    with pytest.raises(PolicyError) as refused:
        policy_from_dict({"name": "t", "columns": {"id": {"rule": "pseudonymize", "length": 8}}})
    message = str(refused.value)
    assert "columns.id.length" in message and "32" in message and "\n" not in message
    # made anyway, below the policy, they collide, and the write is refused
    with pytest.raises(PrivacyGuaranteeError) as collided:
        _one_way("customer_id", values, 8)
    message = str(collided.value)
    assert "customer_id" in message and "\n" not in message
    assert not any(v in message for v in values[:1000])


def test_a_forced_collision_names_the_column_and_never_a_value_or_token() -> None:
    values = [f"person-{i}" for i in range(40)]  # 40 values in 16 one-digit tokens
    tokens = pseudonym_tokens(pl.Series(values[:1]), KEY.pseudonym_key(), length=1, prefix="")
    with pytest.raises(PrivacyGuaranteeError, match=r"columns\.id:") as caught:
        _one_way("id", values, 1)
    message = str(caught.value)
    assert not any(v in message for v in values)
    assert f" {tokens[0]} " not in f" {message} "
    # the library API checks too, when called directly
    with pytest.raises(PrivacyGuaranteeError, match="collision"):
        pseudonym_tokens(pl.Series(values), KEY.pseudonym_key(), length=1, prefix="")


def test_repeated_values_are_no_collision_and_the_default_is_128_bits() -> None:
    out = _one_way("id", ["a", "b", "a", "b"] * 50, 32)
    assert out.n_unique() == 2
    spec = policy_from_dict({"name": "t", "columns": {"id": {"rule": "pseudonymize"}}})
    rule = spec.columns["id"]
    assert isinstance(rule, PseudonymizeRule) and rule.length == 32
    for length in (32, 64):
        policy_from_dict(
            {"name": "t", "columns": {"id": {"rule": "pseudonymize", "length": length}}}
        )
    with pytest.raises(PolicyError, match=r"columns\.id\.length"):
        policy_from_dict({"name": "t", "columns": {"id": {"rule": "pseudonymize", "length": 65}}})
