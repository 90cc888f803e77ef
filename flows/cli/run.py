"""privpipe run: sanitize an input, then train on the result, in one flow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import (
    STATE,
    DeviceOption,
    JsonOption,
    LedgerOption,
    OverwriteOption,
    app,
    keyring_option,
    stderr_console,
)
from flows.cli.sanitize import check_run_inputs, flow_source, print_summary
from flows.cli.train import check_training, print_card


@app.command()
def run(
    policy: Annotated[Path, typer.Option("--policy", "-p", help="Policy YAML file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder: sanitized/ and model/.")],
    input_path: Annotated[
        Path | None,
        typer.Argument(
            metavar="INPUT",
            help="CSV, Parquet or JSON Lines (or .sealed): a path or s3://bucket/key; none "
            "when the policy reads a database (input.kind: postgres).",
        ),
    ] = None,
    device: DeviceOption = "auto",
    ledger: LedgerOption = None,
    overwrite: OverwriteOption = False,
    as_json: JsonOption = False,
    keyring: Annotated[
        Path | None, keyring_option("Keyring that seals the vault, outputs and weights.")
    ] = None,
) -> None:
    """Sanitize INPUT, then train the policy's model on the result, in one flow:
    OUT/sanitized (as `privpipe sanitize`) and OUT/model (as `privpipe train`), then
    OUT/synthetic and OUT/stats when the policy has synthetic: / statistics: sections
    (as `privpipe synthesize` and `privpipe stats`), all charged to one ledger."""
    from flows._prefect_env import configure_prefect
    from flows.cli.app import use_prefect_server
    from privacy.dp import default_ledger_path

    STATE["json"] = as_json
    check_training(policy, device)
    ring_path = check_run_inputs(input_path, policy, out / "sanitized", overwrite, keyring)
    ledger_path = ledger or default_ledger_path()
    configure_prefect("INFO" if STATE["verbose"] else "CRITICAL")
    use_prefect_server()  # a temporary one without the passphrase in its environment
    with stderr_console().status("sanitize, then train…"):
        from flows.run import run_flow
        from privacy.policy import load_policy

        summary = run_flow(
            flow_source(input_path, load_policy(policy)),
            str(policy.resolve()),
            str(out.resolve()),
            str(ring_path.resolve()),
            str(ledger_path.resolve()),
            device,
            overwrite,
        )
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
        return
    print_summary(summary["sanitize"])
    print_card(summary["train"]["card"], out / "model")
    from flows.cli.release import print_release

    for kind, folder in (("synthetic", "synthetic"), ("statistics", "stats")):
        if kind in summary:
            print_release(summary[kind]["card"], out / folder)
