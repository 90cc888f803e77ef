"""privpipe risk: re-identification risk of a data set, before and after the policy's
k-anonymization (computed, never written)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.app import app, keyring_option, open_keyring, stderr_console


@app.command()
def risk(
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="CSV, Parquet or JSON Lines (or .sealed).")
    ],
    policy: Annotated[
        Path,
        typer.Option(
            "--policy", "-p", help="Quasi-identifiers, hierarchies and the privacy model."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    keyring: Annotated[Path | None, keyring_option("For a sealed INPUT.")] = None,
) -> None:
    """Prosecutor and marketer risk, and the share of records above the policy's risk
    threshold: for the data as it is, and after the policy's anonymization.

    Changes nothing and writes nothing; never prints a value from the data."""
    from privacy.io import read_input
    from privacy.kanon import assess_risk
    from privacy.policy import load_policy

    loaded = load_policy(policy)
    ring = open_keyring(keyring) if keyring is not None and keyring.exists() else None
    frame = read_input(input_path, loaded, ring)
    if as_json:
        report = assess_risk(frame, loaded)
        typer.echo(json.dumps({"input": str(input_path), **report}, sort_keys=True))
        return
    from rich.progress import Progress

    with Progress(transient=True, console=stderr_console()) as progress:
        task = progress.add_task("searching generalizations", total=None)
        report = assess_risk(
            frame,
            loaded,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    _print_risk(input_path, report)


def _print_risk(input_path: Path, report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    before, after = report["risk_before"], report["risk_after"]
    anonymization = report["anonymization"]
    table = Table(title=f"{input_path}: {report['records']:,} records, re-identification risk")
    for column in ("figure", "as is", "after the policy"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    rows = [
        ("records published", f"{before['records']:,}", f"{after['records']:,}"),
        ("equivalence classes", f"{before['classes']:,}", f"{after['classes']:,}"),
        (
            "prosecutor risk, highest",
            f"{before['prosecutor_highest']:.4f}",
            f"{after['prosecutor_highest']:.4f}",
        ),
        (
            "prosecutor risk, average",
            f"{before['prosecutor_average']:.4f}",
            f"{after['prosecutor_average']:.4f}",
        ),
        ("marketer risk", f"{before['marketer']:.4f}", f"{after['marketer']:.4f}"),
        (
            f"records above {before['threshold']:g}",
            f"{before['records_above_threshold']:.2%}",
            f"{after['records_above_threshold']:.2%}",
        ),
    ]
    for row in rows:
        table.add_row(*row)
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(table)
    node = anonymization.get("node")
    levels = ", ".join(f"{c}={v}" for c, v in node.items()) if node else "Mondrian partitions"
    console.print(
        f"after the policy: k={anonymization['k_achieved']}, "
        f"{anonymization['suppressed']:,} records suppressed, levels {levels}"
    )
