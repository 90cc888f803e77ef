"""privpipe audit: verify and read audit trails."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from flows._cli_app import (
    _fmt,
    audit_app,
    keyring_option,
    trusted_key,
)


@audit_app.command("verify")
def audit_verify(
    path: Annotated[Path, typer.Argument(help="Audit trail (JSON lines).")],
    keyring: Annotated[
        Path | None,
        keyring_option("Keyring whose public signing key is trusted (no passphrase needed)."),
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option("--public-key", help="Trusted Ed25519 public key (hex), given out of band."),
    ] = None,
) -> None:
    """Check every hash, link and signature. Exit 0 if intact, 3 naming the first bad line."""
    from privacy.audit import verify_trail
    from privacy.errors import KeyAccessError

    trusted = trusted_key(public_key, keyring)
    if trusted is None:
        raise KeyAccessError("audit verify needs the trusted key: --keyring K or --public-key HEX")
    summary = verify_trail(path, trusted)
    typer.echo(
        f"{path}: intact: {summary.records} records ({summary.steps} steps, "
        f"{summary.failed_steps} failed; {summary.checkpoints} signed checkpoints), "
        f"{len(summary.runs)} runs, head {summary.head[:16]}…, signer {summary.signer}"
    )


@audit_app.command("show")
def audit_show(
    path: Annotated[Path, typer.Argument(help="Audit trail (JSON lines).")],
    run: Annotated[
        str | None, typer.Option("--run", help="Run id (default: the latest run).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the records as JSON.")] = False,
) -> None:
    """Print one run's steps as a table (not a verification: use `audit verify`)."""
    from privacy.audit import read_trail
    from privacy.errors import InputError

    if not path.is_file():
        raise InputError(f"{path}: audit trail not found")
    records = read_trail(path)
    if run is None:
        runs = [r["run_id"] for r in records if r.get("run_id")]
        run = runs[-1] if runs else None
    chosen = [r for r in records if r.get("run_id") == run]
    if not chosen:
        raise InputError(f"{path}: no records of run {run}")
    if as_json:
        typer.echo(json.dumps(chosen, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    first = chosen[0]
    policy = first.get("policy") or {}
    table = Table(
        title=f"run {run} ({first.get('flow', '')}) on {first['time'][:10]}",
        caption=(
            f"policy {policy.get('id')} sha256 {str(policy.get('sha256', ''))[:16]}…, "
            if policy
            else ""
        )
        + f"by {first['actor']['user']}@{first['actor']['host']}"
        + (f", operator {first['actor']['operator']}" if "operator" in first["actor"] else ""),
    )
    for column in ("seq", "time", "step", "outcome", "error", "rows in", "rows out", "seconds"):
        numeric = column in ("seq", "rows in", "rows out", "seconds")
        table.add_column(
            column, justify="right" if numeric else "left", no_wrap=numeric or column == "time"
        )
    width = None if sys.stdout.isatty() else 120  # pipes and files get the whole table
    for r in chosen:
        counts = r.get("counts", {})
        table.add_row(
            str(r["seq"]),
            r["time"][11:19],
            r["step"],
            r["outcome"],
            r.get("error") or "",
            _fmt(counts.get("rows_in")),
            _fmt(counts.get("rows_out")),
            _fmt(r.get("duration_s")),
        )
    Console(width=width).print(table)
