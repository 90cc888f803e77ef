"""Shared test set-up.

Prefect's home, the temporary folder and the pseudonym key are set for the whole
session before anything imports Prefect, so every flow in the session shares one
embedded Prefect server (it costs seconds to start) and every byte a run leaves behind
lands in folders the sentinel test can search.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="privpipe-tests-"))
PREFECT_HOME = _SESSION_ROOT / "prefect-home"
WORK_TMP = _SESSION_ROOT / "tmp"
WORK_TMP.mkdir()
os.environ["PREFECT_HOME"] = str(PREFECT_HOME)
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PRIVPIPE_PSEUDONYM_KEY", None)
os.environ.pop("PRIVPIPE_POLICY_SIGNERS", None)  # a developer's own trust list stays out
os.environ.pop("PRIVPIPE_AUDIT_SIGNERS", None)
os.environ.pop("PRIVPIPE_OPERATOR_KEY", None)  # audit records name no operator
tempfile.tempdir = str(WORK_TMP)  # the run's private workspace is created here

# One keyring for the session, with fast scrypt settings (the default costs ~0.5 s a
# derivation); commands find it through the same variables a user would set.
KEYRING = _SESSION_ROOT / "keys" / "keyring.json"
PASSPHRASE = secrets.token_urlsafe(16)
os.environ["PRIVPIPE_KEYRING"] = str(KEYRING)
os.environ["PRIVPIPE_PASSPHRASE"] = PASSPHRASE
# The privacy budget ledger of the session: never the user's ~/.privpipe/ledger.json.
os.environ["PRIVPIPE_LEDGER"] = str(_SESSION_ROOT / "ledger.json")


def _make_keyring() -> None:
    from privacy.crypto import Keyring

    Keyring.create(KEYRING, PASSPHRASE, scrypt_n=2**14)


_make_keyring()

ROOT = Path(__file__).resolve().parent.parent
DEMO_POLICY = ROOT / "policies" / "demo.yaml"


@pytest.fixture(scope="session")
def session_root() -> Path:
    return _SESSION_ROOT


@pytest.fixture(scope="session")
def demo_policy_path() -> Path:
    return DEMO_POLICY


@pytest.fixture(scope="session")
def demo_policy():  # type: ignore[no-untyped-def]
    from privacy.policy import load_policy

    return load_policy(DEMO_POLICY)


@pytest.fixture(scope="session")
def people():  # type: ignore[no-untyped-def]
    """500 synthetic people (a frame)."""
    from privacy.synth import synthesize

    return synthesize(500, seed=11)


@pytest.fixture
def people_csv(tmp_path: Path, people) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    path = tmp_path / "people.csv"
    people.write_csv(path)
    yield path


@pytest.fixture(scope="session")
def session_keyring():  # type: ignore[no-untyped-def]
    from privacy.crypto import Keyring

    return Keyring.open(KEYRING, PASSPHRASE)


@pytest.fixture
def key():  # type: ignore[no-untyped-def]
    from privacy.crypto import StaticKeyProvider

    return StaticKeyProvider(bytes(range(32)))


@pytest.fixture
def keyring(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh keyring in the test's folder."""
    from privacy.crypto import Keyring
    from tests._keys import FAST_SCRYPT
    from tests._keys import PASSPHRASE as TEST_PASSPHRASE

    return Keyring.create(tmp_path / "ring.json", TEST_PASSPHRASE, scrypt_n=FAST_SCRYPT)
