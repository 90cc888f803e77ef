"""The local keyring: key-encryption keys and the pseudonym secret in one file,
protected by a passphrase.

File (JSON, mode 0600)::

    {"format": "privpipe-keyring", "version": 2, "generation": 7,
     "kdf": {"name": "scrypt", "n": 131072, "r": 8, "p": 1, "length": 32, "salt": b64},
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

Integrity against two commands at once, and against an older copy of the file put back:

* every change (rotate, passphrase change, export) happens under an exclusive lock on
  ``<keyring>.lock`` and re-reads the file under it first, so a rotation never drops a
  KEK another process added meanwhile;
* ``generation`` (authenticated with the rest) goes up by one on every save, and each
  save is recorded, signed, in the witness beside the keyring
  (``privacy.integrity._witness``); a keyring whose generation is older than the witness's
  latest is refused, so an older copy put back cannot make an old KEK active again.
  Files written before generations existed count as generation 0. (Whoever may also
  delete the witness is beyond this check: it only holds while the witness exists);
* a save writes the file and then its witness entry, both under the lock, so only a
  reader that holds the lock sees the two agree. The refusal is therefore decided
  under the lock, on the file as re-read there: :meth:`Keyring.open` reads without it
  (a reader never waits on a rotation) and, when the witness is ahead of what it read,
  reads both again under the lock before saying "an older copy". A save that landed
  in between is no rollback; a copy put back is refused either way;
* the scrypt parameters read from a file are bounded before any derivation, so a file
  cannot make opening it cost unbounded memory or time.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator
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

from privacy._atomic import atomic_path, fsync_dir, open_lock, private_dir
from privacy.crypto._provider import key_id
from privacy.errors import IntegrityError, KeyAccessError, ScopeError
from privacy.integrity import TrustedKey, Witness, decide_trusted_key, signing_key_id, witness_path

__all__ = [
    "KEK_SCOPES",
    "SCOPES",
    "SCOPE_ROLES",
    "KekInfo",
    "Keyring",
    "SCRYPT_N",
    "ScopedKeys",
    "passphrase_weakness",
    "read_public_signing_key",
    "trusted_key",
]

FORMAT = "privpipe-keyring"
SCRYPT_N = 2**17  # 128 MiB of memory per derivation, ~0.5 s here
# What a keyring file may ask of scrypt: checked before any derivation, for creation and
# opening alike (2**14 is the floor, and what tests use for speed).
SCRYPT_BOUNDS = {"n": (2**14, 2**20), "r": (1, 32), "p": (1, 16), "length": (32, 32)}
SALT_BYTES = (16, 64)
LOCK_SUFFIX = ".lock"
_WRAP_LABEL = b"privpipe/kek-wrap/v1"


SCOPES = ("vault", "pseudonym", "published", "audit")
KEK_SCOPES = ("vault", "published")  # the scopes whose keys seal files
SCOPE_ROLES = {
    "vault": "the raw vault and run intermediates: the data custodian's",
    "pseudonym": "the pseudonym secret: the custodian's only",
    "published": "published outputs and models: the analysts'",
    "audit": "the pipeline's audit signing key",
}


@dataclass(frozen=True)
class KekInfo:
    """What may be shown about a key-encryption key: never its bytes. ``scope`` is None
    for a version-1 keyring's key, which seals for every scope."""

    id: str
    created: str
    active: bool
    scope: str | None = None


def _kek_scope(kek_id: str) -> str | None:
    """The scope a KEK id names (``kek-<scope>-<hex>``); None for a version-1 id."""
    parts = kek_id.split("-")
    return parts[1] if len(parts) == 3 and parts[1] in KEK_SCOPES else None


class ScopedKeys:
    """A keyring as the key-encryption provider of one scope: seals under that scope's
    active KEK; opens whatever the keyring holds a key for."""

    def __init__(self, ring: Keyring, scope: str) -> None:
        self.ring = ring
        self.scope = scope

    @property
    def active_kek_id(self) -> str:
        return self.ring.active_kek(self.scope)

    def wrap_key(self, data_key: bytes, associated_data: bytes) -> tuple[str, bytes]:
        return self.ring.wrap_with(self.active_kek_id, data_key, associated_data)

    def unwrap_key(self, kek_id: str, wrapped: bytes, associated_data: bytes) -> bytes:
        return self.ring.unwrap_key(kek_id, wrapped, associated_data)


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
        pseudonym: bytes | None,
        signing: bytes,
        scopes: frozenset[str] = frozenset(SCOPES),
        version: int = 2,
        generation: int = 0,
    ) -> None:
        self.path = path
        self._kdf = kdf
        self._derived = derived
        self._keys = keys
        self._kek_bytes = kek_bytes
        self._pseudonym = pseudonym
        self._signing = Ed25519PrivateKey.from_private_bytes(signing)
        self.scopes = scopes
        self.version = version
        self.generation = generation  # of the file as last read or written here

    # ---------------------------------------------------------------- life cycle

    @classmethod
    def create(cls, path: str | Path, passphrase: str, *, scrypt_n: int = SCRYPT_N) -> Keyring:
        """Make a new keyring file with one active KEK and a pseudonym secret."""
        path = Path(path)
        if not passphrase:
            raise KeyAccessError("the keyring passphrase is empty")
        kdf = _new_kdf(scrypt_n)
        _check_kdf(path, kdf)
        with _locked(path):
            _refuse_existing(path)
            ring = cls(
                path,
                kdf=kdf,
                derived=_derive(path, passphrase, kdf),
                keys=[],
                kek_bytes={},
                pseudonym=secrets.token_bytes(32),
                signing=secrets.token_bytes(32),
            )
            for scope in KEK_SCOPES:
                ring._add_kek(scope)
            ring._save()
        return ring

    @classmethod
    def open(cls, path: str | Path, passphrase: str) -> Keyring:
        """Unlock a keyring file. A wrong passphrase, an edited file, or a generation
        older than the witness recorded (an older copy put back) is refused.

        Read without the lock; when the witness is ahead of the file as read, the file
        and the witness are read again under the lock and judged there (a rotation that
        saved meanwhile is taken in; it is not an older copy)."""
        path = Path(path)
        document = _read_document(path)
        kdf = document.get("kdf")
        derived = _derive(path, passphrase, kdf)
        ring = cls._unseal(path, document, derived)
        try:
            _check_witness(ring)
        except IntegrityError as unlocked:
            with contextlib.ExitStack() as stack:
                try:
                    stack.enter_context(_locked(path))
                except OSError:  # no lock to be had (a read-only folder): judged as read
                    raise unlocked from None
                return cls._open_locked(path, passphrase, kdf, derived)
        return ring

    @classmethod
    @contextlib.contextmanager
    def open_to_change(cls, path: str | Path, passphrase: str) -> Iterator[Keyring]:
        """Unlock a keyring under its lock, held until the block ends: for a command
        that opens the keyring only to change it. It waits for any change under way,
        then opens the file as that change left it, so the check against the witness is
        made on that copy and a passphrase changed meanwhile is simply a wrong one.
        The passphrase is derived before the lock is taken when the file's key
        derivation is still the same under it. Never wait for input inside the block."""
        path = Path(path)
        kdf = _read_document(path).get("kdf")
        derived = _derive(path, passphrase, kdf)
        with _locked(path):
            yield cls._open_locked(path, passphrase, kdf, derived)

    @classmethod
    def _open_locked(cls, path: Path, passphrase: str, kdf: Any, derived: bytes) -> Keyring:
        """Open the file as it stands under the lock (the caller holds it): no save is
        half done, so a generation behind the witness is a copy put back. ``derived``
        is reused while the file's key derivation is still ``kdf``."""
        document = _read_document(path)
        if document.get("kdf") != kdf:
            derived = _derive(path, passphrase, document.get("kdf"))
        ring = cls._unseal(path, document, derived)
        _check_witness(ring)
        return ring

    @classmethod
    def _unseal(cls, path: Path, document: dict[str, Any], derived: bytes) -> Keyring:
        version = document.get("version")
        if version not in (1, 2):
            raise KeyAccessError(f"{path}: keyring version {version} is not supported")
        try:
            sealed = _unb64(document["secrets"])
            nonce = _unb64(document["nonce"])
            keys = [
                KekInfo(k["id"], k["created"], bool(k["active"]), k.get("scope"))
                for k in document["keys"]
            ]
            scopes = frozenset(document["scopes"] if version == 2 else SCOPES)
            generation = document.get("generation", 0)  # 0: written before generations
            if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
                raise ValueError("generation")
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
                kdf=document["kdf"],
                derived=derived,
                keys=keys,
                kek_bytes={k: _unb64(v) for k, v in material["keks"].items()},
                pseudonym=_unb64(material["pseudonym"]) if "pseudonym" in scopes else None,
                signing=_unb64(material["signing"]),
                scopes=scopes,
                version=version,
                generation=generation,
            )
        except (KeyError, TypeError, ValueError):
            raise KeyAccessError(f"{path}: keyring is incomplete (no signing key?)") from None

    def rotate(self, scope: str | None = None) -> list[KekInfo]:
        """A new active KEK for ``scope`` (default: every scope whose keys this keyring
        holds); older KEKs keep opening old files. Under the keyring's lock, after
        re-reading the file: KEKs another process added meanwhile are kept."""
        with _locked(self.path):
            self._reload()
            if self.version == 1:  # one family of keys serves every scope
                infos = [self._add_kek(None)]
            else:
                infos = [self._add_kek(s) for s in self._kek_scopes(scope)]
            self._save()
        return infos

    def rewrap(self, passphrase: str, *, scrypt_n: int = SCRYPT_N) -> None:
        """Seal this keyring's secrets under a new passphrase, with a fresh salt and
        scrypt at ``scrypt_n`` (an older, cheaper file is upgraded). Under the lock,
        after re-reading the file, like :meth:`rotate`."""
        if not passphrase:
            raise KeyAccessError("the keyring's new passphrase is empty")
        kdf = _new_kdf(scrypt_n)
        _check_kdf(self.path, kdf)
        derived = _derive(self.path, passphrase, kdf)
        with _locked(self.path):
            self._reload()
            self._kdf, self._derived = kdf, derived
            self._save()

    def export(
        self, path: str | Path, passphrase: str, scopes: list[str], *, scrypt_n: int | None = None
    ) -> Keyring:
        """A new keyring file holding only ``scopes`` of this one (the KEKs of those
        scopes, the pseudonym secret only with ``pseudonym``, this keyring's audit
        signing key only with ``audit``: otherwise a signing key of its own, so that
        what its holder records is signed, but never as the pipeline). This keyring is
        re-read under its lock first, so the export holds every KEK it has now. Its
        scrypt cost is ``scrypt_n``, by default this keyring's."""
        path = Path(path)
        _refuse_existing(path)
        for scope in scopes:
            self.require(scope)
        if not passphrase:
            raise KeyAccessError("the new keyring's passphrase is empty")
        held = frozenset(scopes)
        if self.version == 1:
            raise KeyAccessError(
                f"{self.path}: a version-1 keyring has no scopes to export; rotate it "
                "with a version-2 keyring (privpipe keys init) first"
            )
        kdf = {**self._kdf, "salt": _b64(secrets.token_bytes(16))}
        if scrypt_n is not None:
            kdf = _new_kdf(scrypt_n)
        derived = _derive(path, passphrase, kdf)
        with _locked(self.path), _locked(path):
            self._reload()
            _refuse_existing(path)
            keys = [k for k in self._keys if k.scope in held]
            ring = Keyring(
                path,
                kdf=kdf,
                derived=derived,
                keys=keys,
                kek_bytes={k.id: self._kek_bytes[k.id] for k in keys},
                pseudonym=self._pseudonym if "pseudonym" in held else None,
                signing=(
                    self._signing.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
                    if "audit" in held
                    else secrets.token_bytes(32)
                ),
                scopes=held,
            )
            ring._save()
        return ring

    # ---------------------------------------------------------------- queries

    def list_keys(self) -> list[KekInfo]:
        return list(self._keys)

    def require(self, scope: str) -> None:
        """Raise :class:`ScopeError` unless this keyring holds ``scope``."""
        if scope not in SCOPES:
            raise KeyAccessError(f"unknown key scope {scope!r} (one of {', '.join(SCOPES)})")
        if scope not in self.scopes:
            raise ScopeError(
                f"{self.path}: this keyring does not hold the {scope!r} scope "
                f"({SCOPE_ROLES[scope]})",
                scope=scope,
                keyring=str(self.path),
            )

    def for_scope(self, scope: str) -> ScopedKeys:
        """This keyring as the provider that seals under ``scope``'s key."""
        if scope not in KEK_SCOPES:
            raise KeyAccessError(f"scope {scope!r} seals no files (one of {KEK_SCOPES})")
        self.require(scope)
        return ScopedKeys(self, scope)

    def for_kek(self, kek_id: str) -> Keyring | ScopedKeys:
        """The provider that seals what ``kek_id`` sealed: its scope's (a re-wrap keeps
        a file in its scope)."""
        scope = _kek_scope(kek_id)
        return self if scope is None else self.for_scope(scope)

    def active_kek(self, scope: str | None) -> str:
        """The id of the active KEK that seals for ``scope``."""
        for k in self._keys:
            if k.active and (k.scope is None or k.scope == scope):
                return k.id
        assert scope is not None
        self.require(scope)
        raise KeyAccessError(f"{self.path}: no active key for the {scope!r} scope")

    @property
    def active_kek_id(self) -> str:
        """The keyring as a provider seals under the vault scope (the custodian's); a
        keyring without it, under the first scope it holds. See :meth:`for_scope`."""
        held = [s for s in KEK_SCOPES if s in self.scopes]
        if not held:
            self.require("published")
        return self.active_kek(held[0])

    def _kek_scopes(self, scope: str | None) -> list[str]:
        if scope is not None:
            self.for_scope(scope)
            return [scope]
        return [s for s in KEK_SCOPES if s in self.scopes]

    # ---------------------------------------------------------------- KeyEncryptionProvider

    def wrap_key(self, data_key: bytes, associated_data: bytes) -> tuple[str, bytes]:
        return self.wrap_with(self.active_kek_id, data_key, associated_data)

    def wrap_with(self, kek: str, data_key: bytes, associated_data: bytes) -> tuple[str, bytes]:
        nonce = secrets.token_bytes(12)
        wrapped = AESGCM(self._kek_bytes[kek]).encrypt(
            nonce, data_key, _WRAP_LABEL + kek.encode() + associated_data
        )
        return kek, nonce + wrapped

    def unwrap_key(self, kek_id: str, wrapped: bytes, associated_data: bytes) -> bytes:
        kek = self._kek_bytes.get(kek_id)
        if kek is None:
            scope = _kek_scope(kek_id)
            if scope is not None and scope not in self.scopes:
                raise ScopeError(
                    f"sealed under the {scope!r} scope's key {kek_id}: keyring {self.path} "
                    f"does not hold that scope ({SCOPE_ROLES[scope]})",
                    scope=scope,
                    keyring=str(self.path),
                )
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
        if self._pseudonym is None:
            self.require("pseudonym")
        assert self._pseudonym is not None
        return self._pseudonym

    @property
    def pseudonym_key_id(self) -> str:
        return key_id(self.pseudonym_key())

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

    @property
    def scrypt_n(self) -> int:
        """The scrypt cost its passphrase is stretched with (recorded by key commands)."""
        return int(self._kdf["n"])

    @property
    def signing_home(self) -> Path:
        return self.path

    @property
    def signing_generation(self) -> int:
        return self.generation

    @property
    def signing_scopes(self) -> frozenset[str]:
        return self.scopes

    # ---------------------------------------------------------------- internals

    def _add_kek(self, scope: str | None) -> KekInfo:
        info = KekInfo(
            id=f"kek-{scope}-{secrets.token_hex(6)}" if scope else f"kek-{secrets.token_hex(6)}",
            created=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            active=True,
            scope=scope,
        )
        self._keys = [
            KekInfo(k.id, k.created, False if k.scope == scope else k.active, k.scope)
            for k in self._keys
        ] + [info]
        self._kek_bytes[info.id] = secrets.token_bytes(32)
        return info

    def _reload(self) -> None:
        """Merge the file as it is now into this keyring (called under the lock): KEKs
        added by another process are taken in, with the file's active flags; a KEK held
        here and missing there is kept. Refused: a file whose passphrase (or key
        derivation) changed since it was opened here, a different keyring in its place,
        and a file older than what this process read or the witness recorded."""
        document = _read_document(self.path)
        if document.get("kdf") != self._kdf:
            raise KeyAccessError(
                f"{self.path}: its passphrase was changed since this process opened it; "
                "open it again with the new passphrase"
            )
        disk = Keyring._unseal(self.path, document, self._derived)
        if (
            disk.signing_public_key != self.signing_public_key
            or disk._pseudonym != self._pseudonym
            or disk.scopes != self.scopes
            or disk.version != self.version
        ):
            raise KeyAccessError(
                f"{self.path}: another keyring now stands in this file (other keys or "
                "scopes than the one opened); nothing saved"
            )
        if disk.generation < self.generation:
            raise IntegrityError(
                f"{self.path}: generation {disk.generation} is older than generation "
                f"{self.generation} this process read (an older copy of the keyring?)"
            )
        _check_witness(disk)
        on_disk = {k.id for k in disk._keys}
        self._keys = disk._keys + [
            KekInfo(k.id, k.created, False, k.scope) for k in self._keys if k.id not in on_disk
        ]
        self._kek_bytes = {**self._kek_bytes, **disk._kek_bytes}
        self.generation = disk.generation

    def _save(self) -> None:
        """Write the file at the next generation (atomically, 0600), then record that
        generation, signed, in the witness beside it. Called under the lock."""

        generation = self.generation + 1
        keys: list[dict[str, Any]] = [
            {"id": k.id, "created": k.created, "active": k.active}
            | ({"scope": k.scope} if k.scope else {})
            for k in self._keys
        ]
        document: dict[str, Any] = {
            "format": FORMAT,
            "version": self.version,
            "generation": generation,
            "kdf": self._kdf,
            "keys": keys,
            "signing": {"id": self.signing_key_id, "public_key": self.signing_public_key.hex()},
        }
        if self.version == 2:
            document["scopes"] = sorted(self.scopes, key=SCOPES.index)
        material: dict[str, Any] = {
            "keks": {k: _b64(v) for k, v in self._kek_bytes.items()},
            "signing": _b64(
                self._signing.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
            ),
        }
        if self._pseudonym is not None:
            document["pseudonym_key_id"] = key_id(self._pseudonym)
            material["pseudonym"] = _b64(self._pseudonym)
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._derived).encrypt(nonce, _canonical(material), _canonical(document))
        document |= {"nonce": _b64(nonce), "secrets": _b64(sealed)}
        with atomic_path(self.path) as tmp:  # 0600, in a folder created 0700
            tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        fsync_dir(self.path.parent)
        self.generation = generation
        Witness(witness_path(self.path), signer=self).record(
            kind="keyring", subject=self.path, generation=generation
        )


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


def trusted_key(
    public_key: str | None = None,
    keyring: str | Path | None = None,
    *,
    signer: str | None = None,
    signers: str | Path | None = None,
    default_signers: str | Path | None = None,
    passphrase: Callable[[Path], str] | None = None,
) -> TrustedKey | None:
    """The key a trail, a ledger or a report is verified under, decided as
    :func:`privacy.integrity.decide_trusted_key` decides, for a keyring file: its public
    key is read without the passphrase, and trusted when ``signer`` pins it, a signers
    file lists it, or ``passphrase(keyring)`` unlocks the keyring (the unlocked key is
    the one trusted). The command line and a notebook decide the same way."""
    return decide_trusted_key(
        public_key,
        Path(keyring) if keyring is not None else None,
        signer=signer,
        signers=Path(signers) if signers is not None else None,
        default_signers=Path(default_signers) if default_signers is not None else None,
        read_key=lambda path: read_public_signing_key(path)[1],
        unlock=(
            None
            if passphrase is None
            else lambda path: Keyring.open(path, passphrase(path)).signing_public_key
        ),
    )


def _public_part(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in ("nonce", "secrets")}


def _read_document(path: Path) -> dict[str, Any]:
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
    return document


def _refuse_existing(path: Path) -> None:
    """A new keyring never replaces a file, nor starts beside another keyring's witness
    (it would never verify under the new key)."""
    if path.exists():
        raise KeyAccessError(f"{path}: a keyring already exists here; not overwritten")
    if witness_path(path).exists():
        raise KeyAccessError(
            f"{path}: the witness of an earlier keyring, {witness_path(path).name}, is "
            "beside it; move that witness away first"
        )


def _check_witness(ring: Keyring) -> None:
    """Refuse a keyring older than the latest generation its witness recorded."""
    witness = witness_path(ring.path)
    if not witness.exists():
        return
    latest = Witness(witness).latest_generation(ring.signing_public_key)
    if latest is not None and ring.generation < latest:
        raise IntegrityError(
            f"{ring.path}: generation {ring.generation} is older than generation {latest} "
            "the witness recorded (an older copy of the keyring?)"
        )


_held = threading.local()  # the lock files this thread holds: taken once, re-entered free


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``<keyring>.lock`` (0600) for one change to the keyring.
    The lock file stays: removing it would let two processes lock different files.

    Re-entrant within a thread (:meth:`Keyring.open_to_change` holds it across a rotation,
    which takes it again): a second ``flock`` on a new descriptor would wait on the
    first for ever."""

    private_dir(path.parent)
    lock = path.with_name(path.name + LOCK_SUFFIX)
    held: set[str] = _held.__dict__.setdefault("paths", set())
    name = os.path.join(os.path.realpath(lock.parent), lock.name)
    if name in held:
        yield
        return
    fd = open_lock(lock)  # O_NOFOLLOW: a link in its place is refused
    try:
        os.fchmod(fd, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.add(name)
        try:
            yield
        finally:
            held.discard(name)
    finally:
        os.close(fd)  # releases the lock


def _new_kdf(scrypt_n: int) -> dict[str, Any]:
    return {
        "name": "scrypt",
        "n": scrypt_n,
        "r": 8,
        "p": 1,
        "length": 32,
        "salt": _b64(secrets.token_bytes(16)),
    }


def _check_kdf(path: Path, kdf: Any) -> bytes:
    """The salt of ``kdf`` once every parameter is within bounds (KeyAccessError naming
    the keyring and the parameter otherwise): nothing is derived before this passes."""
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        name = kdf.get("name") if isinstance(kdf, dict) else None
        raise KeyAccessError(f"{path}: unsupported key derivation {name!r} (scrypt only)")
    for name, (low, high) in SCRYPT_BOUNDS.items():
        value = kdf.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            allowed = f"{low}..{high}" if low != high else str(low)
            raise KeyAccessError(
                f"{path}: keyring scrypt parameter {name} is out of bounds ({allowed})"
            )
    if kdf["n"] & (kdf["n"] - 1):
        raise KeyAccessError(f"{path}: keyring scrypt parameter n is not a power of two")
    try:
        salt = _unb64(kdf["salt"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise KeyAccessError(f"{path}: keyring scrypt parameter salt is not base64") from None
    if not SALT_BYTES[0] <= len(salt) <= SALT_BYTES[1]:
        raise KeyAccessError(
            f"{path}: keyring scrypt parameter salt is {len(salt)} bytes "
            f"(allowed {SALT_BYTES[0]}..{SALT_BYTES[1]})"
        )
    return salt


def _derive(path: Path, passphrase: str, kdf: Any) -> bytes:
    salt = _check_kdf(path, kdf)
    scrypt = Scrypt(salt=salt, length=kdf["length"], n=kdf["n"], r=kdf["r"], p=kdf["p"])
    return scrypt.derive(passphrase.encode("utf-8"))


# A few of the passphrases tried first by anyone guessing (lower case, no spaces).
_COMMON_PASSPHRASES = frozenset(
    {
        "password",
        "password1",
        "password123",
        "passw0rd",
        "passphrase",
        "qwerty",
        "qwertyuiop",
        "qwerty123",
        "letmein",
        "iloveyou",
        "welcome",
        "welcome1",
        "admin",
        "administrator",
        "changeme",
        "secret",
        "monkey",
        "dragon",
        "football",
        "baseball",
        "sunshine",
        "princess",
        "trustno1",
        "abc123",
        "123456",
        "12345678",
        "123456789",
        "1234567890",
        "123456789012",
        "111111111111",
        "000000000000",
        "correcthorsebatterystaple",
        "privpipe",
        "privpipedemoonly",
    }
)


def passphrase_weakness(passphrase: str) -> str | None:
    """Why ``passphrase`` is weak (a phrase safe to show: it never quotes it), or None.

    Weak: fewer than 12 characters, characters of one class only (lower case, upper
    case, digits, others), or one of the passphrases guessed first. A warning, never a
    refusal: the caller decides."""
    folded = "".join(c for c in passphrase.lower() if c.isalnum())
    if folded in _COMMON_PASSPHRASES or passphrase.lower() in _COMMON_PASSPHRASES:
        return "it is one of the passphrases guessed first"
    if len(passphrase) < 12:
        return f"it has fewer than 12 characters ({len(passphrase)})"
    classes = {
        "lower" if c.islower() else "upper" if c.isupper() else "digit" if c.isdigit() else "other"
        for c in passphrase
    }
    if len(classes) == 1:
        return "it uses one kind of character only"
    return None
