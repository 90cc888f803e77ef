"""privpipe demo: synthetic data, a demo keyring, and every stage on the demo policy."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import (
    DEFAULT_DEMO_DIR,
    DEMO_PASSPHRASE,
    DEMO_PASSPHRASES,
    PASSPHRASE_ENV,
    app,
)
from flows.cli.sanitize import check_run_inputs, print_summary, run_sanitize


# Long: the demo's steps in order, each a call and a line of output.
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
    from privacy.io import private_dir, write_frame
    from privacy.synth import synthesize

    policy_file = _demo_policy_path()
    private_dir(out)  # created 0700 (an existing folder keeps its mode)
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
    DEMO_PASSPHRASES[keyring.resolve()] = passphrase
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
    ring_path = check_run_inputs(raw_file, policy_file, result_dir, overwrite, keyring)
    summary = run_sanitize(raw_file, policy_file, result_dir, ring_path, overwrite, quiet=False)
    print_summary(summary)
    from privacy.audit import verify_trail
    from privacy.integrity import witness_path

    trail = Path(summary["outputs"]["audit"])
    witness = witness_path(ring.path)
    checked = verify_trail(trail, ring.signing_public_key, witness=witness)
    typer.echo(
        f"audit trail verified: {checked.records} records, {checked.checkpoints} signed "
        f"checkpoints, {checked.witnessed} witnessed in {witness} (privpipe audit show {trail})"
    )
    typer.echo(
        f"to read the output: PRIVPIPE_PASSPHRASE=... privpipe decrypt "
        f"{summary['outputs']['data']} data.parquet --keyring {keyring}"
    )
    from privacy.policy import load_policy

    if load_policy(policy_file).training.enabled:
        from flows.cli.train import print_card, run_train

        model_dir = out / "model"
        # The demo makes its data anew on every run, so it keeps a ledger of its own,
        # started afresh: a real data set's ledger (--ledger) is never reset. A ledger's
        # heads are in the keyring's witness, which refuses one emptied where it stood,
        # so each demo run starts a ledger of a new name.
        for old in [out / "ledger.json", *out.glob("demo-ledger-*.jsonl*")]:
            old.unlink(missing_ok=True)
        ledger = out / f"demo-ledger-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.jsonl"
        trained = run_train(result_dir, policy_file, model_dir, ring_path, ledger, "auto", True)
        print_card(trained["card"], model_dir)
        last_trail = model_dir / "audit.jsonl"
        from flows.cli.release import print_release, run_release

        for kind, folder in (("synthetic", "synthetic"), ("statistics", "stats")):
            if kind in load_policy(policy_file).releases():  # on the same ledger
                released = run_release(
                    kind, result_dir, policy_file, out / folder, ring_path, ledger, True, out
                )
                print_release(released["card"], out / folder)
                last_trail = out / folder / "audit.jsonl"
    else:
        last_trail = result_dir / "audit.jsonl"
    from privacy.report import load_run, record_report, verdict, write_report

    ledger_file = ledger if load_policy(policy_file).training.enabled else None
    report = write_report(out, ring.signing_public_key, witness=witness, ledger=ledger_file)
    record_report(report, last_trail, ring)  # the run's report, in the last trail it covers
    line = verdict(load_run(out, ring.signing_public_key, witness=witness)).line
    typer.echo(f"review report: {report}  ({line})")


def _demo_policy_path() -> Path:
    """The demo policy: from the source tree, or the copy installed with the package."""
    package = Path(__file__).resolve().parents[1]  # flows/
    for folder in (package.parent / "policies", package / "policies"):
        candidate = folder / "demo.yaml"
        if candidate.exists():
            return candidate
    from privacy.errors import PolicyError

    raise PolicyError("policies/demo.yaml: not found next to the installed package")
