"""privpipe report: the compliance review report of a run, or of a serve output root,
as one self-contained HTML file (and a PDF, printed with headless Chromium)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import SignerOption, SignersOption, app, echo_err, keyring_option, trusted_key


# Long by its option declarations; the body is about 40 lines.
@app.command()
def report(
    run_dir: Annotated[
        Path,
        typer.Argument(
            metavar="RUNDIR",
            help="A sanitize output, a model folder, a `run` folder, a failed run's folder, "
            "or a `serve` output root (one page for all its dated runs).",
        ),
    ],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The HTML file to write.")] = None,
    pdf: Annotated[
        Path | None,
        typer.Option(
            "--pdf",
            help="Also print the report to this PDF with headless Chromium (for signing "
            "and archiving; Chromium is found on PATH or named by PRIVPIPE_CHROMIUM).",
        ),
    ] = None,
    ledger: Annotated[
        Path | None,
        typer.Option(
            "--ledger", help="The budget ledger: charts the ε each run of the data set spent."
        ),
    ] = None,
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
    """Write a self-contained HTML report a reviewer can sign: the verdict (RELEASABLE or
    NOT RELEASABLE) with one row per guarantee and its evidence, then column by column,
    personal data found, k-anonymity and risk, differential privacy and the model, the
    audit trails, the steps and the keys. On a `serve` output root: each run's verdict,
    rows, k, suppression, residual PII and failures, the skipped unchanged inputs and
    the trends. Counts, hashes and figures only; it fetches nothing. Without a trusted
    key (--keyring or --public-key) the trails are not verified and the verdict is
    NOT RELEASABLE."""
    from privacy.errors import InputError
    from privacy.integrity import witness_path
    from privacy.io import atomic_write_bytes
    from privacy.report import (
        build_report,
        build_schedule_report,
        find_run,
        is_schedule_root,
        print_pdf,
    )

    if out is None and pdf is None:
        raise InputError("report: give --out FILE.html, --pdf FILE.pdf, or both")
    trusted = trusted_key(public_key, keyring, signer=signer, signers=signers)
    key = trusted.public_key if trusted is not None else None
    witness = witness_path(trusted.keyring) if trusted and trusted.keyring else None
    try:
        find_run(run_dir)
        schedule = False
    except InputError:
        if not is_schedule_root(run_dir):
            raise
        schedule = True
    if schedule:
        text = build_schedule_report(run_dir, key, witness=witness)
    else:
        text = build_report(run_dir, key, witness=witness, ledger=ledger)
    data = text.encode("utf-8")
    if out is not None:
        atomic_write_bytes(out, data)
        echo_err(f"wrote {out} (sha256 {hashlib.sha256(data).hexdigest()})")
    if pdf is not None:
        if out is not None:
            print_pdf(out, pdf)
        else:
            with tempfile.TemporaryDirectory(prefix="privpipe-report-") as scratch:
                page = Path(scratch) / "report.html"
                page.write_bytes(data)
                print_pdf(page, pdf)
        echo_err(f"wrote {pdf} (sha256 {hashlib.sha256(pdf.read_bytes()).hexdigest()})")
