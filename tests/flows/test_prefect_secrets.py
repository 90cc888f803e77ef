"""Prefect's temporary server never holds the keyring passphrase.

The review's attack: ``privpipe sanitize --task-runner dask`` put PRIVPIPE_PASSPHRASE in
the process environment before starting Prefect's temporary server, which copied it
(``/proc/<server pid>/environ``, readable by anyone who can ptrace or read the
server's memory, and by every process the server starts). The server needs no key:
it is started with the secret variables withheld; the Dask workers, which unlock the
keyring, still get the passphrase (the run succeeds).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._helpers.processes import ROOT, SERVER_APP, descendants, server_environs

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="Linux /proc")


@pytest.mark.prefect
@pytest.mark.parametrize("runner", ["dask", "threads"])
def test_attack_the_passphrase_in_prefects_server_environment(
    tmp_path: Path, people_csv: Path, demo_policy_path: Path, runner: str
) -> None:
    """Dask: the CLI itself exported it; threads: the user's own variable, inherited."""
    passphrase = os.environ["PRIVPIPE_PASSPHRASE"]  # the session keyring's
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    command = [
        sys.executable,
        "-m",
        "flows.cli",
        "-q",
        "sanitize",
        str(people_csv),
        "--policy",
        str(demo_policy_path),
        "--out",
        str(tmp_path / "out"),
        "--task-runner",
        runner,
        *(["--dask-workers", "1"] if runner == "dask" else []),
    ]
    code, err, environs = server_environs(command, env)
    assert code == 0, err[-3000:]  # the workers unlocked the keyring
    assert environs, "no Prefect server process was seen"
    for environ in environs:
        names = {item.split(b"=", 1)[0] for item in environ.split(b"\0")}
        assert b"PRIVPIPE_PASSPHRASE" not in names
        assert passphrase.encode() not in environ
        assert b"PREFECT__SERVER_EPHEMERAL=1" in environ.split(b"\0")  # it is the server


def test_a_database_uri_with_a_password_is_withheld_whatever_its_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """input.uri_env may name any variable: a URL with a password in it never reaches a
    Prefect server's environment (serve's, `privpipe server start`'s, the temporary one),
    however the password is spelled (a raw '/' or '@' in it included)."""
    from flows.cli.serve import server_env
    from privacy.childenv import child_environment, is_secret

    uri = "postgresql://analyst:s3cr3t-pw@db.internal:5432/crm"
    assert is_secret("CRM_DB", uri) and is_secret("X", "s3://key:secret@bucket/k")
    assert is_secret("CRM_DB", "postgresql://u:pa/ss@db/crm")  # '/' in the password
    assert is_secret("PRIVPIPE_PASSPHRASE", "anything")
    assert is_secret("PREFECT_API_KEY", "pnu_x") and is_secret("MY_API_TOKEN", "t")
    assert not is_secret("CRM_HOST", "postgresql://db.internal:5432/crm")  # no password
    assert not is_secret("HOME", "/root")
    monkeypatch.setenv("CRM_DB", uri)
    assert "CRM_DB" not in server_env() and uri not in server_env().values()
    # allowed by name, dropped as a secret by its value
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", uri)
    assert "PREFECT_API_DATABASE_CONNECTION_URL" not in child_environment()
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert child_environment()["LANG"] == "C.UTF-8"  # what a child needs still passes


# Every kind of secret a user's shell may hold: none reaches a process privpipe starts.
PLANTED = {
    "AWS_ACCESS_KEY_ID": "AKIAZZPLANTED0000001",
    "AWS_SECRET_ACCESS_KEY": "zzplanted-aws-secret-access-key",
    "AWS_SESSION_TOKEN": "zzplanted-aws-session-token",
    "PGPASSWORD": "zzplanted-pgpassword",
    "PGUSER": "zzplanted-pguser",
    "CRM_DB_URI": "postgresql://crm:zzplanted/pw@db.internal:5432/crm",  # '/' in it
    "MY_SERVICE_PASSWORD": "zzplanted-service-password",
    "GITHUB_TOKEN": "zzplanted-github-token",
    "OPENAI_API_KEY": "zzplanted-openai-key",
    "DATABASE_URL": "zzplanted-database-url",
}


def _watch_descendants(command: list[str], env: dict[str, str]) -> tuple[int, str, dict]:  # type: ignore[type-arg]
    """Run ``command``; while it runs, read every descendant's environment, keeping the
    last read of each (a forked child shows its parent's environment until it execs)."""
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    seen: dict[int, tuple[bytes, bytes]] = {}
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline:
        for pid in descendants(process.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                seen[pid] = (cmdline, Path(f"/proc/{pid}/environ").read_bytes())
            except OSError:
                continue  # gone meanwhile
        time.sleep(0.02)
    _, err = process.communicate(timeout=60)
    return process.returncode, err.decode(errors="replace"), seen


@pytest.mark.prefect
@pytest.mark.slow
def test_attack_secrets_in_the_environment_of_every_descendant(
    tmp_path: Path, people_csv: Path, demo_policy_path: Path
) -> None:
    """A sanitize on Dask (Prefect's temporary server, a LocalCluster's nanny and
    worker processes, multiprocessing's resource tracker): no process it starts holds
    a planted credential; only the Dask workers, which unlock the keyring, hold the
    passphrase, and the server does not."""
    env = {**os.environ, **PLANTED, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "flows.cli", "-q", "sanitize", str(people_csv)]
    command += ["--policy", str(demo_policy_path), "--out", str(tmp_path / "out")]
    command += ["--task-runner", "dask", "--dask-workers", "1"]
    code, err, seen = _watch_descendants(command, env)
    assert code == 0, err[-3000:]
    assert any(SERVER_APP in cmdline for cmdline, _ in seen.values()), "no server seen"
    assert len(seen) >= 3, [c[:80] for c, _ in seen.values()]  # server, cluster's children
    passphrase = os.environ["PRIVPIPE_PASSPHRASE"].encode()
    for cmdline, environ in seen.values():
        held = [name for name, value in PLANTED.items() if value.encode() in environ]
        assert held == [], (cmdline[:200], held)
        if SERVER_APP in cmdline:
            assert passphrase not in environ


def _own_environ() -> bytes:
    return Path(f"/proc/{os.getpid()}/environ").read_bytes()


def test_detection_and_ddp_workers_start_with_the_allowed_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The spawn context the detection pool and the DDP workers are made from: what the
    worker was started with (/proc/PID/environ) holds no planted secret and no
    passphrase, though this process's os.environ still does; `privpipe server start`'s
    environment neither."""
    from concurrent.futures import ProcessPoolExecutor

    from flows import _server
    from privacy.childenv import spawn_context

    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    with ProcessPoolExecutor(1, mp_context=spawn_context()) as pool:
        environ = pool.submit(_own_environ).result(timeout=120)
    assert b"PATH=" in environ  # it is an environment
    assert [n for n, v in PLANTED.items() if v.encode() in environ] == []
    assert os.environ["PRIVPIPE_PASSPHRASE"].encode() not in environ
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == PLANTED["AWS_SECRET_ACCESS_KEY"]  # untouched
    served = _server._server_env(tmp_path, 4200)
    assert [n for n, v in PLANTED.items() if v in served.values()] == []
    assert "PRIVPIPE_PASSPHRASE" not in served


def test_the_detection_pool_s_workers_hold_no_planted_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The free-text detection pool itself (its workers load Presidio and spaCy)."""
    from privacy.detect import _text

    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    pool = _text._pool(1)
    try:
        environ = pool.submit(_own_environ).result(timeout=300)
    finally:
        _text._pools.pop(1, None)
        pool.shutdown()
    assert b"PATH=" in environ
    assert [n for n, v in PLANTED.items() if v.encode() in environ] == []
    assert os.environ["PRIVPIPE_PASSPHRASE"].encode() not in environ
