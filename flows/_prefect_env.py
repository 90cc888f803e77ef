"""Prefect settings that keep data out of Prefect's store. Applied before Prefect loads.

Prefect persists flow parameters, task results, log lines and exception messages in its
database and result store. privpipe passes only paths and counts, and on top of that:
results are never persisted, ``print`` is never captured as a log, telemetry is off,
and the console shows only what the command asks for (Prefect's failure logs carry a
traceback; the CLI prints one ``error:`` line instead, unless ``--debug``).

Prefect's home (``$PREFECT_HOME``, default ``~/.privpipe/prefect``) holds its database: it is made
0700, and the files and folders directly in it 0600 / 0700 (Prefect leaves its SQLite
database 0644 under a 022 umask; SQLite gives the WAL and shared-memory files the
database's mode). What Prefect creates later is covered by the CLI's 077 umask, which
its temporary server, served runs and Dask workers inherit.

Prefect's own temporary server would copy this process's whole environment: privpipe
starts it itself (:func:`spawn_temporary_server`) with the allow-listed environment of
``privacy.childenv`` (no passphrase, no credential, no URI with a password), less a
policy's pseudonym key variable. Only processes that unlock a keyring (Dask workers)
get the passphrase, by name, at their one call site.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from privacy.childenv import child_environment

__all__ = [
    "configure_prefect",
    "default_prefect_home",
    "point_prefect_at",
    "prefect_home",
    "private_prefect_home",
    "spawn_temporary_server",
    "start_temporary_server",
]

_APP = "prefect.server.api.server:create_app"  # what Prefect's own temporary server runs


_HARDENED = {
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
    "PREFECT_LOGGING_LOG_PRINTS": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


def configure_prefect(console_level: str = "CRITICAL") -> None:
    """Set the hardened defaults (the user's own environment wins for console output),
    and, unless ``PREFECT_HOME`` is set, privpipe's own persistent Prefect home
    (:func:`default_prefect_home`): its database is migrated once, not per command, and
    holds only privpipe's runs. A profiles file in ``~/.prefect`` is still read."""
    for name, value in _HARDENED.items():
        os.environ[name] = value
    if not os.environ.get("PREFECT_HOME"):
        os.environ["PREFECT_HOME"] = str(default_prefect_home())
        profiles = Path("~/.prefect/profiles.toml").expanduser()
        if profiles.is_file():
            os.environ.setdefault("PREFECT_PROFILES_PATH", str(profiles))
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", console_level)
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    # The temporary server takes 8-14 s to start here, and more on a busy 2-core machine;
    # Prefect gives up after 20 s by default, failing the run with a RuntimeError.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    with contextlib.suppress(OSError):  # an unusable home: Prefect reports it when it starts
        private_prefect_home()


class _Temporary:
    """This process's temporary server: started once, reused by every later command in
    the process (tests run many), stopped when the process exits."""

    process: subprocess.Popen[bytes] | None = None
    url: str = ""
    log: Any = None
    ready = False
    uses = 0  # commands that used it (the test harness checks its marks with this)
    registered = False  # its stop, at the process's exit


def spawn_temporary_server(extra_secrets: Iterable[str] = ()) -> None:
    """Start Prefect's temporary server in the background and return at once, so that
    imports, policy checks and the keyring's unlock run while it boots;
    :func:`start_temporary_server` then waits for it. Nothing is started where
    ``PREFECT_API_URL`` names a server, or where this process's server still runs.

    It is Prefect's own temporary server (uvicorn on Prefect's app factory, ephemeral
    mode, 127.0.0.1), started by privpipe so that its environment is the allow-listed
    one (less ``extra_secrets``): ``os.environ`` is never changed, so other threads may
    read the passphrase meanwhile; and this process never imports Prefect's server
    modules (seconds)."""
    if os.environ.get("PREFECT_API_URL"):
        return
    if _Temporary.process is not None and _Temporary.process.poll() is None:
        return
    from flows._server import free_port

    port = free_port()
    env = child_environment(withhold={*extra_secrets, "PREFECT_API_URL"})
    env.update(
        PREFECT_UI_ENABLED="0",
        PREFECT__SERVER_EPHEMERAL="1",
        PREFECT__SERVER_FINAL="1",
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
    )
    log = tempfile.TemporaryFile(prefix="privpipe-prefect-")  # noqa: SIM115 (its life long)
    command = [sys.executable, "-m", "uvicorn", "--factory", _APP, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "error", "--lifespan", "on"]
    _Temporary.process = subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
    )
    _Temporary.url, _Temporary.log, _Temporary.ready = f"http://127.0.0.1:{port}/api", log, False
    if not _Temporary.registered:
        atexit.register(_stop_temporary)
        _Temporary.registered = True


def start_temporary_server(extra_secrets: Iterable[str] = ()) -> str | None:
    """This process's temporary server (started now if :func:`spawn_temporary_server`
    has not), once it answers; sets ``PREFECT_API_URL`` to it and returns its URL.
    None where ``PREFECT_API_URL`` named a server already (nothing is started)."""
    if os.environ.get("PREFECT_API_URL") and not _Temporary.ready:
        return None
    from flows._server import answers
    from privacy.errors import ServerError

    for _attempt in range(2):  # a port taken between choosing and binding: once more
        spawn_temporary_server(extra_secrets)
        process = _Temporary.process
        assert process is not None
        timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 90))
        deadline = time.monotonic() + timeout
        while not _Temporary.ready:
            if answers(_Temporary.url, timeout=1.0):
                _Temporary.ready = True
            elif process.poll() is not None:
                break
            elif time.monotonic() > deadline:
                _stop_temporary()
                raise ServerError(
                    f"Prefect's temporary server did not answer within {timeout:.0f} s "
                    "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)"
                )
            else:
                time.sleep(0.1)
        if _Temporary.ready:
            _Temporary.uses += 1
            point_prefect_at(_Temporary.url)
            return _Temporary.url
        _Temporary.process = None
    tail = _log_tail()
    raise ServerError(f"Prefect's temporary server exited before answering: {tail}")


def point_prefect_at(url: str) -> None:
    """``PREFECT_API_URL`` for this process and those it starts; where Prefect is loaded
    already (its settings are read once, at import), its settings are read again, or
    its flows would start a temporary server of their own from the whole environment."""
    os.environ["PREFECT_API_URL"] = url
    context = sys.modules.get("prefect.context")
    refresh = getattr(context, "refresh_global_settings_context", None)
    if refresh is not None:
        refresh()


def _log_tail() -> str:
    log = _Temporary.log
    if log is None:
        return "no output"
    with contextlib.suppress(OSError, ValueError):
        log.seek(0)
        lines = log.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"
    return "no output"


def _stop_temporary() -> None:
    process = _Temporary.process
    if process is not None and process.poll() is None:
        process.terminate()  # uvicorn shuts down gracefully: its writers flush
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    _Temporary.process, _Temporary.ready = None, False


def default_prefect_home() -> Path:
    """privpipe's Prefect home where ``PREFECT_HOME`` is unset: ``prefect`` under the
    privpipe home (``$PRIVPIPE_HOME``, default ``~/.privpipe``)."""
    from flows._server import privpipe_home

    return privpipe_home() / "prefect"


def prefect_home() -> Path:
    """The folder Prefect keeps its database in: ``$PREFECT_HOME``, else
    :func:`default_prefect_home`."""
    value = os.environ.get("PREFECT_HOME")
    return Path(value).expanduser() if value else default_prefect_home()


def private_prefect_home() -> Path:
    """Create Prefect's home 0700 if missing; make it, and each file and folder directly
    in it, owner-only (bits are only taken away). Entries another user owns are left as
    they are."""
    from privacy.io import FILE_MODE, FOLDER_MODE, private_dir

    home = private_dir(prefect_home())
    _restrict(home, FOLDER_MODE)
    with os.scandir(home) as entries:
        for entry in entries:
            if entry.is_symlink():
                continue
            _restrict(Path(entry.path), FOLDER_MODE if entry.is_dir() else FILE_MODE)
    return home


def _restrict(path: Path, mode: int) -> None:
    with contextlib.suppress(OSError):  # not ours, or gone meanwhile
        current = stat.S_IMODE(path.stat().st_mode)
        if current & ~mode:
            os.chmod(path, current & mode)
