"""Shared test set-up.

Prefect's home, the temporary folder and the pseudonym key are set for the whole
session before anything imports Prefect, so every flow in the session shares one
embedded Prefect server (it costs seconds to start) and every byte a run leaves behind
lands in folders the sentinel test can search.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="privpipe-tests-"))
PREFECT_HOME = _SESSION_ROOT / "prefect-home"
WORK_TMP = _SESSION_ROOT / "tmp"
WORK_TMP.mkdir()
os.environ["PREFECT_HOME"] = str(PREFECT_HOME)
os.environ.pop("PREFECT_API_URL", None)
# a developer's own `privpipe server start` stays out: flow commands would report to it
os.environ["PRIVPIPE_HOME"] = str(_SESSION_ROOT / "privpipe-home")
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
def model_only_policy_path() -> Path:
    """The demo policy without its DP releases (synthetic:, statistics:): for tests of
    `privpipe run` that are about the sanitize output and the model only (each release
    adds a flow and tens of seconds)."""
    import yaml

    data = yaml.safe_load(DEMO_POLICY.read_text())
    for release in ("synthetic", "statistics"):
        data[release]["enabled"] = False
    path = _SESSION_ROOT / "demo-model-only.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


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
def postgres():  # type: ignore[no-untyped-def]
    """One PostgreSQL cluster for the session (Debian's postgresql, which .ci/run
    installs), on a loopback port, stopped by its PID at the end."""
    from tests._postgres import find_bin, postgres_cluster

    if find_bin() is None:  # a real server is part of the suite, not optional
        pytest.fail("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def s3():  # type: ignore[no-untyped-def]
    """One S3-compatible server (moto's) for the session, its endpoint and test keys in
    the environment while the session lasts (where botocore reads them)."""
    from tests._objectstore import object_store  # moto: a dev dependency

    with object_store() as store:
        before = {k: os.environ.get(k) for k in store.env()}
        os.environ.update(store.env())
        try:
            yield store
        finally:
            for key, value in before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="session")
def session_keyring():  # type: ignore[no-untyped-def]
    from privacy.crypto import Keyring

    return Keyring.open(KEYRING, PASSPHRASE)


@pytest.fixture
def key():  # type: ignore[no-untyped-def]
    from privacy.crypto import StaticKeyProvider

    return StaticKeyProvider(bytes(range(32)))


@pytest.fixture
def ring(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh keyring in a folder of its own (``keys/``, its witness beside it), apart
    from the test's output folders."""
    from privacy.crypto import Keyring
    from tests._keys import FAST_SCRYPT
    from tests._keys import PASSPHRASE as TEST_PASSPHRASE

    return Keyring.create(tmp_path / "keys" / "ring.json", TEST_PASSPHRASE, scrypt_n=FAST_SCRYPT)


@pytest.fixture
def keyring(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh keyring in the test's folder."""
    from privacy.crypto import Keyring
    from tests._keys import FAST_SCRYPT
    from tests._keys import PASSPHRASE as TEST_PASSPHRASE

    return Keyring.create(tmp_path / "ring.json", TEST_PASSPHRASE, scrypt_n=FAST_SCRYPT)


# ---------------------------------------------------------------- the prefect mark
# A test that starts or talks to Prefect's temporary server carries the ``prefect`` mark,
# so ``-m "not prefect"`` starts no Prefect. A flow command uses privpipe's temporary
# server (flows._prefect_env, counted in ``uses``); a Prefect client outside one calls
# ``SubprocessASGIServer.start`` (a no-op once it runs). A use or a call from the test's
# own thread while an unmarked test runs, or a server newly running after one, fails it.
_UNMARKED_STARTS: list[str] = []
_RUNNING: dict[str, object] = {"item": None}


def _temporary_uses() -> int:
    module = sys.modules.get("flows._prefect_env")
    return int(getattr(getattr(module, "_Temporary", None), "uses", 0))


def _servers_running() -> bool:
    module = sys.modules.get("prefect.server.api.server")
    instances = getattr(getattr(module, "SubprocessASGIServer", None), "_instances", {})
    ours = getattr(sys.modules.get("flows._prefect_env"), "_Temporary", None)
    process = getattr(ours, "process", None)
    return any(getattr(s, "running", False) for s in instances.values()) or (
        process is not None and process.poll() is None
    )


def _watch_prefect_server() -> None:
    module = sys.modules.get("prefect.server.api.server")
    server = getattr(module, "SubprocessASGIServer", None)
    if server is None or getattr(server.start, "_watched", False):
        return
    start = server.start

    def watched(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        item = _RUNNING["item"]
        if item is not None and threading.current_thread() is threading.main_thread():
            _UNMARKED_STARTS.append(str(item))
        return start(self, *args, **kwargs)

    watched._watched = True  # type: ignore[attr-defined]
    server.start = watched


def _reset_prefect_api_url() -> None:
    """A flow command leaves PREFECT_API_URL at the server it used (its process exits
    soon after). In this process each test starts from the session's setting (unset),
    before its fixtures run, so that the processes a test starts never inherit a server
    an earlier test (or module fixture) used; Prefect's settings follow."""
    if os.environ.pop("PREFECT_API_URL", None) is None:
        return
    refresh = getattr(sys.modules.get("prefect.context"), "refresh_global_settings_context", None)
    if refresh is not None:
        refresh()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _reset_prefect_api_url()
    _watch_prefect_server()
    _UNMARKED_STARTS.clear()
    marked = item.get_closest_marker("prefect") is not None
    _RUNNING["item"] = None if marked else item.nodeid
    _RUNNING["before"] = _servers_running()
    _RUNNING["uses"] = _temporary_uses()


@pytest.fixture(autouse=True)
def _prefect_needs_its_mark(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    unmarked = _RUNNING["item"] is not None
    started = (_servers_running() and not _RUNNING["before"]) or _temporary_uses() > int(
        _RUNNING["uses"]  # type: ignore[call-overload]
    )
    _RUNNING["item"] = None
    _watch_prefect_server()
    if unmarked and (_UNMARKED_STARTS or started):
        pytest.fail(
            f"{request.node.nodeid} starts Prefect's temporary server (it runs a flow or a "
            "Prefect client) without @pytest.mark.prefect; mark it",
            pytrace=False,
        )
