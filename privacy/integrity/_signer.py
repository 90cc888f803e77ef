"""Who signs: the signer interface every signed file is written through, and key ids.

A :class:`Signer` holds an Ed25519 private key it never hands out (the local keyring is
one; a cloud KMS or an HSM could be another). Besides signing it states what the
integrity layer needs to know of it, so that nothing below the keyring reads the
keyring's attributes: where its witness lives, which generation it is, and which scopes
it holds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["Signer", "signing_key_id"]


@runtime_checkable
class Signer(Protocol):
    """Signs checkpoints, witness entries and policies (Ed25519)."""

    def sign(self, message: bytes) -> bytes: ...

    @property
    def signing_key_id(self) -> str: ...

    @property
    def signing_public_key(self) -> bytes: ...

    @property
    def signing_home(self) -> Path | None:
        """The file the key lives in (its witness lies beside it); None for a key held
        in memory only, which has no witness."""
        ...

    @property
    def signing_generation(self) -> int | None:
        """The key file's generation, recorded in the witness so that an older copy of
        it is refused; None where there is none."""
        ...

    @property
    def signing_scopes(self) -> frozenset[str] | None:
        """The powers the key holds (``audit``, ``vault``, …); None: every power."""
        ...


def signing_key_id(public_key: bytes) -> str:
    """A short, public name of an Ed25519 public key: ``sig-`` and 16 hex digits."""
    return "sig-" + hashlib.sha256(public_key).hexdigest()[:16]
