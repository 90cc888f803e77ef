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

ROOT = Path(__file__).resolve().parent.parent
SERVER_APP = b"prefect.server.api.server:create_app"

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="Linux /proc")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found.append(int(entry.name))
    return found


def _descendants(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        for child in _children(todo.pop()):
            seen.append(child)
            todo.append(child)
    return seen


def _server_environs(command: list[str], env: dict[str, str]) -> tuple[int, str, list[bytes]]:
    """Run ``command``; while it runs, read the environment of each Prefect server
    process it starts (once the server has exec'd: before, a forked child shows its
    parent's environment)."""
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    environs: dict[int, bytes] = {}
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline:
        for pid in _descendants(process.pid):
            if pid in environs:
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if SERVER_APP in cmdline:
                    environs[pid] = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue  # gone meanwhile
        time.sleep(0.05)
    _, err = process.communicate(timeout=60)
    return process.returncode, err.decode(errors="replace"), list(environs.values())


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
    code, err, environs = _server_environs(command, env)
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
    Prefect server's environment (serve's, `privpipe server start`'s, the temporary one)."""
    from flows._prefect_env import is_secret
    from flows.cli.serve import server_env

    uri = "postgresql://analyst:s3cr3t-pw@db.internal:5432/crm"
    assert is_secret("CRM_DB", uri) and is_secret("X", "s3://key:secret@bucket/k")
    assert is_secret("PRIVPIPE_PASSPHRASE", "anything")
    assert not is_secret("CRM_HOST", "postgresql://db.internal:5432/crm")  # no password
    assert not is_secret("HOME", "/root") and not is_secret("URL", "https://a.example/x:y@z")
    monkeypatch.setenv("CRM_DB", uri)
    assert "CRM_DB" not in server_env() and uri not in server_env().values()
