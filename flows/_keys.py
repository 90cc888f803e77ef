"""Unlocked keyrings for the flows of this process.

The CLI unlocks a keyring once (asking for the passphrase if it must) and registers it
here; tasks look it up by path. Neither the passphrase nor any key is ever a flow or
task parameter, so none reaches Prefect's database. A task that finds nothing
registered (a worker process) unlocks with PRIVPIPE_PASSPHRASE.
"""

from __future__ import annotations

import os
from pathlib import Path

from privacy.crypto import Keyring
from privacy.errors import KeyAccessError
from privacy.policy import Policy

__all__ = [
    "PASSPHRASE_ENV",
    "keyring",
    "register",
    "registered",
    "resolve_keyring_path",
]

PASSPHRASE_ENV = "PRIVPIPE_PASSPHRASE"
_unlocked: dict[Path, Keyring] = {}


def register(ring: Keyring) -> None:
    _unlocked[ring.path.resolve()] = ring


def registered(path: str | Path) -> Keyring | None:
    """The keyring unlocked in this process at ``path``, if any."""
    return _unlocked.get(Path(path).resolve()) if path else None


def keyring(path: str | Path) -> Keyring:
    resolved = Path(path).resolve()
    if resolved not in _unlocked:
        passphrase = os.environ.get(PASSPHRASE_ENV)
        if not passphrase:
            raise KeyAccessError(f"{path}: keyring is locked: set {PASSPHRASE_ENV}")
        _unlocked[resolved] = Keyring.open(resolved, passphrase)
    return _unlocked[resolved]


def resolve_keyring_path(option: Path | None, policy: Policy) -> Path:
    """--keyring (or PRIVPIPE_KEYRING), else the policy's keys.keyring; one is required."""
    if option is not None:
        return option
    if policy.keys.keyring is not None:
        return policy.resolve_path(policy.keys.keyring)
    raise KeyAccessError(
        "a keyring is needed (the raw vault copy, intermediates and output are sealed): "
        "pass --keyring FILE, set PRIVPIPE_KEYRING, or set keys.keyring in the policy; "
        "create one with `privpipe keys init --keyring FILE`"
    )
