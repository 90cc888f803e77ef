"""privpipe report: the compliance review report of a run, as one HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import SignerOption, SignersOption, app, echo_err, keyring_option, trusted_key


@app.command()
def report(
    run_dir: Annotated[
        Path,
        typer.Argument(
            metavar="RUNDIR", help="A sanitize output, a model folder, or a `run` folder."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")],
    keyring: Annotated[
        Path | None, keyring_option("Keyring whose public signing key verifies the trail.")
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option("--public-key", help="The trusted Ed25519 public key (hex), instead."),
    ] = None,
    signer: SignerOption = None,
    signers: SignersOption = None,
) -> None:
    """Write a self-contained HTML report a reviewer can read: summary, audit trail
    verification, policy, timeline, PII findings, k-anonymity and risk, differential
    privacy, keys. Counts, hashes and figures only; it fetches nothing."""
    from privacy.audit import witness_path
    from privacy.io import atomic_write_bytes
    from privacy.report import build_report

    trusted = trusted_key(public_key, keyring, signer=signer, signers=signers)
    key = trusted.public_key if trusted is not None else None
    witness = witness_path(trusted.keyring) if trusted and trusted.keyring else None
    atomic_write_bytes(out, build_report(run_dir, key, witness=witness).encode("utf-8"))
    echo_err(f"wrote {out}")
