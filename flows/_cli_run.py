"""privpipe synth, sanitize and demo: the commands that make or move data."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from flows._cli_app import (
    _DEMO_PASSPHRASES,
    _STATE,
    DEFAULT_DEMO_DIR,
    DEMO_PASSPHRASE,
    PASSPHRASE_ENV,
    AuditOption,
    _err,
    _open_keyring,
    app,
    keyring_option,
)

# --------------------------------------------------------------------------- synth


@app.command()
def synth(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output file: .csv, .parquet or .jsonl.")
    ],
    rows: Annotated[int, typer.Option("--rows", "-n", min=1, help="Number of people.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same file.")] = 0,
    keyring: Annotated[Path | None, keyring_option("Seal a .sealed output.")] = None,
) -> None:
    """Make synthetic raw personal data shaped like UCI Adult (deterministic per seed).

    Name the output ``people.csv.sealed`` (with --keyring) to seal it at rest."""
    from privacy.io import SEALED_SUFFIX, detect_format, plain_name, write_frame
    from privacy.synth import synthesize

    detect_format(plain_name(out))
    ring = None
    if out.suffix == SEALED_SUFFIX:
        if keyring is None:
            from privacy.errors import KeyAccessError

            raise KeyAccessError(f"{out}: writing a sealed file needs --keyring")
        ring = _open_keyring(keyring)
    started = time.perf_counter()
    frame = synthesize(rows, seed)
    write_frame(frame, out, keys=ring, associated_data={"artifact": "synthetic"})
    _err(f"wrote {rows:,} rows to {out} in {time.perf_counter() - started:.1f} s")


# --------------------------------------------------------------------------- sanitize


def _check_run_inputs(
    input_path: Path, policy_file: Path, out: Path, overwrite: bool, keyring: Path | None
) -> Path:
    """Fail fast, before Prefect starts, on what can be checked without reading data;
    unlock the keyring (asking for its passphrase if need be). Returns its path."""
    from flows import _keys
    from privacy.errors import InputError, OutputError
    from privacy.io import detect_format, plain_name
    from privacy.policy import load_policy
    from privacy.stages import check_supported
    from privacy.transform import operators_for

    policy = load_policy(policy_file)
    check_supported(policy)
    if not input_path.exists():
        raise InputError(f"{input_path}: input file not found")
    detect_format(plain_name(input_path), policy.input.format)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"{out}: output folder exists and is not empty (use --overwrite)")
    ring_path = _keys.resolve_keyring_path(keyring, policy)
    ring = _open_keyring(ring_path)
    _keys.register(ring)
    if any(op.uses_key() for op in operators_for(policy)):
        _keys.pseudonym_provider(policy, ring).pseudonym_key()
    return ring_path


def _run_sanitize(
    input_path: Path,
    policy_file: Path,
    out: Path,
    keyring: Path,
    overwrite: bool,
    quiet: bool,
    audit: Path | None = None,
) -> dict[str, Any]:
    from flows._prefect_env import configure_prefect

    configure_prefect("INFO" if _STATE["verbose"] else "CRITICAL")
    import threading

    from privacy.detect import analyzer

    # Load the spaCy model while Prefect's temporary server starts (both take seconds);
    # the detect task then finds the engine built.
    threading.Thread(target=analyzer, name="privpipe-nlp-warmup", daemon=True).start()
    from flows._cli_app import _stderr_console

    console = _stderr_console()
    with console.status("starting Prefect (embedded)…", spinner="dots") as status:
        from flows import sanitize

        started = time.perf_counter()

        def progress(record: dict[str, Any]) -> None:
            if quiet:
                return
            note = "" if record["status"] == "ok" else f" [{record['status']}]"
            console.print(
                f"  ✓ {record['stage']:<10} {record['rows_out']:>10,} rows"
                f"  {record['duration_s']:.2f} s{note}",
                markup=False,
                highlight=False,
            )
            status.update(f"running sanitize ({time.perf_counter() - started:.0f} s)…")

        def searching(done: int, total: int) -> None:
            status.update(f"anonymize: searching generalizations, {done:,} of {total:,} nodes…")

        sanitize.set_progress(progress)
        sanitize.set_search_progress(searching)
        try:
            return sanitize.sanitize_flow(
                str(input_path.resolve()),
                str(policy_file.resolve()),
                str(out.resolve()),
                str(keyring.resolve()),
                overwrite,
                str(audit.resolve()) if audit else None,
            )
        finally:
            sanitize.set_progress(None)
            sanitize.set_search_progress(None)


@app.command()
def sanitize(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="CSV, Parquet or JSON Lines.")
    ],
    policy: Annotated[Path, typer.Option("--policy", "-p", help="Policy YAML file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace outputs in a non-empty folder.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="End stdout with one JSON summary line.")
    ] = False,
    keyring: Annotated[
        Path | None,
        keyring_option(
            "Keyring that seals the vault, intermediates and output (default: the "
            "policy's keys.keyring). Passphrase from PRIVPIPE_PASSPHRASE or a prompt."
        ),
    ] = None,
    audit: AuditOption = None,
) -> None:
    """Run the sanitize flow: ingest, detect, transform, anonymize, gate, publish.

    INPUT may be sealed (e.g. people.csv.sealed): it is decrypted in memory."""
    _STATE["json"] = as_json
    ring = _check_run_inputs(input_path, policy, out, overwrite, keyring)
    summary = _run_sanitize(input_path, policy, out, ring, overwrite, quiet=as_json, audit=audit)
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        _print_summary(summary)


def _print_summary(summary: dict[str, Any]) -> None:
    typer.echo(
        f"sanitized {summary['rows_in']:,} rows -> {summary['rows_out']:,} rows "
        f"(run {summary['run_id']})"
    )
    for name, path in summary["outputs"].items():
        typer.echo(f"  {name:<9} {path}")
    anonymity = summary["stages"]["anonymize"]["counts"]
    if "k_achieved" in anonymity:
        node = anonymity["node"]
        levels = ", ".join(f"{c} {v}" for c, v in node.items()) if node else "Mondrian"
        extra = "".join(
            f", {name} {anonymity[key]:g}"
            for name, key in (("l", "l_achieved"), ("t", "t_achieved"))
            if anonymity.get(key) is not None
        )
        before, after = anonymity["risk_before"], anonymity["risk_after"]
        typer.echo(
            f"  k-anonymity: k {anonymity['k_achieved']}{extra}; {anonymity['classes']:,} "
            f"classes, {anonymity['suppressed']:,} records suppressed; levels: {levels}"
        )
        typer.echo(
            f"  risk: highest prosecutor risk {before['prosecutor_highest']:.3f} -> "
            f"{after['prosecutor_highest']:.3f}; records above {after['threshold']:g}: "
            f"{before['records_above_threshold']:.1%} -> {after['records_above_threshold']:.1%}"
        )
    pending = [s for s, r in summary["stages"].items() if r["status"] != "ok"]
    if pending:
        typer.echo(f"  note: stages not yet enforcing: {', '.join(pending)}")


# --------------------------------------------------------------------------- demo


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for everything.")] = (
        DEFAULT_DEMO_DIR
    ),
    rows: Annotated[int, typer.Option("--rows", "-n", min=10, help="Synthetic people.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 7,
    overwrite: Annotated[
        bool, typer.Option("--overwrite/--no-overwrite", help="Reuse an existing demo folder.")
    ] = True,
) -> None:
    """Make synthetic data and a demo keyring, then run every stage on the demo policy.

    Everything it writes that holds (synthetic) personal data is sealed."""
    from flows import _keys
    from privacy.crypto import Keyring
    from privacy.io import write_frame
    from privacy.synth import synthesize

    policy_file = _demo_policy_path()
    out.mkdir(parents=True, exist_ok=True)
    keyring = out / "keys" / "keyring.json"
    raw_file = out / "raw" / "people.csv.sealed"
    result_dir = out / "sanitized"
    if result_dir.exists() and any(result_dir.iterdir()) and not overwrite:
        from privacy.errors import OutputError

        raise OutputError(f"{result_dir}: output folder exists and is not empty (use --overwrite)")

    passphrase = os.environ.get(PASSPHRASE_ENV) or DEMO_PASSPHRASE
    if keyring.exists():
        ring = Keyring.open(keyring, passphrase)
    else:
        keyring.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(keyring.parent, 0o700)
        ring = Keyring.create(keyring, passphrase)
    _DEMO_PASSPHRASES[keyring.resolve()] = passphrase
    _keys.register(ring)
    shown = (
        "from PRIVPIPE_PASSPHRASE"
        if passphrase != DEMO_PASSPHRASE
        else (f"passphrase {DEMO_PASSPHRASE!r}: a demo-only value, never use it for real data")
    )
    typer.echo(f"demo keyring        {keyring}  ({shown})")

    write_frame(
        synthesize(rows, seed), raw_file, keys=ring, associated_data={"artifact": "synthetic"}
    )
    typer.echo(f"synthetic raw data  {raw_file}  ({rows:,} rows, seed {seed}, sealed)")
    ring_path = _check_run_inputs(raw_file, policy_file, result_dir, overwrite, keyring)
    summary = _run_sanitize(raw_file, policy_file, result_dir, ring_path, overwrite, quiet=False)
    _print_summary(summary)
    from privacy.audit import verify_trail

    trail = Path(summary["outputs"]["audit"])
    checked = verify_trail(trail, ring.signing_public_key)
    typer.echo(
        f"audit trail verified: {checked.records} records, {checked.checkpoints} signed "
        f"checkpoints (privpipe audit show {trail})"
    )
    typer.echo(
        f"to read the output: PRIVPIPE_PASSPHRASE=... privpipe decrypt "
        f"{summary['outputs']['data']} data.parquet --keyring {keyring}"
    )
    from privacy.policy import load_policy

    if load_policy(policy_file).training.enabled:
        from flows._cli_train import _print_card, _run_train

        model_dir = out / "model"
        # The demo makes its data anew on every run, so it keeps a ledger of its own,
        # started afresh: a real data set's ledger (--ledger) is never reset.
        ledger = out / "ledger.json"
        ledger.unlink(missing_ok=True)
        trained = _run_train(result_dir, policy_file, model_dir, ring_path, ledger, "auto", True)
        _print_card(trained["card"], model_dir)
    from privacy.report import write_report

    typer.echo(f"review report: {write_report(out, ring.signing_public_key)}")


def _demo_policy_path() -> Path:
    """The demo policy: from the source tree, or the copy installed with the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "policies" / "demo.yaml", here / "policies" / "demo.yaml"):
        if candidate.exists():
            return candidate
    from privacy.errors import PolicyError

    raise PolicyError("policies/demo.yaml: not found next to the installed package")
