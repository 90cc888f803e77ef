"""encrypt records no plain digest of the plaintext it sealed.

The review's attack: ``privpipe encrypt`` put the SHA-256 of the raw plaintext in the
keyring's audit trail, which anyone who can read the trail may brute-force (a one-line
SSN file is one of a few billion candidates, ten thousand here). Now the plaintext is
recorded by its keyed digest (the content key, under the pseudonym secret) where the
keyring holds the pseudonym scope, and not at all otherwise; the sealed file, which is
ciphertext, keeps its plain SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from flows.cli import main
from privacy.audit import read_trail
from privacy.crypto import Keyring
from privacy.hashing import content_key, sha256_file
from tests._keys import FAST_SCRYPT, PASSPHRASE

SSN = "219-42-4242"
CANDIDATES = [f"219-42-{n:04d}" for n in range(10_000)]


def _file_of(value: str) -> bytes:
    return json.dumps({"ssn": value}).encode() + b"\n"


def _brute_force(blob: bytes) -> list[str]:
    """The candidates whose unkeyed SHA-256 / SHA-512 / BLAKE2b (of the file, the value
    or its line) is anywhere in ``blob``, as hex or raw bytes."""
    text = blob.decode("latin-1").lower()
    hexes = set(re.findall(r"[0-9a-f]{64,128}", text))
    found = set()
    for value in CANDIDATES:
        for data in (_file_of(value), value.encode(), value.encode() + b"\n"):
            for fn in (hashlib.sha256, hashlib.sha512, hashlib.blake2b):
                digest = fn(data)
                if any(digest.hexdigest() in h for h in hexes) or digest.digest() in blob:
                    found.add(value)
    return sorted(found)


@pytest.fixture
def custodian(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", PASSPHRASE)
    path = tmp_path / "custodian" / "ring.json"
    Keyring.create(path, PASSPHRASE, scrypt_n=FAST_SCRYPT)
    return path


def _encrypt(source: Path, ring: Path) -> tuple[Path, dict[str, Any]]:
    sealed = source.with_suffix(".sealed")
    assert main(["encrypt", str(source), str(sealed), "--keyring", str(ring)]) == 0
    (record,) = [r for r in read_trail(ring.parent / "audit.jsonl") if r["step"] == "encrypt"]
    return sealed, record


def test_attack_brute_force_of_an_encrypted_one_line_file_from_the_keyring_trail(
    tmp_path: Path, custodian: Path
) -> None:
    source = tmp_path / "ssn.jsonl"
    source.write_bytes(_file_of(SSN))
    sealed, record = _encrypt(source, custodian)
    trail = (custodian.parent / "audit.jsonl").read_bytes()
    assert _brute_force(trail) == []
    # the custodian can still tell which plaintext was sealed: the keyed digest
    key = content_key(Keyring.open(custodian, PASSPHRASE))
    assert record["inputs"] == {"hmac_sha256": key.file_digest(source), "key_id": key.key_id}
    assert record["outputs"] == {"sha256": sha256_file(sealed)}  # ciphertext: plain is fine


def test_without_the_pseudonym_scope_only_the_sealed_file_is_hashed(
    tmp_path: Path, custodian: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    analyst = tmp_path / "analyst" / "ring.json"
    monkeypatch.setenv("PRIVPIPE_NEW_PASSPHRASE", PASSPHRASE)
    export = ["keys", "export", "--keyring", str(custodian), "--scope", "published"]
    assert main([*export, "--out", str(analyst)]) == 0
    source = tmp_path / "ssn.jsonl"
    source.write_bytes(_file_of(SSN))
    sealed, record = _encrypt(source, analyst)
    assert _brute_force((analyst.parent / "audit.jsonl").read_bytes()) == []
    assert "inputs" not in record or not record["inputs"]
    assert record["outputs"] == {"sha256": sha256_file(sealed)}
    # and decrypt hashes only what it reads: the sealed file
    back = tmp_path / "back.jsonl"
    assert main(["decrypt", str(sealed), str(back), "--keyring", str(analyst)]) == 0
    (step,) = [r for r in read_trail(analyst.parent / "audit.jsonl") if r["step"] == "decrypt"]
    assert step["inputs"] == {"sha256": sha256_file(sealed)}
    assert _brute_force((analyst.parent / "audit.jsonl").read_bytes()) == []
