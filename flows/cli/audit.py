"""privpipe audit: verify and read audit trails."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import (
    SignerOption,
    SignersOption,
    WitnessOption,
    audit_app,
    format_value,
    keyring_option,
    open_keyring,
    verifying_key,
)


# Long by its option declarations; the body is about 50 lines.
@audit_app.command("verify")
def audit_verify(
    path: Annotated[Path, typer.Argument(help="Audit trail (JSON lines).")],
    keyring: Annotated[
        Path | None,
        keyring_option(
            "Keyring whose public signing key is trusted once it proves itself (--signer, "
            "the signers file, or its passphrase); its witness is consulted."
        ),
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option("--public-key", help="Trusted Ed25519 public key (hex), given out of band."),
    ] = None,
    signer: SignerOption = None,
    signers: SignersOption = None,
    witness: WitnessOption = None,
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            help="A head hash (or a prefix of 16+ hex digits) taken out of band that the "
            "trail must hold.",
        ),
    ] = None,
    expect_length: Annotated[
        int | None,
        typer.Option(
            "--expect-length",
            min=1,
            help="The record number of --expect-head (or the "
            "least number of records the trail must hold).",
        ),
    ] = None,
) -> None:
    """Check every hash, link and signature, that the trail holds every head its
    witness recorded (and --expect-head), and that every file its last run's signed
    records name (the published data, the manifest, the vault copy, the training view,
    the model, the card, the report) is there with the recorded SHA-256. Exit 0 if
    intact, 3 naming the first bad line or file. An empty trail is no evidence: exit 3.

    The one line says which key was trusted and why, and which witness was consulted."""
    from privacy.audit import AuditVerificationError, recorded_files, verify_trail

    trusted, consulted = verifying_key(
        "audit verify needs the trusted key",
        public_key,
        keyring,
        signer=signer,
        signers=signers,
        witness=witness,
    )
    records: list[dict[str, object]] = []
    summary = verify_trail(
        path,
        trusted.public_key,
        witness=consulted,
        expect_length=expect_length,
        expect_head=expect_head,
        collect=records,
    )
    if not records:
        raise AuditVerificationError(
            f"{path}: no records: an empty trail is no evidence of any run (emptied, or made "
            "by hand); the run's own trail holds at least its first step"
        )
    if consulted is not None:
        seen = f"witness {consulted}: {summary.witnessed} of {summary.records} records witnessed"
    elif trusted.keyring is not None:
        seen = f"no witness beside {trusted.keyring}"
    else:
        seen = "no witness consulted (--witness FILE)"
    pinned = f", --expect-head held at record {summary.pinned}" if summary.pinned else ""
    files = recorded_files(path, records)  # the last run's artifacts, re-hashed
    for bad in (f for f in files if not f.ok):
        raise AuditVerificationError(bad.problem())
    reports = [f for f in files if f.step == "report"]
    if reports:
        pinned += f"; {len(reports)} of {len(reports)} recorded report(s) match"
    others = len(files) - len(reports)
    if others:
        pinned += f"; {others} recorded file(s) match their signed SHA-256"
    if summary.supersedes:
        pinned += f"; {summary.superseded()}"
    typer.echo(
        f"{path}: intact: {summary.records} records ({summary.steps} steps, "
        f"{summary.failed_steps} failed; {summary.checkpoints} signed checkpoints), "
        f"{len(summary.runs)} runs, head {summary.head[:16]}…; signer {trusted}; "
        f"{seen}{pinned}"
    )


@audit_app.command("repair")
def audit_repair(
    path: Annotated[Path, typer.Argument(help="Audit trail (JSON lines).")],
    keyring: Annotated[
        Path, keyring_option("The keyring that signs the trail (its passphrase is needed).")
    ],
) -> None:
    """Cut a torn last line, or records no signature covers, back to the last checkpoint
    this keyring signed; the cut bytes are kept beside the trail (TRAIL.cut-TIME) and
    the repair is recorded as a signed step. Never cuts below what the witness recorded."""
    from privacy.audit import AuditTrail
    from privacy.errors import InputError

    if not path.is_file():
        raise InputError(f"{path}: audit trail not found")
    ring = open_keyring(keyring)
    cut = AuditTrail(path, ring, check=False).repair()
    if not cut["cut_bytes"]:
        typer.echo(
            f"{path}: nothing to repair: it ends in a checkpoint signed by {ring.signing_key_id}"
        )
        return
    typer.echo(
        f"{path}: cut {cut['cut_lines']} lines ({cut['cut_bytes']} bytes, sha256 "
        f"{cut['cut_sha256'][:16]}…) after the last signed checkpoint; kept in "
        f"{cut['saved_to']}; repair recorded"
    )


@audit_app.command("retire")
def audit_retire(
    path: Annotated[Path, typer.Argument(help="The trail path to let go (removed on purpose).")],
    keyring: Annotated[
        Path, keyring_option("The keyring whose witness knows the trail (its passphrase).")
    ],
    reason: Annotated[
        str, typer.Option("--reason", help="Why the trail was removed (recorded, signed).")
    ],
) -> None:
    """Let a new trail start where a witnessed one was removed on purpose (rm -rf of an
    output folder): a signed `retire` entry in the keyring's witness, with the reason.
    The old trail's heads still bind it wherever a copy of it turns up."""
    from privacy.errors import InputError
    from privacy.integrity import Witness, witness_path

    if not reason.strip():
        raise InputError("--reason: retiring a trail needs a reason (it is recorded)")
    if path.exists() and path.stat().st_size:
        raise InputError(f"{path}: the trail is still there: retire only a trail that is gone")
    ring = open_keyring(keyring)
    entry = Witness(witness_path(ring.path), ring).retire(path, reason=reason)
    typer.echo(
        f"{path}: retired in {witness_path(ring.path)} (entry {entry['seq']}; it had "
        f"{entry['length']} records); a new trail may start there"
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
            format_value(counts.get("rows_in")),
            format_value(counts.get("rows_out")),
            format_value(r.get("duration_s")),
        )
    Console(width=width).print(table)
