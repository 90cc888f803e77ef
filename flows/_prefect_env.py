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

Prefect's temporary server copies this process's whole environment: it holds no key
and needs none, so :func:`start_temporary_server` starts it with the secret variables
(the keyring passphrases, a policy's pseudonym key variable) withheld. Only processes
that unlock a keyring (Dask workers) may get them.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = [
    "SECRET_ENV",
    "configure_prefect",
    "default_prefect_home",
    "prefect_home",
    "private_prefect_home",
    "secrets_withheld",
    "start_temporary_server",
]

SECRET_ENV = ("PRIVPIPE_PASSPHRASE", "PRIVPIPE_NEW_PASSPHRASE", "PRIVPIPE_PSEUDONYM_KEY")

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


@contextlib.contextmanager
def secrets_withheld(extra: Iterable[str] = ()) -> Iterator[None]:
    """:data:`SECRET_ENV` and ``extra`` out of ``os.environ`` for the block (so a child
    started in it does not inherit them), put back after. Only for a short block with
    no other thread reading them: the start of a subprocess."""
    held = {name: os.environ.pop(name) for name in (*SECRET_ENV, *extra) if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(held)


def start_temporary_server(extra_secrets: Iterable[str] = ()) -> str | None:
    """Start Prefect's temporary server now, without the secret variables in its
    environment, and return its API URL; None where ``PREFECT_API_URL`` names a server
    (nothing is started). Prefect reuses this server (one per process) when a flow
    runs, instead of starting one that inherits the passphrase."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    with secrets_withheld(extra_secrets):
        server.start()  # a no-op when this process started it already
    return server.api_url


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
    from privacy._atomic import FILE_MODE, FOLDER_MODE, private_dir

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
