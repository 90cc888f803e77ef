"""What every privpipe command shares: the Typer apps, global options, and the
keyring, audit and output helpers, in one place. The command groups live in the other
modules of this package, which import only public names from here and from each other;
``flows/cli/__init__.py`` is the entry point."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="privpipe",
    help="Turn raw personal data into data that is safe to use, with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
policy_app = typer.Typer(
    help="Validate and sign policies; export their JSON Schema.", no_args_is_help=True
)
app.add_typer(policy_app, name="policy")
keys_app = typer.Typer(
    help="Manage a keyring: key-encryption keys (rotated) and the pseudonym secret.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(help="Verify and read audit trails.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

STATE: dict[str, bool] = {"debug": False, "verbose": False, "json": False, "quiet": False}
DEFAULT_DEMO_DIR = Path("demo-output")
DEMO_PASSPHRASE = "privpipe-demo-only"


def _version(value: bool) -> None:
    if value:
        from privacy import __version__

        typer.echo(f"privpipe {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show Prefect's run logs on stderr.")
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="No progress output (for schedules and CI)."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    STATE["debug"] = debug
    STATE["verbose"] = verbose
    STATE["quiet"] = quiet


def echo_err(message: str) -> None:
    typer.echo(message, err=True)


# --------------------------------------------------------------------------- keys

PASSPHRASE_ENV = "PRIVPIPE_PASSPHRASE"
DEMO_PASSPHRASES: dict[Path, str] = {}  # only `privpipe demo` puts anything here


def keyring_option(help: str) -> Any:
    """The ``--keyring/-k`` option (also from PRIVPIPE_KEYRING), with a command's help."""
    return typer.Option("--keyring", "-k", envvar="PRIVPIPE_KEYRING", help=help)


KeyringOption = Annotated[Path, keyring_option("Keyring file (or set PRIVPIPE_KEYRING).")]


def input_and_keyring(source: Path, keyring: Path) -> Any:
    """Check that ``source`` exists, then unlock ``keyring``; returns the keyring."""
    from privacy.errors import InputError

    if not source.is_file():
        raise InputError(f"{source}: input file not found")
    return open_keyring(keyring)


def ask_passphrase(keyring: Path, *, confirm: bool = False) -> str:
    """From PRIVPIPE_PASSPHRASE, else an interactive prompt; never from an argument."""
    value = os.environ.get(PASSPHRASE_ENV) or DEMO_PASSPHRASES.get(keyring.resolve())
    if value:
        return value
    if not sys.stdin.isatty():
        from privacy.errors import KeyAccessError

        raise KeyAccessError(
            f"{keyring}: a passphrase is needed: set {PASSPHRASE_ENV} or run in a terminal"
        )
    text: str = typer.prompt(
        f"Passphrase for {keyring}", hide_input=True, confirmation_prompt=confirm, err=True
    )
    return text


def open_keyring(path: Path) -> Any:
    """Unlock a keyring, and register it: a refusal for a scope it lacks is then
    recorded in its own audit trail (see flows/cli/__init__.py)."""
    from flows import _keys
    from privacy.crypto import Keyring

    ring = Keyring.open(path, ask_passphrase(path))
    _keys.register(ring)
    return ring


def parse_pairs(values: list[str], option: str) -> dict[str, str]:
    from privacy.errors import PrivpipeError

    pairs = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise PrivpipeError(f"{option} {value!r}: expected KEY=VALUE")
        pairs[key] = val
    return pairs


# --------------------------------------------------------------------------- audit

AuditOption = Annotated[
    Path | None,
    typer.Option(
        "--audit",
        envvar="PRIVPIPE_AUDIT",
        help="Audit trail to append to (default: audit.jsonl in the output folder, or "
        "beside the keyring for key operations).",
    ),
]


SIGNERS_ENV = "PRIVPIPE_AUDIT_SIGNERS"


def default_signers_file() -> Path:
    """``$PRIVPIPE_AUDIT_SIGNERS``, else ``~/.privpipe/audit-signers.yaml``."""
    value = os.environ.get(SIGNERS_ENV)
    return Path(value) if value else Path.home() / ".privpipe" / "audit-signers.yaml"


def trusted_key(
    public_key: str | None,
    keyring: Path | None,
    *,
    signer: str | None = None,
    signers: Path | None = None,
) -> Any:
    """The key a trail is verified against (:func:`privacy.crypto.trusted_key`), or None
    when neither --public-key nor --keyring is given. The keyring may prove itself by
    its passphrase: PRIVPIPE_PASSPHRASE, the demo's, or a prompt in a terminal."""
    from privacy.crypto import trusted_key as decide

    can_unlock = bool(os.environ.get(PASSPHRASE_ENV)) or sys.stdin.isatty()
    if keyring is not None and DEMO_PASSPHRASES.get(keyring.resolve()):
        can_unlock = True
    return decide(
        public_key,
        keyring,
        signer=signer,
        signers=signers,
        default_signers=default_signers_file(),
        passphrase=ask_passphrase if can_unlock else None,
    )


def verifying_key(
    needs: str,
    public_key: str | None,
    keyring: Path | None,
    *,
    signer: str | None,
    signers: Path | None,
    witness: Path | None,
) -> tuple[Any, Path | None]:
    """The key a command verifies against (see :func:`trusted_key`; one is required:
    else refused, ``needs`` saying what for) and the witness it consults
    (:func:`privacy.integrity.consulted_witness`)."""
    from privacy.errors import KeyAccessError
    from privacy.integrity import consulted_witness

    trusted = trusted_key(public_key, keyring, signer=signer, signers=signers)
    if trusted is None:
        raise KeyAccessError(
            f"{needs}: --keyring K (with --signer ID, a signers "
            "file or its passphrase) or --public-key HEX"
        )
    return trusted, consulted_witness(trusted, witness)


SignerOption = Annotated[
    str | None,
    typer.Option(
        "--signer",
        help="The signing key id (sig-…) or public key the keyring must hold, taken out of "
        "band (privpipe keys list prints it).",
    ),
]
WitnessOption = Annotated[
    Path | None,
    typer.Option(
        "--witness",
        help="The witness file of the signer's keyring (default: KEYRING.witness beside "
        "--keyring).",
    ),
]
SignersOption = Annotated[
    Path | None,
    typer.Option(
        "--signers",
        help="YAML file of trusted audit signers (signers: [{name, public_key}], as for "
        f"policies; default: ${SIGNERS_ENV}, else ~/.privpipe/audit-signers.yaml).",
    ),
]


OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace outputs in a non-empty folder.")
]
DeviceOption = Annotated[
    str, typer.Option("--device", help="auto (CUDA when present), cpu or cuda.")
]
LedgerOption = Annotated[
    Path | None,
    typer.Option(
        "--ledger",
        envvar="PRIVPIPE_LEDGER",
        help="Privacy budget ledger: a signed trail, witnessed beside the keyring "
        "(default ~/.privpipe/ledger.jsonl).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="End stdout with one JSON summary line.")]


def audit_target(ring: Any, audit: Path | None) -> None:
    """Check, before a key operation, that ``ring`` may sign its trail (a trail the
    pipeline signed needs the audit scope): refused up front, not after the work."""
    from privacy.audit import AuditTrail

    AuditTrail(audit or ring.path.parent / "audit.jsonl", ring)


def audit_key_op(ring: Any, audit: Path | None, step: str, **fields: Any) -> None:
    """Record a key operation in the keyring's trail (or --audit), signed at once."""
    from privacy.audit import AuditTrail

    trail_path = audit or ring.path.parent / "audit.jsonl"
    with AuditTrail(trail_path, ring, context={"run_id": None, "flow": "keys"}) as trail:
        trail.append(step, **fields)


def format_value(value: Any) -> str:
    if value is None:
        return ""
    return (
        f"{value:,}"
        if isinstance(value, int)
        else f"{value:.3f}"
        if isinstance(value, float)
        else str(value)
    )


def stderr_console() -> Any:
    """Where progress goes: stderr, silent under --quiet."""
    from rich.console import Console

    return Console(stderr=True, quiet=STATE["quiet"])


def progress_bar(console: Any = None) -> Any:
    """The one progress bar of the long commands: spinner, what, bar, done/total, time;
    on stderr (silent under --quiet), cleared when it ends."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or stderr_console(),
        transient=True,
    )


def start_prefect_early(policy: Any) -> None:
    """Once a flow command's policy is known to be valid: start Prefect's temporary
    server in the background (unless a server is named or ``privpipe server start``
    runs), so it boots while the keyring unlocks and the flow's modules load."""
    from flows import _server
    from flows._prefect_env import configure_prefect, spawn_temporary_server

    configure_prefect("INFO" if STATE["verbose"] else "CRITICAL")
    _prewarm(policy)
    if os.environ.get("PREFECT_API_URL") or _server.running() is not None:
        return
    key_env = policy.keys.pseudonym_key_env
    spawn_temporary_server([key_env] if key_env else [])


def _prewarm(policy: Any) -> None:
    """Load in the background what the run will need while Prefect imports and its
    server answers: Presidio and the spaCy model when the policy has text for them, and
    the report's plotting library. Each is loaded once per process under its own lock,
    so a stage that needs one first waits for it rather than loading it twice."""
    import threading

    from privacy.detect import needs_presidio

    def load() -> None:
        with contextlib.suppress(Exception):  # the stage that needs it reports a failure
            if needs_presidio(policy):
                from privacy.detect import analyzer

                analyzer()
            from privacy.report import load_plotting

            load_plotting()

    threading.Thread(target=load, name="privpipe-prewarm", daemon=True).start()


def use_prefect_server(extra_secrets: Iterable[str] = ()) -> str | None:
    """Where this command's flows report (after ``configure_prefect``): the server
    ``PREFECT_API_URL`` names; else the local one ``privpipe server start`` runs, which
    one stderr line names; else Prefect's temporary server, started now without the
    secret variables (and ``extra_secrets``) in its environment (or once the one
    :func:`start_prefect_early` started answers). Returns the server's API URL (None:
    the one ``PREFECT_API_URL`` named already)."""
    from flows import _server
    from flows._prefect_env import point_prefect_at, start_temporary_server

    if not os.environ.get("PREFECT_API_URL"):
        local = _server.running()
        if local is not None:
            point_prefect_at(local.url)  # this process and what it starts
            echo_err(f"using Prefect server at {local.url}")
            return local.url
    return start_temporary_server(extra_secrets)
