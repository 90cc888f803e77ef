"""The local Prefect server that ``privpipe server start`` runs, once per machine.

A Prefect server on 127.0.0.1, with its own Prefect home (and so its own database) under
the privpipe home folder (``$PRIVPIPE_HOME``, default ``~/.privpipe``), all owner-only:

    ~/.privpipe/server/          0700
      server.json                0600  pid, port, API URL, start time (written once it answers)
      server.log                 0600  the server's output
      prefect/                   0700  its PREFECT_HOME: the SQLite database

It is started in a session of its own and stopped by its PID (SIGTERM to its process
group, SIGKILL after a grace period). Its environment is the allow-listed one of
``privacy.childenv`` (no passphrase, credential or URI with a password): it needs
none. Flow commands use it while it answers (:func:`running`); otherwise they start
Prefect's temporary server as before.

Stdlib only, so ``privpipe server status`` loads neither Prefect nor anything heavy.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from privacy.childenv import child_environment

__all__ = [
    "DEFAULT_PORT",
    "HOME_ENV",
    "LocalServer",
    "answers",
    "free_port",
    "privpipe_home",
    "read_state",
    "running",
    "server_dir",
    "start",
    "start_ticks",
    "stop",
    "wait_until_answers",
]

HOME_ENV = "PRIVPIPE_HOME"
DEFAULT_PORT = 4200  # Prefect's own default; another free port when it is taken
START_TIMEOUT_S = 90.0
STOP_GRACE_S = 10.0
STATE_FILE = "server.json"
TOKEN_ENV = "PRIVPIPE_SERVER_TOKEN"  # set in the server's environment by start()
LOG_FILE = "server.log"
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # servers this process started


@dataclass(frozen=True)
class LocalServer:
    """What ``server.json`` records of a started server."""

    pid: int
    port: int
    url: str  # the API URL (``http://127.0.0.1:PORT/api``)
    started: str  # UTC, ISO 8601
    prefect_home: str
    log: str
    start_ticks: int | None  # /proc/PID/stat's start time of the process started
    token: str  # random, in the started process's environment (TOKEN_ENV) only

    @property
    def ui_url(self) -> str:
        return self.url.removesuffix("/api")


def privpipe_home() -> Path:
    """``$PRIVPIPE_HOME``, else ``~/.privpipe``."""
    return Path(os.environ.get(HOME_ENV) or "~/.privpipe").expanduser()


def server_dir() -> Path:
    return privpipe_home() / "server"


def answers(api_url: str, timeout: float = 5.0) -> bool:
    """Whether anything answers the health endpoint (any HTTP status counts: a server
    behind authentication answers too)."""
    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_state() -> LocalServer | None:
    """The recorded server, or None where none is recorded (or the record is unreadable:
    it is only ever written whole, so a damaged one is not ours to trust)."""
    path = server_dir() / STATE_FILE
    try:
        data = json.loads(path.read_text())
        return LocalServer(**{k: data[k] for k in LocalServer.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running(timeout: float = 1.0) -> LocalServer | None:
    """The recorded server where it is alive and answers on loopback, else None."""
    state = read_state()
    if state is None or not _is_our_server(state):
        return None
    return state if answers(state.url, timeout=timeout) else None


def start(port: int = 0, timeout: float = START_TIMEOUT_S) -> tuple[LocalServer, bool]:
    """Start the server (``port`` 0: 4200 when free, else any free port) and return it
    once it answers, with True; the one already running, with False. Raises
    :class:`~privacy.errors.ServerError` with the log's path when it does not come up."""
    from privacy.errors import ServerError
    from privacy.io import atomic_write_bytes, private_dir

    current = running()
    if current is not None:
        return current, False
    folder = private_dir(server_dir())
    home = private_dir(folder / "prefect")
    port = port or (DEFAULT_PORT if _port_free(DEFAULT_PORT) else free_port())
    url = f"http://127.0.0.1:{port}/api"
    if answers(url, timeout=1.0):
        raise ServerError(f"--port {port}: something already answers at {url}")
    log = folder / LOG_FILE
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    token = secrets.token_hex(16)
    with os.fdopen(fd, "ab") as sink:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**_server_env(home, port), TOKEN_ENV: token},
            cwd=folder,
            start_new_session=True,  # its own process group: stopped as one, by PID
        )
    _CHILDREN[process.pid] = process
    state = LocalServer(
        pid=process.pid,
        port=port,
        url=url,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        prefect_home=str(home),
        log=str(log),
        start_ticks=start_ticks(process.pid),
        token=token,
    )
    try:
        wait_until_answers(process, port, log, timeout)
    except BaseException:
        _terminate(state)
        raise
    atomic_write_bytes(folder / STATE_FILE, json.dumps(asdict(state), indent=2).encode())
    return state, True


def wait_until_answers(
    process: subprocess.Popen[bytes], port: int, log: Path, timeout: float
) -> None:
    """Return once the server ``process`` started on ``port`` answers; a one-line
    :class:`~privacy.errors.ServerError` naming ``log`` if it exits or times out first."""
    from privacy.errors import ServerError

    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + timeout
    while not answers(url, timeout=1.0):
        if process.poll() is not None:
            raise ServerError(
                f"the Prefect server (port {port}) exited with status "
                f"{process.returncode} before answering; its log: {log}"
            )
        if time.monotonic() > deadline:
            raise ServerError(
                f"the Prefect server (port {port}) did not answer within "
                f"{timeout:.0f} s; its log: {log}"
            )
        time.sleep(0.25)


def stop(grace: float = STOP_GRACE_S) -> LocalServer | None:
    """Stop the recorded server by its PID and forget it; returns what was stopped
    (None: none was recorded, or its process was gone already)."""
    state = read_state()
    (server_dir() / STATE_FILE).unlink(missing_ok=True)
    if state is None or not _is_our_server(state):
        return None
    _terminate(state, grace)
    return state


def _server_env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in child_environment().items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_SERVER_UI_ENABLED="true",  # reviewers see the flow runs and artifacts
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_RESULTS_PERSIST_BY_DEFAULT="false",
        PREFECT_LOGGING_LOG_PRINTS="false",
        PREFECT_SERVER_LOGGING_LEVEL="WARNING",
        DO_NOT_TRACK="1",
    )
    return env


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _is_our_server(state: LocalServer) -> bool:
    """Whether the process ``state`` names is the one privpipe's :func:`start` started:
    alive (not a zombie), started at the recorded time (``/proc/PID/stat``), and holding
    the recorded random token in the environment it was started with
    (``/proc/PID/environ``, which only its owner can read). A PID reused by another
    process, or a record naming anyone's job whose argv says "prefect server", is never
    signalled. Without ``/proc`` (macOS) only a server this process started counts."""
    pid = state.pid
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or another user's: not ours
        return False
    proc = Path("/proc") / str(pid)
    if not proc.is_dir():
        return child is not None
    try:
        stat = (proc / "stat").read_text()
        environ = (proc / "environ").read_bytes().split(b"\0")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    if state.start_ticks is None or start_ticks(pid) != state.start_ticks:
        return False
    expected = f"{TOKEN_ENV}={state.token}".encode()
    return bool(state.token) and hmac.compare_digest(
        next((item for item in environ if item.startswith(TOKEN_ENV.encode() + b"=")), b""),
        expected,
    )


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks after boot (``/proc/PID/stat`` field 22):
    with the PID, it names one process for the life of the machine. None without
    ``/proc`` or when the process is gone."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[-1].split()[19])  # fields after comm start at 3


def _terminate(state: LocalServer, grace: float = STOP_GRACE_S) -> None:
    """SIGTERM to the server's process group, SIGKILL after ``grace`` seconds; each
    signal only while the process is still the one started (:func:`_is_our_server`)."""
    pid = state.pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not _is_our_server(state):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _gone(pid):
                time.sleep(0.1)
                continue
            return


def _gone(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return False
        _CHILDREN.pop(pid, None)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    proc = Path("/proc") / str(pid) / "stat"
    with contextlib.suppress(OSError):
        return proc.read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    return False
