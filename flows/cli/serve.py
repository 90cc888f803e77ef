"""privpipe serve: sanitize one input on a schedule, served from a Prefect server.

Schedules need a real Prefect server (the embedded temporary one cannot schedule):
the one ``PREFECT_API_URL`` names, or, with ``--start-server``, a local one this
command starts, and stops when it stops. Everything is checked, and the keyring
unlocked, before any server starts; the passphrase then reaches the runs (separate
processes) only through ``PRIVPIPE_PASSPHRASE`` in their environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from flows._server import answers, free_port, wait_until_answers
from flows.cli.app import (
    PASSPHRASE_ENV,
    STATE,
    app,
    ask_passphrase,
    keyring_option,
    stderr_console,
)

API_URL_ENV = "PREFECT_API_URL"
SERVER_START_TIMEOUT_S = 90.0
SERVER_STOP_GRACE_S = 10.0
_SERVER_COMMAND = (sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1")


# Long by its option declarations; the body is about 40 lines.
@app.command()
def serve(
    policy: Annotated[Path, typer.Option("--policy", "-p", help="Policy YAML file.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output root: one dated folder per run.")
    ],
    input_path: Annotated[
        Path | None,
        typer.Option(
            "--input",
            "-i",
            help="The input file each run reads (CSV, Parquet, JSON Lines); none when the "
            "policy reads a database (input.kind: postgres).",
        ),
    ] = None,
    cron: Annotated[
        str | None, typer.Option("--cron", help="Cron expression, in UTC ('0 2 * * *').")
    ] = None,
    interval: Annotated[
        float | None, typer.Option("--interval", min=1, help="Seconds between runs.")
    ] = None,
    keyring: Annotated[
        Path | None,
        keyring_option(
            "Keyring for the sealed outputs (default: the policy's keys.keyring). The "
            "passphrase (PRIVPIPE_PASSPHRASE or a prompt) is passed to the runs in "
            "their environment."
        ),
    ] = None,
    start_server: Annotated[
        bool,
        typer.Option(
            "--start-server",
            help="Start a local Prefect server for as long as this command runs.",
        ),
    ] = False,
    port: Annotated[
        int,
        typer.Option(
            "--port", min=0, max=65535, help="Port of --start-server's server (0: a free one)."
        ),
    ] = 0,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Deployment name (default: the policy's name)."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Stop after this many runs have finished."),
    ] = None,
) -> None:
    """Run the sanitize flow on a schedule: each run writes OUT/<UTC start>/.

    Needs a Prefect server: PREFECT_API_URL, or --start-server. With the policy's
    schedule.skip_unchanged, a run whose input is unchanged writes nothing."""
    if (cron is None) == (interval is None):
        raise typer.BadParameter(
            "give exactly one of --cron EXPR and --interval SECONDS",
            param_hint="'--cron' / '--interval'",
        )
    from flows._prefect_env import configure_prefect

    configure_prefect("INFO" if STATE["verbose"] else "CRITICAL")
    loaded = _check_inputs(policy, input_path, out)
    name = _check_name(name or loaded.name)
    if cron is not None:
        _check_cron(cron)
    external = _server_url(start_server)
    ring_path = _unlock_keyring(keyring, loaded)
    console = stderr_console()

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    with _sigterm_exits(), _prefect_server(external, port, say):
        from flows import serve as serving

        try:
            done = serving.serve_schedule(
                input_path=input_path,
                policy_path=policy,
                out_root=out,
                keyring_path=ring_path,
                name=name,
                cron=cron,
                interval=interval,
                limit=limit,
                say=say,
            )
        except KeyboardInterrupt:
            say("interrupted: serving stopped")
            return
        runs = "1 finished run" if done == 1 else f"{done} finished runs"
        say(f"serving stopped after {runs}; schedule paused")


# --------------------------------------------------------------------------- checks


def _check_inputs(policy: Path, input_path: Path | None, out: Path) -> Any:
    """What can be checked before any server starts or any passphrase is asked for
    (the policy's signature included, where it must be signed)."""
    from flows.cli.sanitize import check_policy_and_input

    return check_policy_and_input(input_path, policy, out)


def _check_name(name: str) -> str:
    import re

    from privacy.errors import PrivpipeError

    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise PrivpipeError(f"--name {name!r}: up to 64 letters, digits, '.', '_' or '-'")
    return name


def _check_cron(expression: str) -> None:
    from prefect.schedules import Cron

    from privacy.errors import PrivpipeError

    try:
        Cron(expression, timezone="UTC")
    except ValueError:
        raise PrivpipeError(
            f"--cron {expression!r}: not a cron expression (five fields, e.g. '0 2 * * *')"
        ) from None


def _server_url(start_server: bool) -> tuple[str, str] | None:
    """The server to use and where it was named (None: start one), or a one-line error
    saying how to get one."""
    if start_server:
        return None
    if os.environ.get(API_URL_ENV):
        return os.environ[API_URL_ENV], API_URL_ENV
    from flows import _server

    local = _server.running()
    if local is not None:
        return local.url, "privpipe server start"
    from prefect.settings import get_current_settings  # a profile may name one (~2 s)

    url = get_current_settings().api.url
    if url:
        return url, f"{API_URL_ENV} of the Prefect profile"
    from privacy.errors import ServerError

    raise ServerError(
        "scheduled runs need a Prefect server (the embedded one cannot schedule flows): "
        "start one with `privpipe server start` (or `prefect server start` and `export "
        "PREFECT_API_URL=http://127.0.0.1:4200/api`), or pass --start-server"
    )


def _unlock_keyring(option: Path | None, policy: Any) -> Path:
    """Unlock the keyring here, so a wrong passphrase fails now and not in every run;
    then export the passphrase to the runs' environment. Returns the keyring's path."""
    from flows import _keys
    from privacy.crypto import Keyring
    from privacy.transform import operators_for

    ring_path = _keys.resolve_keyring_path(option, policy)
    passphrase = ask_passphrase(ring_path)
    ring = Keyring.open(ring_path, passphrase)
    _keys.register(ring)
    from privacy.crypto import pseudonym_provider

    if any(op.uses_key() for op in operators_for(policy)):
        pseudonym_provider(ring, policy.keys.pseudonym_key_env).pseudonym_key()
    os.environ[PASSPHRASE_ENV] = passphrase  # inherited by the runs' processes only
    return Path(ring_path)


# --------------------------------------------------------------------------- the server


@contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so a server this command started is stopped.
    (While runs are served, Prefect's runner handles SIGTERM: it stops serving.)"""
    previous = signal.getsignal(signal.SIGTERM)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _prefect_server(external: tuple[str, str] | None, port: int, say: Any) -> Iterator[str]:
    """Use the server ``external`` names, or start a local one and stop it on the way out."""
    if external is not None:
        url, source = external
        _check_health(url)
        say(f"using the Prefect server at {url} ({source})")
        yield url
        return
    process, url, log = _start_server(port)
    say(f"started a Prefect server at {url} (pid {process.pid}); it stops when serve stops")
    before = os.environ.get(API_URL_ENV)
    os.environ[API_URL_ENV] = url  # this process and the runs' processes
    try:
        yield url
    finally:
        if before is None:
            os.environ.pop(API_URL_ENV, None)
        else:
            os.environ[API_URL_ENV] = before
        code = _stop_server(process)
        if code in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
            log.unlink(missing_ok=True)
            say(f"stopped the Prefect server (pid {process.pid})")
        else:
            say(f"stopped the Prefect server (pid {process.pid}, exit {code}; log {log})")


def _health_url(api_url: str) -> str:
    return api_url.rstrip("/") + "/health"


def _check_health(api_url: str) -> None:
    from privacy.errors import ServerError

    if not answers(api_url):
        raise ServerError(
            f"{API_URL_ENV}={api_url}: no Prefect server answers at {_health_url(api_url)} "
            "(start one with `prefect server start`, or pass --start-server)"
        )


def server_env() -> dict[str, str]:
    """The environment ``prefect server start`` gets: the allow-listed one of
    ``privacy.childenv`` without the API URL (no passphrase, pseudonym key, credential
    or URI with a password): the server needs none."""
    from privacy.childenv import child_environment

    return child_environment(withhold=[API_URL_ENV])


def _start_server(port: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``prefect server start`` on loopback, in a session of its own (so Ctrl-C reaches
    this command, which then stops it in order); returns once it answers."""
    import tempfile

    from privacy.errors import ServerError

    port = port or free_port()
    url = f"http://127.0.0.1:{port}/api"
    if answers(url, timeout=1.0):
        raise ServerError(f"--port {port}: something already answers at {url}")
    fd, name = tempfile.mkstemp(prefix="privpipe-prefect-server-", suffix=".log")
    log = Path(name)
    env = server_env()
    with os.fdopen(fd, "wb") as sink:
        process = subprocess.Popen(
            [*_SERVER_COMMAND, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        wait_until_answers(process, port, log, SERVER_START_TIMEOUT_S)
    except BaseException:
        _stop_server(process)
        raise
    return process, url, log


def _stop_server(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM to the server's process group, SIGKILL after a grace period."""
    if process.poll() is None:
        for sig, wait in ((signal.SIGTERM, SERVER_STOP_GRACE_S), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    return process.wait()
