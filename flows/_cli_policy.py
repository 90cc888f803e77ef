"""privpipe policy: validate policies, export their JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flows._cli_app import (
    _err,
    policy_app,
)

# --------------------------------------------------------------------------- policy


@policy_app.command("schema")
def policy_schema(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to FILE instead of stdout.")
    ] = None,
) -> None:
    """Print (or write) the JSON Schema of a policy file."""
    from privacy.io import atomic_write_bytes
    from privacy.policy import policy_json_schema

    text = json.dumps(policy_json_schema(), indent=2, sort_keys=True) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        atomic_write_bytes(out, text.encode("utf-8"))
        _err(f"wrote {out}")


@policy_app.command("check")
def policy_check(
    file: Annotated[Path, typer.Argument(help="Policy YAML file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate a policy; print its name, canonical hash and rules."""
    from privacy.policy import load_policy

    policy = load_policy(file)
    rules: dict[str, int] = {}
    for spec in policy.columns.values():
        rules[spec.rule] = rules.get(spec.rule, 0) + 1
    if as_json:
        typer.echo(
            json.dumps({"status": "ok", "name": policy.name, "sha256": policy.hash, "rules": rules})
        )
        return
    summary = ", ".join(f"{n} {r}" for r, n in sorted(rules.items()))
    typer.echo(f"{file}: ok — policy {policy.name!r}, {len(policy.columns)} columns ({summary})")
    typer.echo(f"sha256 {policy.hash}")
