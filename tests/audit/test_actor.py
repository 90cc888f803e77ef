"""The actor of audit records: user and host always, the operator's key id when
PRIVPIPE_OPERATOR_KEY is set; a malformed value is a one-line error naming it."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from flows.cli import main
from privacy.actor import OPERATOR_ENV, actor, operator_key_id
from privacy.audit import AuditTrail
from privacy.crypto import Keyring
from privacy.errors import KeyAccessError
from privacy.integrity import signing_key_id


@pytest.fixture(autouse=True)
def _no_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OPERATOR_ENV, raising=False)


def test_user_and_host_without_an_operator() -> None:
    who = actor()
    assert set(who) == {"user", "host"} and who["user"] and who["host"]


@pytest.mark.parametrize("padding", ["", " ", "\n"])
def test_operator_from_a_key_id(monkeypatch: pytest.MonkeyPatch, padding: str) -> None:
    monkeypatch.setenv(OPERATOR_ENV, "sig-0123456789abcdef" + padding)
    assert actor()["operator"] == "sig-0123456789abcdef"


def test_operator_from_a_public_key_or_a_file(keyring: Keyring, tmp_path: Path) -> None:
    public = keyring.signing_public_key
    expected = signing_key_id(public)
    assert expected == keyring.signing_key_id
    assert operator_key_id(public.hex()) == expected
    assert operator_key_id(public.hex().upper()) == expected
    assert operator_key_id(str(keyring.path)) == expected  # no passphrase needed
    text = tmp_path / "operator.pub"
    text.write_text(public.hex() + "\n")
    assert operator_key_id(str(text)) == expected
    text.write_text(expected + "\n")
    assert operator_key_id(str(text)) == expected


@pytest.mark.parametrize(
    "value", ["alice", "sig-0123", "sig-0123456789ABCDEF", "ab" * 31, "/no/such/key.pub"]
)
def test_a_malformed_value_names_the_variable_not_the_value(value: str) -> None:
    with pytest.raises(KeyAccessError) as caught:
        operator_key_id(value)
    message = str(caught.value)
    assert message.startswith(f"{OPERATOR_ENV}: ") and "\n" not in message
    assert value not in message


def test_a_file_that_holds_no_key_names_its_path(tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(KeyAccessError, match=rf"{OPERATOR_ENV}: .*junk\.json: holds neither"):
        operator_key_id(str(junk))


def test_every_step_record_carries_the_operator(
    keyring: Keyring, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OPERATOR_ENV, str(keyring.path))
    path = tmp_path / "audit.jsonl"
    with AuditTrail(path, keyring) as trail:
        trail.append("one")
        trail.append("two")
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    steps = [r for r in records if r["type"] == "step"]
    assert len(steps) == 2
    assert all(r["actor"]["operator"] == keyring.signing_key_id for r in steps)
    assert all("actor" not in r for r in records if r["type"] == "checkpoint")


def test_the_cli_refuses_a_malformed_operator_before_doing_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(OPERATOR_ENV, "alice")
    ring = tmp_path / "ring.json"
    assert main(["keys", "init", "--keyring", str(ring)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {OPERATOR_ENV}: ")
    assert not ring.exists() and not (tmp_path / "audit.jsonl").exists()
    assert main(["--version"]) == 0  # help and version still work
