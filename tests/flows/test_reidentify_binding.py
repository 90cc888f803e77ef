"""Reversible tokens are bound to their policy and column, and padded to a length bucket.

The review's attack: a token made for one column reversed under another column's spec
(both reversible, same prefix), and the audit trail then named the wrong column. Now
the token's associated data holds the policy's name and its column, so it reverses
only as what it is, and any other lookup is refused, and audited as refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from flows.cli import main
from privacy import stages
from privacy.audit import read_trail
from privacy.crypto import Keyring, StaticKeyProvider
from privacy.errors import IntegrityError
from privacy.policy import load_policy
from privacy.transform.pseudonymize import (
    PAD_BUCKET,
    REVERSIBLE_MARK,
    reverse_token,
    reversible_tokens,
)

CUSTODIAN = "custodian passphrase"
KEY = StaticKeyProvider(bytes(range(32))).pseudonym_key()


@pytest.fixture
def two_columns(
    tmp_path: Path, demo_policy_path: Path, people: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The demo policy with person_id and email both reversible, under one prefix."""
    monkeypatch.delenv("PRIVPIPE_KEYRING", raising=False)
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", CUSTODIAN)
    ring_path = tmp_path / "custodian" / "keyring.json"
    ring = Keyring.create(ring_path, CUSTODIAN, scrypt_n=2**14)
    data = yaml.safe_load(demo_policy_path.read_text())
    data["columns"]["person_id"]["reversible"] = True
    data["columns"]["email"] = {
        "rule": "pseudonymize",
        "role": "identifier",
        "prefix": "p_",
        "reversible": True,
    }
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(data))
    policy = load_policy(policy_path)
    frame = people.select(list(policy.columns))
    out, _ = stages.transform(frame, policy, ring, None)
    return {
        "ring": ring_path,
        "policy": policy_path,
        "data": data,
        "email": frame.get_column("email").to_list(),
        "email_tokens": out.get_column("email").to_list(),
    }


def _reidentify(fx: dict[str, Any], token: str, column: str, policy: Path | None = None) -> int:
    return main(
        [
            "reidentify",
            token,
            "--policy",
            str(policy or fx["policy"]),
            "--column",
            column,
            "--reason",
            "DSAR #7",
            "--keyring",
            str(fx["ring"]),
        ]
    )


def _lookups(ring: Path) -> list[dict[str, Any]]:
    return [r for r in read_trail(ring.parent / "audit.jsonl") if r.get("step") == "reidentify"]


def test_attack_a_token_reverses_under_another_columns_spec(
    two_columns: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    token, email = two_columns["email_tokens"][0], two_columns["email"][0]
    capsys.readouterr()
    assert _reidentify(two_columns, token, "person_id") == 2  # an email token, as a person id
    captured = capsys.readouterr()
    assert email not in captured.out + captured.err
    assert captured.err.count("\n") == 1 and "not a reversible token" in captured.err
    assert "columns.person_id" in captured.err
    (refused,) = _lookups(two_columns["ring"])
    assert refused["outcome"] == "refused" and refused["params"]["column"] == "person_id"
    # under its own column it reverses, and the audit names that column
    assert _reidentify(two_columns, token, "email") == 0
    assert capsys.readouterr().out == f"{token}\t{email}\n"
    assert _lookups(two_columns["ring"])[-1]["params"]["column"] == "email"
    assert _lookups(two_columns["ring"])[-1]["outcome"] == "ok"


def test_a_token_does_not_reverse_under_another_policy_name(
    tmp_path: Path, two_columns: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    renamed = tmp_path / "renamed.yaml"
    renamed.write_text(yaml.safe_dump({**two_columns["data"], "name": "another"}))
    token = two_columns["email_tokens"][0]
    assert _reidentify(two_columns, token, "email", renamed) == 2
    assert "policy 'another'" in capsys.readouterr().err


def test_token_length_tells_value_length_only_to_a_bucket() -> None:
    values = ["", "a", "x" * (PAD_BUCKET - 1), "x" * PAD_BUCKET, "ü" * 20, "x" * 33]
    tokens = reversible_tokens(pl.Series(values), KEY, prefix="t_", policy="p", column="c")
    lengths = [len(t) for t in tokens]
    assert lengths[0] == lengths[1] == lengths[2]  # 0, 1 and 15 bytes: one bucket
    assert lengths[3] > lengths[2]  # 16 bytes and its end marker: the next bucket
    assert lengths[4] == lengths[5]  # 40 bytes of ü, 33 of x: 48 padded
    for value, token in zip(values, tokens, strict=True):
        assert token.startswith("t_" + REVERSIBLE_MARK)
        assert reverse_token(KEY, token, prefix="t_", policy="p", column="c") == value


def test_tokens_are_stable_within_a_column_and_differ_between_columns() -> None:
    values = pl.Series(["alice", "bob", "alice"])
    a = reversible_tokens(values, KEY, prefix="", policy="p", column="a").to_list()
    again = reversible_tokens(values, KEY, prefix="", policy="p", column="a").to_list()
    b = reversible_tokens(values, KEY, prefix="", policy="p", column="b").to_list()
    assert a == again and a[0] == a[2] and a[0] != a[1]
    assert not set(a) & set(b)


def test_old_format_tokens_are_refused_with_a_clear_message() -> None:
    """Before v2 a token was prefix + "r." + AES-SIV of the bare value under one fixed
    associated datum: bound to no column. It is refused, never read."""
    import base64

    from privacy.transform.pseudonymize import _siv

    sealed = _siv(KEY).encrypt(b"123-45-6789", [b"privpipe/reversible/v1"])
    old = "p_r." + base64.urlsafe_b64encode(sealed).decode().rstrip("=")
    with pytest.raises(IntegrityError, match="old-format reversible token") as caught:
        reverse_token(KEY, old, prefix="p_", policy="demo", column="ssn")
    assert "123-45-6789" not in str(caught.value) and old not in str(caught.value)
    with pytest.raises(IntegrityError, match="not a reversible token"):
        reverse_token(KEY, "p_" + "ab" * 16, prefix="p_", policy="demo", column="ssn")


def test_a_token_with_bad_padding_is_refused() -> None:
    """Only the key holder can make one (the tag covers the padding); still refused."""
    import base64

    from privacy.transform.pseudonymize import _bound_to, _siv

    for plain in (b"no end marker", b"x" * 15 + b"\x80" + b"\x00" * 16):
        sealed = _siv(KEY).encrypt(plain, _bound_to("p", "c"))
        token = REVERSIBLE_MARK + base64.urlsafe_b64encode(sealed).decode().rstrip("=")
        with pytest.raises(IntegrityError, match="not a reversible token"):
            reverse_token(KEY, token, prefix="", policy="p", column="c")


def test_a_token_made_under_another_key_is_refused() -> None:
    """Another pseudonym secret (another keyring, or a rotated-in variable) made it: the
    token does not reverse, and the error never echoes it."""
    values = pl.Series(["alice@example.org", "bob@example.org"])
    tokens = reversible_tokens(values, KEY, prefix="p_", policy="demo", column="email")
    assert reverse_token(KEY, tokens[0], prefix="p_", policy="demo", column="email") == values[0]
    other = StaticKeyProvider(bytes(range(1, 33))).pseudonym_key()
    with pytest.raises(IntegrityError) as refused:
        reverse_token(other, tokens[0], prefix="p_", policy="demo", column="email")
    assert tokens[0] not in str(refused.value) and "alice" not in str(refused.value)
