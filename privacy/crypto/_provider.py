"""The key-provider boundary.

Stages ask a :class:`KeyProvider` for key material by purpose and never see where it
lives. :class:`EnvKeyProvider` reads the pseudonym key from an environment variable;
a keyring-file provider and cloud KMS providers plug in behind the same protocol.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Protocol, runtime_checkable

from privacy.errors import KeyAccessError

__all__ = ["EnvKeyProvider", "KeyProvider", "StaticKeyProvider", "derive_subkey"]

MIN_KEY_BYTES = 32


@runtime_checkable
class KeyProvider(Protocol):
    """Where stages get key material. Implementations must never log key bytes."""

    def pseudonym_key(self) -> bytes:
        """The secret behind pseudonym tokens and date shifts (at least 32 bytes)."""
        ...

    @property
    def pseudonym_key_id(self) -> str:
        """A public, stable identifier of that key, safe to record in audit trails."""
        ...


def derive_subkey(master: bytes, purpose: str) -> bytes:
    """A purpose-bound key from the master (HMAC-SHA256 as a PRF), so that pseudonym
    tokens and date offsets never reuse the same key."""
    return hmac.new(master, f"privpipe/v1/{purpose}".encode(), hashlib.sha256).digest()


def _key_id(key: bytes) -> str:
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
        return _key_id(self._key)


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
                "`python -c 'import secrets; print(secrets.token_hex(32))'`"
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
        return _key_id(self.pseudonym_key())
