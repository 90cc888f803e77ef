"""File hashing, kept free of heavy imports (the key commands use it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["sha256_file"]


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's bytes, read in bounded memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
