from __future__ import annotations

import hashlib

import polars as pl

from privacy.crypto import StaticKeyProvider, derive_subkey
from tests.transform._util import run

SPEC = {"rule": "pseudonymize", "prefix": "p_", "length": 32}


def test_tokens_are_stable_and_joinable_across_runs_and_columns(key) -> None:
    a = pl.DataFrame({"id": ["alice", "bob", "alice", None]})
    b = pl.DataFrame({"other": ["bob", "carol"]})
    out_a, result = run(a, {"id": SPEC}, key)
    out_b, _ = run(b, {"other": SPEC}, key)
    tokens = out_a.get_column("id").to_list()
    assert tokens[0] == tokens[2] and tokens[0] != tokens[1] and tokens[3] is None
    assert out_b.get_column("other")[0] == tokens[1]  # same value, same key, other file
    assert all(t.startswith("p_") and len(t) == 34 for t in tokens[:3])
    assert result.key_id == key.pseudonym_key_id


def test_tokens_depend_on_the_key_and_are_not_an_unkeyed_hash(key) -> None:
    frame = pl.DataFrame({"id": ["alice"]})
    token = run(frame, {"id": SPEC}, key)[0].get_column("id")[0]
    other = run(frame, {"id": SPEC}, StaticKeyProvider(b"\x01" * 32))[0].get_column("id")[0]
    assert token != other
    # the MAC is keyed BLAKE2b-256 under the derived pseudonym subkey: the token is that,
    # and neither its unkeyed form nor the same MAC under the un-derived secret
    secret = key.pseudonym_key()
    subkey = derive_subkey(secret, "pseudonym")
    assert token[2:] == hashlib.blake2b(b"alice", key=subkey, digest_size=32).hexdigest()[:32]
    for unkeyed in (
        hashlib.blake2b(b"alice", digest_size=32).hexdigest(),
        hashlib.blake2b(b"alice", key=secret, digest_size=32).hexdigest(),
        hashlib.sha256(b"alice").hexdigest(),
    ):
        assert token[2:] not in unkeyed


def test_integer_ids_are_tokenized_as_text(key) -> None:
    frame = pl.DataFrame({"id": [7, 8, 7]})
    out, _ = run(frame, {"id": {**SPEC, "type": "integer"}}, key)
    assert out.schema["id"] == pl.String
    assert out.get_column("id")[0] == out.get_column("id")[2]


def test_missing_key_is_a_key_access_error() -> None:
    import pytest

    from privacy.crypto import EnvKeyProvider
    from privacy.errors import KeyAccessError

    with pytest.raises(KeyAccessError, match="PRIVPIPE_TEST_UNSET_KEY is not set"):
        run(pl.DataFrame({"id": ["a"]}), {"id": SPEC}, EnvKeyProvider("PRIVPIPE_TEST_UNSET_KEY"))
