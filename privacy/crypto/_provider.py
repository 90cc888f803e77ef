"""The key-provider boundaries.

Two roles, two protocols. A :class:`KeyEncryptionProvider` wraps and unwraps per-file
data keys under key-encryption keys (KEKs) it never hands out: the local keyring
implements it, and so can a cloud KMS (AWS KMS ``Encrypt``/``Decrypt``, GCP KMS, Vault
transit) without any change to the sealed-file code. A :class:`KeyProvider` supplies the
pseudonym secret behind keyed tokens and date shifts.

:class:`EnvKeyProvider` reads a pseudonym key from the environment, for runs without a
keyring; :class:`StaticKeyProvider` holds bytes already in hand (tests, embedding).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Protocol, runtime_checkable

from privacy.errors import KeyAccessError

__all__ = [
    "EnvKeyProvider",
    "pseudonym_provider",
    "KeyEncryptionProvider",
    "KeyProvider",
    "MIN_KEY_BYTES",
    "StaticKeyProvider",
    "derive_subkey",
    "key_id",
]

MIN_KEY_BYTES = 32


@runtime_checkable
class KeyProvider(Protocol):
    """Where stages get the pseudonym secret. Implementations never log key bytes."""

    def pseudonym_key(self) -> bytes:
        """The secret behind pseudonym tokens and date shifts (at least 32 bytes)."""
        ...

    @property
    def pseudonym_key_id(self) -> str:
        """A public, stable identifier of that key, safe to record in audit trails."""
        ...


@runtime_checkable
class KeyEncryptionProvider(Protocol):
    """Wraps data keys under key-encryption keys that never leave the provider."""

    @property
    def active_kek_id(self) -> str:
        """The KEK that new data keys are wrapped under."""
        ...

    def wrap_key(self, data_key: bytes, associated_data: bytes) -> tuple[str, bytes]:
        """Wrap ``data_key`` under the active KEK; returns (kek id, wrapped key)."""
        ...

    def unwrap_key(self, kek_id: str, wrapped: bytes, associated_data: bytes) -> bytes:
        """Unwrap a data key. Raises KeyAccessError for an unknown KEK and
        IntegrityError when the wrapped key or its associated data was altered."""
        ...


def derive_subkey(master: bytes, purpose: str) -> bytes:
    """A purpose-bound key from the master (HMAC-SHA256 as a PRF), so that pseudonym
    tokens and date offsets never reuse the same key."""
    return hmac.new(master, f"privpipe/v1/{purpose}".encode(), hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    """A one-way identifier of a secret key, safe to publish."""
    return "k-" + derive_subkey(key, "key-id").hex()[:16]


class StaticKeyProvider:
    """A provider over key bytes already in hand (tests, and callers embedding privpipe)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise KeyAccessError(f"pseudonym key is {len(key)} bytes; need {MIN_KEY_BYTES}")
        self._key = key

    def pseudonym_key(self) -> bytes:
        return self._key

    @property
    def pseudonym_key_id(self) -> str:
        return key_id(self._key)


class EnvKeyProvider:
    """Reads a hex-encoded pseudonym key from an environment variable."""

    def __init__(self, variable: str = "PRIVPIPE_PSEUDONYM_KEY") -> None:
        self.variable = variable

    def pseudonym_key(self) -> bytes:
        value = os.environ.get(self.variable, "").strip()
        if not value:
            raise KeyAccessError(
                f"{self.variable} is not set (policy keys.pseudonym_key_env): set it to "
                f"{2 * MIN_KEY_BYTES} hex characters, for example from "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`, "
                "or use a keyring (keys.keyring / --keyring)"
            )
        try:
            key = bytes.fromhex(value)
        except ValueError:
            raise KeyAccessError(f"{self.variable} is not a hex string") from None
        if len(key) < MIN_KEY_BYTES:
            raise KeyAccessError(
                f"{self.variable} holds {len(key)} bytes; a pseudonym key needs "
                f"at least {MIN_KEY_BYTES} ({2 * MIN_KEY_BYTES} hex characters)"
            )
        return key

    @property
    def pseudonym_key_id(self) -> str:
        return key_id(self.pseudonym_key())


def pseudonym_provider(keyring: KeyProvider, env_variable: str | None = None) -> KeyProvider:
    """Where a run's pseudonym secret comes from: the environment variable a policy
    names (``keys.pseudonym_key_env``) when it names one, else the keyring."""
    return EnvKeyProvider(env_variable) if env_variable else keyring
