"""The ``privpipe`` command line.

Each command group is a module of this package (``flows/cli/sanitize.py``, ``keys.py``,
…; the shared options are in ``app.py``) and imports what it needs when it runs:
``privpipe --help``, ``policy``, ``synth``, ``keys``, ``encrypt``, ``decrypt`` and
``audit`` never load Prefect, Presidio or torch. Exit status: 0 success, 2 a user error
(one ``error:`` line on stderr naming the file, row, column or policy key), 3 an audit
trail that fails verification, 1 an internal error. ``--debug`` shows tracebacks.

Everything a command creates is owner-only: ``main`` sets a 077 umask for the command's
duration (so files are 0600 and folders 0700 whatever the caller's umask), which the
processes it starts inherit: Prefect's temporary server and its database, served runs,
Dask workers. privpipe's own writers also set those modes explicitly.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer

# Importing the command modules registers their commands, in this order in --help.
from flows.cli import synth  # noqa: F401  # isort: skip
from flows.cli import sanitize  # noqa: F401  # isort: skip
from flows.cli import demo  # noqa: F401  # isort: skip
from flows.cli import serve  # noqa: F401  # isort: skip
from flows.cli import server  # noqa: F401  # isort: skip
from flows.cli import detect  # noqa: F401  # isort: skip
from flows.cli import risk  # noqa: F401  # isort: skip
from flows.cli import train  # noqa: F401  # isort: skip
from flows.cli import release  # noqa: F401  # isort: skip
from flows.cli import run  # noqa: F401  # isort: skip
from flows.cli import keys  # noqa: F401  # isort: skip
from flows.cli import reidentify  # noqa: F401  # isort: skip
from flows.cli import audit  # noqa: F401  # isort: skip
from flows.cli import budget  # noqa: F401  # isort: skip
from flows.cli import report  # noqa: F401  # isort: skip
from flows.cli import policy  # noqa: F401  # isort: skip
from flows.cli.app import (
    STATE,
    app,
    echo_err,
)

__all__ = ["app", "main"]


# --------------------------------------------------------------------------- entry point


PRIVATE_UMASK = 0o077
_STATE_ARGS: list[str] = []  # this command's arguments (for the refusal record)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app and map errors to exit statuses.

    The process umask is 077 while the command runs; an in-process caller gets its own
    umask back on return."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        return _main(argv)
    finally:
        # PREFECT_API_URL stays as the command set it (the server its flows used):
        # Prefect's log and event writers flush at exit, and without it they would start
        # a temporary server of their own, from the whole environment.
        os.umask(previous)


def _main(argv: list[str] | None) -> int:
    click_error = _click_exception_class()
    STATE.update(debug=False, verbose=False, json=False, quiet=False)
    args = sys.argv[1:] if argv is None else argv
    torchless = (["scan"], ["detect-text"], ["sanitize"], ["risk"], ["serve"])
    if argv is None and args[:1] in torchless and "torch" not in sys.modules:
        # spaCy's thinc imports torch whenever it is installed (2-3 s and ~300 MB here);
        # the small CPU pipeline never uses it, and these commands train nothing. Only a
        # whole-process command may make this choice.
        sys.modules["torch"] = None  # type: ignore[assignment]
    debug = "--debug" in args
    _STATE_ARGS[:] = args
    try:
        _check_operator(args)
        status = app(args=args, standalone_mode=False, prog_name="privpipe")
        if isinstance(status, int) and not isinstance(status, bool) and status:
            return status  # a command's typer.Exit(N): click returns N when not standalone
    except typer.Exit as exc:
        return int(exc.exit_code)
    except click_error as exc:
        exc.show()
        return int(exc.exit_code)
    except typer.Abort:
        echo_err("aborted")
        return 130
    except KeyboardInterrupt:
        echo_err("interrupted")
        return 130
    except Exception as exc:
        return _report_error(exc, debug)
    return 0


def _check_operator(args: list[str]) -> None:
    """A malformed ``PRIVPIPE_OPERATOR_KEY`` stops a command before it does anything:
    otherwise a key operation could be done and then fail to be recorded."""
    from privacy.actor import OPERATOR_ENV, actor

    if os.environ.get(OPERATOR_ENV) and args and not {"--help", "--version"} & set(args):
        actor()


def _click_exception_class() -> Any:
    """Click's usage-error base class, as the installed typer uses it (it may vendor click)."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # typer releases that depend on click itself
        from click import ClickException as ClickError

        return ClickError
    return ClickException


def _report_error(exc: Exception, debug: bool) -> int:
    from privacy.errors import PrivpipeError

    if STATE["json"]:  # machine readers get the outcome on stdout too (no value in it)
        user_error = isinstance(exc, PrivpipeError)
        typer.echo(
            json.dumps(
                {
                    "status": "error",
                    "error": type(exc).__name__ if user_error else "InternalError",
                    "message": str(exc) if user_error else "internal error",
                }
            )
        )
    if isinstance(exc, PrivpipeError):
        _audit_refusal(exc)
        if debug:
            import traceback

            traceback.print_exception(exc)
        echo_err(f"error: {exc}")
        return exc.exit_code
    name = type(exc).__name__
    if debug:
        import traceback

        # the stage's original only for a stage's error: an earlier one may linger
        original = _original_error() if name == "InternalStageError" else None
        traceback.print_exception(original or exc)
    if name == "InternalStageError":
        echo_err(f"error: {exc}; rerun with --debug for details")
    else:
        echo_err(f"error: internal error ({name}); rerun with --debug for details")
    return 1


_GROUPS = ("keys", "audit", "policy", "budget")


def _audit_refusal(exc: Exception) -> None:
    """A command refused for a key scope its keyring lacks is recorded in that keyring's
    own trail (beside it): who (the actor), what (the command, the scope), when."""
    from privacy.errors import ScopeError

    if not isinstance(exc, ScopeError):
        return
    from flows import _keys

    ring = _keys.registered(exc.keyring)
    if ring is None:
        return
    from privacy.audit import AuditTrail

    words = [a for a in _STATE_ARGS if not a.startswith("-")][:2]
    command = " ".join(words if words[:1] and words[0] in _GROUPS else words[:1])
    from privacy.errors import PrivpipeError

    trail_path = ring.path.parent / "audit.jsonl"
    try:
        with AuditTrail(trail_path, ring, context={"run_id": None, "flow": "access"}) as trail:
            trail.append(
                "access.refused",
                outcome="refused",
                error=type(exc).__name__,
                params={"command": command, "scope": exc.scope, "keyring": str(ring.path)},
            )
    except PrivpipeError:  # a trail it may not sign: the refusal itself still stands
        return


def _original_error() -> BaseException | None:
    module = sys.modules.get("flows._tasks")
    if module is None:
        return None
    error: BaseException | None = module.last_internal_error()
    return error
