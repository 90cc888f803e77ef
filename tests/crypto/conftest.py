from __future__ import annotations

from pathlib import Path

import pytest

from privacy.crypto import Keyring

PASSPHRASE = "correct horse battery staple"
FAST_SCRYPT = 2**10  # tests only: the real default is 2**15


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return Keyring.create(tmp_path / "ring.json", PASSPHRASE, scrypt_n=FAST_SCRYPT)
