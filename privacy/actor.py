"""Who runs privpipe: the ``actor`` of every audit record.

``{"user", "host"}`` always: the OS user and the host name. ``"operator"`` too where
``PRIVPIPE_OPERATOR_KEY`` is set: the key id (``sig-`` and 16 hex digits, the first 64
bits of the SHA-256 of an Ed25519 public key, as ``privpipe keys list`` prints a
keyring's signing key id) of the person operating the pipeline. The variable holds:

- a key id, ``sig-0123456789abcdef``;
- an Ed25519 public key, 64 hex digits;
- or the path of a file: a privpipe keyring (its public signing key is read, no
  passphrase needed) or a text file holding a key id or a public key.

Like the user name, the operator is what the environment declares, not a proof: the
trail's checkpoints are signed by the keyring's key, not by the operator's. Only a key
id is recorded, never a key. Kept free of heavy imports: the CLI checks the variable
before any command runs, so a malformed value stops the command before it does anything.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import socket
from pathlib import Path

from privacy.errors import KeyAccessError

__all__ = ["OPERATOR_ENV", "actor", "operator_key_id"]

OPERATOR_ENV = "PRIVPIPE_OPERATOR_KEY"
_KEY_ID = re.compile(r"sig-[0-9a-f]{16}")
_PUBLIC_KEY = re.compile(r"[0-9a-fA-F]{64}")
_EXPECTED = "a key id (sig-…), an Ed25519 public key (64 hex digits)"


def actor() -> dict[str, str]:
    """Who runs this process: the OS user and host, and the operator's key id where
    ``PRIVPIPE_OPERATOR_KEY`` is set (KeyAccessError, naming it, if it is malformed)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    who = {"user": user, "host": socket.gethostname()}
    value = os.environ.get(OPERATOR_ENV, "").strip()
    if value:
        who["operator"] = operator_key_id(value)
    return who


def operator_key_id(value: str) -> str:
    """The key id a ``PRIVPIPE_OPERATOR_KEY`` value names (see the module docstring).

    Error messages name the variable and, for a file, its path; never the value itself
    (someone may paste a secret where a public key belongs)."""
    value = value.strip()
    found = _from_text(value)
    if found is not None:
        return found
    path = Path(value).expanduser()
    if not path.is_file():
        raise KeyAccessError(f"{OPERATOR_ENV}: not {_EXPECTED}, or the path of an existing file")
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise KeyAccessError(f"{OPERATOR_ENV}: {path}: cannot be read ({reason})") from None
    found = _from_text(text) if "\n" not in text else None
    if found is None:
        found = _from_keyring(text)
    if found is None:
        raise KeyAccessError(f"{OPERATOR_ENV}: {path}: holds neither {_EXPECTED} nor a keyring")
    return found


def _from_text(text: str) -> str | None:
    if _KEY_ID.fullmatch(text):
        return text
    if _PUBLIC_KEY.fullmatch(text):
        return _public_key_id(bytes.fromhex(text))
    return None


def _from_keyring(text: str) -> str | None:
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("format") != "privpipe-keyring":
        return None
    try:
        public = bytes.fromhex(document["signing"]["public_key"])
    except (ValueError, KeyError, TypeError):
        return None
    return _public_key_id(public) if len(public) == 32 else None


def _public_key_id(public_key: bytes) -> str:
    """``sig-`` and the first 16 hex digits of the SHA-256 of an Ed25519 public key
    (the same id ``privacy.crypto.signing_key_id`` gives)."""
    return "sig-" + hashlib.sha256(public_key).hexdigest()[:16]
