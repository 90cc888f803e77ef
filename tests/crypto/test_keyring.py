from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from privacy.crypto import Keyring
from privacy.errors import KeyAccessError
from tests._keys import FAST_SCRYPT, PASSPHRASE


def test_create_open_and_file_mode(keyring: Keyring) -> None:
    assert keyring.path.stat().st_mode & 0o777 == 0o600
    again = Keyring.open(keyring.path, PASSPHRASE)
    assert [k.id for k in again.list_keys()] == [k.id for k in keyring.list_keys()]
    assert again.pseudonym_key() == keyring.pseudonym_key()
    assert again.active_kek_id == keyring.active_kek_id


def test_the_file_never_holds_key_bytes_in_the_clear(keyring: Keyring) -> None:
    text = keyring.path.read_text()
    for secret in [*keyring._kek_bytes.values(), keyring.pseudonym_key()]:
        assert base64.b64encode(secret).decode() not in text
        assert secret.hex() not in text


def test_wrong_passphrase(keyring: Keyring) -> None:
    with pytest.raises(
        KeyAccessError, match=r"ring\.json: wrong passphrase, or the keyring was altered"
    ):
        Keyring.open(keyring.path, "wrong")


def test_edited_metadata_is_refused(keyring: Keyring) -> None:
    keyring.rotate()
    document = json.loads(keyring.path.read_text())
    document["keys"][0]["active"], document["keys"][1]["active"] = True, False
    keyring.path.write_text(json.dumps(document))
    with pytest.raises(KeyAccessError, match="altered"):
        Keyring.open(keyring.path, PASSPHRASE)


def test_rotate_adds_an_active_key_per_scope_and_keeps_the_old(keyring: Keyring) -> None:
    first = keyring.active_kek_id
    new = keyring.rotate()
    assert [k.scope for k in new] == ["vault", "published"]
    reopened = Keyring.open(keyring.path, PASSPHRASE)
    assert reopened.active_kek_id == new[0].id != first  # the keyring seals as the vault
    assert reopened.for_scope("published").active_kek_id == new[1].id
    assert [(k.scope, k.active) for k in reopened.list_keys()] == [
        ("vault", False),
        ("published", False),
        ("vault", True),
        ("published", True),
    ]
    kek, wrapped = reopened.wrap_key(b"k" * 32, b"aad")
    assert kek == new[0].id and reopened.unwrap_key(kek, wrapped, b"aad") == b"k" * 32
    (published,) = reopened.rotate("published")
    again = Keyring.open(keyring.path, PASSPHRASE)
    assert again.active_kek_id == new[0].id  # the vault's key is kept
    assert again.for_scope("published").active_kek_id == published.id != new[1].id


def test_create_refuses_to_overwrite(keyring: Keyring) -> None:
    with pytest.raises(KeyAccessError, match="already exists"):
        Keyring.create(keyring.path, PASSPHRASE, scrypt_n=FAST_SCRYPT)


def test_missing_and_garbage_keyrings(tmp_path: Path) -> None:
    with pytest.raises(KeyAccessError, match="keyring not found"):
        Keyring.open(tmp_path / "none.json", PASSPHRASE)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(KeyAccessError, match="not a privpipe keyring"):
        Keyring.open(tmp_path / "junk.json", PASSPHRASE)


def test_kdf_parameters_are_recorded(keyring: Keyring) -> None:
    kdf = json.loads(keyring.path.read_text())["kdf"]
    assert kdf["name"] == "scrypt" and kdf["n"] == FAST_SCRYPT and kdf["r"] == 8
