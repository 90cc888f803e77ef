"""A real PostgreSQL for the tests: Debian's ``postgresql`` package, one cluster per test
session, on a loopback port with password (SCRAM) authentication, run as an unprivileged
user when the tests run as root, and stopped by its PID.

The cluster logs every statement (``log_statement = all``) so that the sentinel tests can
search the server's own log for planted values."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests._helpers.processes import free_port

__all__ = ["Postgres", "find_bin", "postgres_cluster"]

_USER = "privpipe"


def find_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server programs (the newest version), if any."""
    found = shutil.which("pg_ctl")
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if found:
        candidates.insert(0, Path(os.path.realpath(found)).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


@dataclass
class Postgres:
    root: Path
    port: int
    password: str
    pid: int
    log: Path

    def uri(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{_USER}:{secret}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", self.uri(database)],
            input=sql,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    def server_log(self) -> bytes:
        return b"".join(p.read_bytes() for p in sorted(self.log.parent.glob("*")) if p.is_file())


def _as_user(user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--"] if user else []


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Postgres]:
    """Start a throwaway cluster; stop it (by PID) and remove it afterwards."""
    bin_dir = find_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    user = None
    if os.geteuid() == 0:  # the server refuses to run as root
        user = "postgres" if _has_user("postgres") else "nobody"
    # the server's user must reach its folder: under /tmp, not the session's private tmp
    root = Path(tempfile.mkdtemp(prefix="privpipe-pg-", dir="/tmp" if user else None))
    os.chmod(root, 0o755)
    data, logs = root / "data", root / "log"
    password = secrets.token_urlsafe(18)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    for folder in (data, logs):
        folder.mkdir()
    if user:
        entry = pwd.getpwnam(user)
        for path in (root, data, logs, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(data, 0o700)
    subprocess.run(
        [
            *_as_user(user),
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            _USER,
            f"--pwfile={pwfile}",
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )
    pwfile.unlink()
    port = free_port()
    log = logs / "server.log"
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
        "-c log_statement=all -c fsync=off -c synchronous_commit=off"
    )
    start = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options]
    subprocess.run(
        [*_as_user(user), *start, "-w", "-t", "60", "start"],
        capture_output=True,
        check=True,
        timeout=90,
    )
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    try:
        yield Postgres(root, port, password, pid, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)  # PostgreSQL's fast shutdown
        for _ in range(200):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:  # pragma: no cover - a server that would not stop
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
