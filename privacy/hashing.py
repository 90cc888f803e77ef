"""File hashing, kept free of heavy imports (the key commands use it).

Two kinds of digest, for two kinds of content:

- :func:`sha256_file`, plain SHA-256, for what a reviewer must be able to recompute
  from the file alone: sanitized and published outputs, sealed ciphertext.
- :class:`ContentKey` (HMAC-SHA256 under a purpose-bound subkey) for RAW content, the
  input before sanitization. A plain hash of raw content is an oracle: a one-line file
  holding one SSN has a billion candidates, and hashing them all takes minutes. Every
  digest of raw content that an audit record, a manifest, a Prefect artifact or a
  sealed header's associated data holds is keyed, and named so (``input_hmac``,
  ``hmac_sha256`` beside the ``key_id``). A sealed input is digested by its
  plaintext, so the same data sealed twice is known as the same data.

The content key is ``derive_subkey(pseudonym secret, "content-hash")``: the pseudonym
secret is never rotated (that would break every join on existing tokens), so the same
input gives the same keyed digest across KEK rotations and runs, which is what
``schedule.skip_unchanged`` compares. Where the policy names ``keys.pseudonym_key_env``
the secret is that variable's key (:class:`~privacy.crypto.EnvKeyProvider`): it must
stay as stable as the keyring's would. A keyring without the ``pseudonym`` scope, and
no such variable, cannot key the digest, and a run is then refused (ScopeError) rather
than record an unkeyed one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privacy.crypto import KeyProvider, derive_subkey, is_sealed, key_id, open_sealed
from privacy.errors import ScopeError

__all__ = ["CONTENT_HASH_PURPOSE", "ContentKey", "content_key", "sha256_file"]

CONTENT_HASH_PURPOSE = "content-hash"
_CHUNK = 1 << 20


def sha256_file(path: Path, *, chunk: int = _CHUNK) -> str:
    """SHA-256 (hex) of a file's bytes, read in bounded memory. Only for content anyone
    may see (published outputs, ciphertext): see :class:`ContentKey` for raw input."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ContentKey:
    """The key behind keyed digests of raw content, and its public id.

    ``key_id`` is :func:`privacy.crypto.key_id` of the subkey: recorded beside every
    digest, so a reader knows which key made it, and a digest under another key is
    never mistaken for a changed input's (or an unchanged one's)."""

    secret: bytes = field(repr=False)
    key_id: str

    @classmethod
    def from_master(cls, master: bytes) -> ContentKey:
        """The content key under a pseudonym secret (never the secret itself)."""
        subkey = derive_subkey(master, CONTENT_HASH_PURPOSE)
        return cls(subkey, key_id(subkey))

    def file_digest(self, path: Path, *, chunk: int = _CHUNK) -> str:
        """HMAC-SHA256 (hex) of a file's bytes under this key, in bounded memory."""
        mac = hmac.new(self.secret, digestmod=hashlib.sha256)
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(chunk), b""):
                mac.update(block)
        return mac.hexdigest()

    def mac(self) -> Any:
        """A fresh HMAC-SHA256 under this key, to feed while streaming (``update``);
        its ``hexdigest()`` is what :meth:`file_digest` gives for the same bytes."""
        return hmac.new(self.secret, digestmod=hashlib.sha256)

    def blocks_digest(self, blocks: Iterable[bytes]) -> str:
        """HMAC-SHA256 (hex) of the concatenated ``blocks`` under this key."""
        mac = hmac.new(self.secret, digestmod=hashlib.sha256)
        for block in blocks:
            mac.update(block)
        return mac.hexdigest()

    def record(self, path: Path, keys: Any = None) -> dict[str, str]:
        """``{"hmac_sha256": ..., "key_id": ...}``: how manifests record raw content.

        Of the content, not the container: a sealed file (with ``keys`` to open it) is
        digested by its plaintext, so the same raw data sealed twice (a fresh data key
        and nonce each time) is known as the same data."""
        if keys is not None and is_sealed(path):
            with path.open("rb") as handle:
                digest = self.blocks_digest(open_sealed(handle, keys, name=str(path)))
        else:
            digest = self.file_digest(path)
        return {"hmac_sha256": digest, "key_id": self.key_id}


def content_key(provider: KeyProvider) -> ContentKey:
    """The content key of a run, from its pseudonym provider (the keyring, or the
    policy's ``keys.pseudonym_key_env``).

    Raises :class:`ScopeError` for a keyring without the pseudonym scope (saying how to
    go on), and the provider's own :class:`KeyAccessError` for an unset variable."""
    try:
        master = provider.pseudonym_key()
    except ScopeError as exc:
        raise ScopeError(
            f"{exc.keyring or 'keyring'}: the keyed digest of raw input needs the "
            "pseudonym secret, and this keyring does not hold the 'pseudonym' scope: use "
            "the custodian's keyring, or name a key in the policy's keys.pseudonym_key_env",
            scope=exc.scope or "pseudonym",
            keyring=exc.keyring,
        ) from None
    return ContentKey.from_master(master)
