"""The local keyring: key-encryption keys and the pseudonym secret in one file,
protected by a passphrase.

File (JSON, mode 0600)::

    {"format": "privpipe-keyring", "version": 1,
     "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "length": 32, "salt": b64},
     "keys": [{"id": "kek-…", "created": "2026-…Z", "active": true}, …],
     "pseudonym_key_id": "k-…",
     "signing": {"id": "sig-…", "public_key": hex},
     "nonce": b64, "secrets": b64}

``secrets`` is AES-256-GCM under the scrypt-derived key, with every other field of the
file as associated data: a wrong passphrase and an edited field (an ``active`` flag,
a KDF parameter) fail the same check. Rotation adds a KEK and makes it active; old KEKs
stay, so files sealed under them still open. The pseudonym secret is never rotated:
doing so would break every join on existing tokens. The Ed25519 key that signs audit
checkpoints lives here too; its public half is in the clear so that a reviewer can
verify a trail without the passphrase.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from privacy.crypto._provider import key_id
from privacy.errors import IntegrityError, KeyAccessError

__all__ = ["KekInfo", "Keyring", "SCRYPT_N", "read_public_signing_key", "signing_key_id"]

FORMAT = "privpipe-keyring"
SCRYPT_N = 2**15  # 32 MiB of memory per derivation, ~0.1 s here (RFC 7914 interactive)
_WRAP_LABEL = b"privpipe/kek-wrap/v1"


@dataclass(frozen=True)
class KekInfo:
    """What may be shown about a key-encryption key: never its bytes."""

    id: str
    created: str
    active: bool


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")


class Keyring:
    """An unlocked keyring. Implements KeyEncryptionProvider and KeyProvider."""

    def __init__(
        self,
        path: Path,
        *,
        kdf: dict[str, Any],
        derived: bytes,
        keys: list[KekInfo],
        kek_bytes: dict[str, bytes],
        pseudonym: bytes,
        signing: bytes,
    ) -> None:
        self.path = path
        self._kdf = kdf
        self._derived = derived
        self._keys = keys
        self._kek_bytes = kek_bytes
        self._pseudonym = pseudonym
        self._signing = Ed25519PrivateKey.from_private_bytes(signing)

    # ---------------------------------------------------------------- life cycle

    @classmethod
    def create(cls, path: str | Path, passphrase: str, *, scrypt_n: int = SCRYPT_N) -> Keyring:
        """Make a new keyring file with one active KEK and a pseudonym secret."""
        path = Path(path)
        if path.exists():
            raise KeyAccessError(f"{path}: a keyring already exists here; not overwritten")
        if not passphrase:
            raise KeyAccessError("the keyring passphrase is empty")
        kdf = {
            "name": "scrypt",
            "n": scrypt_n,
            "r": 8,
            "p": 1,
            "length": 32,
            "salt": _b64(secrets.token_bytes(16)),
        }
        ring = cls(
            path,
            kdf=kdf,
            derived=_derive(passphrase, kdf),
            keys=[],
            kek_bytes={},
            pseudonym=secrets.token_bytes(32),
            signing=secrets.token_bytes(32),
        )
        ring._add_kek()
        ring._save()
        return ring

    @classmethod
    def open(cls, path: str | Path, passphrase: str) -> Keyring:
        """Unlock a keyring file. A wrong passphrase or an edited file is refused."""
        path = Path(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeyAccessError(
                f"{path}: keyring not found (create one: privpipe keys init)"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise KeyAccessError(f"{path}: not a privpipe keyring") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise KeyAccessError(f"{path}: not a privpipe keyring")
        if document.get("version") != 1:
            raise KeyAccessError(
                f"{path}: keyring version {document.get('version')} is not supported"
            )
        try:
            kdf = document["kdf"]
            derived = _derive(passphrase, kdf)
            sealed = _unb64(document["secrets"])
            nonce = _unb64(document["nonce"])
            keys = [KekInfo(k["id"], k["created"], bool(k["active"])) for k in document["keys"]]
        except (KeyError, TypeError, ValueError):
            raise KeyAccessError(f"{path}: keyring is malformed") from None
        try:
            plain = AESGCM(derived).decrypt(nonce, sealed, _canonical(_public_part(document)))
        except InvalidTag:
            raise KeyAccessError(f"{path}: wrong passphrase, or the keyring was altered") from None
        try:
            material = json.loads(plain)
            return cls(
                path,
                kdf=kdf,
                derived=derived,
                keys=keys,
                kek_bytes={k: _unb64(v) for k, v in material["keks"].items()},
                pseudonym=_unb64(material["pseudonym"]),
                signing=_unb64(material["signing"]),
            )
        except (KeyError, TypeError, ValueError):
            raise KeyAccessError(f"{path}: keyring is incomplete (no signing key?)") from None

    def rotate(self) -> KekInfo:
        """Add a new KEK and make it the active one; older KEKs keep opening old files."""
        info = self._add_kek()
        self._save()
        return info

    # ---------------------------------------------------------------- queries

    def list_keys(self) -> list[KekInfo]:
        return list(self._keys)

    @property
    def active_kek_id(self) -> str:
        return next(k.id for k in self._keys if k.active)

    # ---------------------------------------------------------------- KeyEncryptionProvider

    def wrap_key(self, data_key: bytes, associated_data: bytes) -> tuple[str, bytes]:
        kek = self.active_kek_id
        nonce = secrets.token_bytes(12)
        wrapped = AESGCM(self._kek_bytes[kek]).encrypt(
            nonce, data_key, _WRAP_LABEL + kek.encode() + associated_data
        )
        return kek, nonce + wrapped

    def unwrap_key(self, kek_id: str, wrapped: bytes, associated_data: bytes) -> bytes:
        kek = self._kek_bytes.get(kek_id)
        if kek is None:
            raise KeyAccessError(
                f"sealed under key {kek_id}, which keyring {self.path} does not hold"
            )
        try:
            return AESGCM(kek).decrypt(
                wrapped[:12], wrapped[12:], _WRAP_LABEL + kek_id.encode() + associated_data
            )
        except (InvalidTag, ValueError):
            raise IntegrityError(
                "header integrity check failed (wrapped key or header altered)"
            ) from None

    # ---------------------------------------------------------------- KeyProvider

    def pseudonym_key(self) -> bytes:
        return self._pseudonym

    @property
    def pseudonym_key_id(self) -> str:
        return key_id(self._pseudonym)

    # ---------------------------------------------------------------- Signer

    def sign(self, message: bytes) -> bytes:
        """An Ed25519 signature of ``message`` (audit checkpoints)."""
        return self._signing.sign(message)

    @property
    def signing_public_key(self) -> bytes:
        return self._signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def signing_key_id(self) -> str:
        return signing_key_id(self.signing_public_key)

    # ---------------------------------------------------------------- internals

    def _add_kek(self) -> KekInfo:
        info = KekInfo(
            id=f"kek-{secrets.token_hex(6)}",
            created=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            active=True,
        )
        self._keys = [KekInfo(k.id, k.created, False) for k in self._keys] + [info]
        self._kek_bytes[info.id] = secrets.token_bytes(32)
        return info

    def _save(self) -> None:
        from privacy._atomic import atomic_path

        document: dict[str, Any] = {
            "format": FORMAT,
            "version": 1,
            "kdf": self._kdf,
            "keys": [{"id": k.id, "created": k.created, "active": k.active} for k in self._keys],
            "pseudonym_key_id": self.pseudonym_key_id,
            "signing": {"id": self.signing_key_id, "public_key": self.signing_public_key.hex()},
        }
        material = {
            "keks": {k: _b64(v) for k, v in self._kek_bytes.items()},
            "pseudonym": _b64(self._pseudonym),
            "signing": _b64(
                self._signing.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
            ),
        }
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._derived).encrypt(nonce, _canonical(material), _canonical(document))
        document |= {"nonce": _b64(nonce), "secrets": _b64(sealed)}
        with atomic_path(self.path) as tmp:  # 0600, in a folder created 0700
            tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def signing_key_id(public_key: bytes) -> str:
    return "sig-" + hashlib.sha256(public_key).hexdigest()[:16]


def read_public_signing_key(path: str | Path) -> tuple[str, bytes]:
    """(key id, Ed25519 public key) from a keyring file, without its passphrase.

    The public key is authenticated only when the keyring is unlocked; a verifier that
    does not hold the passphrase trusts the file (or a key given out of band)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        public = bytes.fromhex(document["signing"]["public_key"])
    except FileNotFoundError:
        raise KeyAccessError(f"{path}: keyring not found") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise KeyAccessError(f"{path}: no audit signing key in this keyring") from None
    return signing_key_id(public), public


def _public_part(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in ("nonce", "secrets")}


def _derive(passphrase: str, kdf: dict[str, Any]) -> bytes:
    if kdf.get("name") != "scrypt":
        raise KeyAccessError(f"unsupported key derivation {kdf.get('name')!r}")
    n = int(kdf["n"])
    if n < 2**10 or n > 2**22 or n & (n - 1):
        raise KeyAccessError("keyring scrypt parameter n is out of range")
    scrypt = Scrypt(
        salt=_unb64(kdf["salt"]), length=int(kdf["length"]), n=n, r=int(kdf["r"]), p=int(kdf["p"])
    )
    return scrypt.derive(passphrase.encode("utf-8"))
