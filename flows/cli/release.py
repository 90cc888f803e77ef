"""privpipe synthesize / privpipe stats: DP releases beside a model, from a sanitize
output's training view, charged to the same budget ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.app import (
    STATE,
    JsonOption,
    LedgerOption,
    OverwriteOption,
    app,
    keyring_option,
    open_keyring,
    stderr_console,
)

DataArgument = Annotated[
    Path,
    typer.Argument(
        metavar="DATA",
        help="A sanitize output folder of this policy (it holds the sealed training view).",
    ),
]
PolicyOption = Annotated[Path, typer.Option("--policy", "-p", help="Policy YAML file.")]


def check_release(
    data: Path, policy: Path, out: Path, overwrite: bool, kind: str, keyring: Path | None
) -> tuple[Any, Path]:
    """The policy and the keyring's path, once the release can run: its section is
    there, its plan holds (columns, domains), the keyring holds the vault scope (to
    open the training view) and the published one (to seal). Before Prefect starts."""
    from flows import _keys
    from privacy.dp import plan_statistics, plan_synthetic
    from privacy.errors import InputError, OutputError, PolicyError
    from privacy.policy import load_policy
    from privacy.policy_signing import enforce_policy_signature

    loaded = load_policy(policy)
    enforce_policy_signature(loaded)
    section = loaded.synthetic if kind == "synthetic" else loaded.statistics
    if section is None:
        raise PolicyError(f"{policy}: no {kind}: section (see policies/template.yaml)")
    if kind == "synthetic":  # a column without a domain is refused here, before Prefect
        plan_synthetic(loaded)
    else:
        plan_statistics(loaded)
    if not data.is_dir():
        raise InputError(f"{data}: not a sanitize output folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"{out}: output folder exists and is not empty (use --overwrite)")
    ring_path = _keys.resolve_keyring_path(keyring, loaded)
    ring = open_keyring(ring_path)
    ring.for_scope(loaded.keys.seal.vault)
    if loaded.outputs.seal:
        ring.for_scope(loaded.keys.seal.published)
    return loaded, ring_path


def run_release(
    kind: str, data: Path, policy: Path, out: Path, ring: Path, ledger: Path, overwrite: bool,
    out_root: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    from flows._prefect_env import configure_prefect
    from flows.cli.app import use_prefect_server

    configure_prefect("INFO" if STATE["verbose"] else "CRITICAL")
    use_prefect_server()
    from flows import release

    run = release.synthesize_flow if kind == "synthetic" else release.statistics_flow
    with stderr_console().status(f"{'synthesizing' if kind == 'synthetic' else 'measuring'}…"):
        return run(
            str(data.resolve()),
            str(policy.resolve()),
            str(out.resolve()),
            str(ring.resolve()),
            str(ledger.resolve()),
            overwrite,
            str(out_root.resolve()) if out_root else None,
        )


def _release_command(
    kind: str, data: Path, policy: Path, out: Path, ledger: Path | None, overwrite: bool,
    as_json: bool, keyring: Path | None,
) -> None:  # fmt: skip
    """What both release commands do: check, run the flow, print."""
    from privacy.dp import default_ledger_path

    STATE["json"] = as_json
    _, ring_path = check_release(data, policy, out, overwrite, kind, keyring)
    summary = run_release(
        kind, data, policy, out, ring_path, ledger or default_ledger_path(), overwrite
    )
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True, default=str))
        return
    print_release(summary["card"], out)


@app.command()
def synthesize(
    data: DataArgument,
    policy: PolicyOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the synthetic table.")],
    ledger: LedgerOption = None,
    overwrite: OverwriteOption = False,
    as_json: JsonOption = False,
    keyring: Annotated[
        Path | None, keyring_option("Keyring: opens the training view, seals the table.")
    ] = None,
) -> None:
    """A differentially private synthetic table (MST or AIM on Private-PGM) of DATA's
    training view, as the policy's synthetic: section says.

    Its ε is charged to the data set's budget before anything is measured (over budget:
    refused, exit 2, nothing changed); every column's domain comes from the policy. The
    table passes a gate (declared columns and rows; exact matches and a membership
    attack against a holdout) before it is written: synthetic.parquet.sealed,
    synthetic_card.json, audit.jsonl and report.html in --out."""
    _release_command("synthetic", data, policy, out, ledger, overwrite, as_json, keyring)


@app.command()
def stats(
    data: DataArgument,
    policy: PolicyOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the statistics.")],
    ledger: LedgerOption = None,
    overwrite: OverwriteOption = False,
    as_json: JsonOption = False,
    keyring: Annotated[
        Path | None, keyring_option("Keyring: opens the training view, seals the table.")
    ] = None,
) -> None:
    """Differentially private counts, sums and means by group (OpenDP's Laplace or
    Gaussian) of DATA's training view, as the policy's statistics: section says.

    Every declared group key is released, empty ones too; each value carries its noise
    scale and a 95 % interval. Charged to the data set's budget before any noise is
    drawn. Writes statistics.parquet[.sealed] (or .csv), statistics_card.json,
    audit.jsonl and report.html in --out."""
    _release_command("statistics", data, policy, out, ledger, overwrite, as_json, keyring)


def print_release(card: dict[str, Any], out: Path) -> None:
    """A release's figures in a few lines: ε, the ledger, and its checks."""
    privacy = card["privacy"]
    ledger = privacy["ledger"]
    spent = (
        f"budget of {ledger['label']} ({ledger['dataset']}): {ledger['spent_after']:g} of "
        f"{ledger['budget']:g} spent"
    )
    if card["kind"] == "synthetic":
        check, marginals = card["privacy_check"], card["utility"]["marginals"]
        typer.echo(
            f"synthesized {card['rows']:,} rows × {len(card['columns'])} columns with "
            f"{privacy['mechanism']}: ε {privacy['epsilon']:.3f} at δ {privacy['delta']:.2g} "
            f"(ρ {privacy['rho']:.4g}); {spent}"
        )
        typer.echo(
            f"  2-way marginal TVD mean {marginals['two_way_mean']:.4f}, worst "
            f"{marginals['two_way_max']:.4f}; exact matches {check['exact_match_share']:.4f} "
            f"(holdout {check['holdout_exact_match_share']:.4f}); membership AUC "
            f"{check['membership_auc']:.3f}"
        )
        fit = card["utility"]["tstr"]
        if fit:
            typer.echo(
                f"  TSTR ({fit['label']}): accuracy {fit['synthetic']['accuracy']:.4f}, F1 "
                f"{fit['synthetic']['f1']:.4f}; trained on real: {fit['real']['accuracy']:.4f}"
                f", F1 {fit['real']['f1']:.4f}"
            )
        typer.echo(f"  card {out / 'synthetic_card.json'}")
        return
    typer.echo(
        f"released {card['rows']:,} values in {len(card['queries'])} queries "
        f"({card['mechanism']}): ε {privacy['epsilon']:.3f}; {spent}"
    )
    for query in card["queries"]:
        typer.echo(
            f"  {query['name']}: {query['kind']} over {query['cells']} groups, noise scale "
            f"{query['noise_scale']:.4g} (sd {query['std']:.4g})"
        )
    typer.echo(f"  card {out / 'statistics_card.json'}")
