"""Prefect settings that keep data out of Prefect's store. Applied before Prefect loads.

Prefect persists flow parameters, task results, log lines and exception messages in its
database and result store. privpipe passes only paths and counts, and on top of that:
results are never persisted, ``print`` is never captured as a log, telemetry is off,
and the console shows only what the command asks for (Prefect's failure logs carry a
traceback; the CLI prints one ``error:`` line instead, unless ``--debug``).
"""

from __future__ import annotations

import os

__all__ = ["configure_prefect"]

_HARDENED = {
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
    "PREFECT_LOGGING_LOG_PRINTS": "false",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


def configure_prefect(console_level: str = "CRITICAL") -> None:
    """Set the hardened defaults (the user's own environment wins for console output)."""
    for name, value in _HARDENED.items():
        os.environ[name] = value
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", console_level)
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    # The temporary server takes 8-14 s to start here, and more on a busy 2-core machine;
    # Prefect gives up after 20 s by default, failing the run with a RuntimeError.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
