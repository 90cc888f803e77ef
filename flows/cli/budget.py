"""privpipe budget: what each data set has spent of its privacy budget, and changing one.

The ledger (``privacy.dp.BudgetLedger``) is a signed, witnessed trail: ``show`` verifies
it (every record, every signature, and every head the witness beside the keyring
recorded) before it prints a number, with the public key only; ``set`` is the
custodian's (a keyring holding the ``vault`` and ``pseudonym`` scopes) and is recorded
in the ledger with its reason and the actor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.app import (
    SignerOption,
    SignersOption,
    WitnessOption,
    app,
    keyring_option,
    open_keyring,
    verifying_key,
)

budget_app = typer.Typer(
    help="The privacy budget ledger: what each data set has spent, and changing a data "
    "set's budget (the custodian's, recorded).",
    no_args_is_help=True,
)
app.add_typer(budget_app, name="budget")

LedgerOption = Annotated[
    Path | None,
    typer.Option(
        "--ledger",
        envvar="PRIVPIPE_LEDGER",
        help="The ledger (default ~/.privpipe/ledger.jsonl, or PRIVPIPE_LEDGER).",
    ),
]
DatasetArgument = Annotated[
    str,
    typer.Argument(
        metavar="DATASET",
        help="A data set's id (ds-…, from `privpipe budget show`), or its label when one "
        "data set has it.",
    ),
]


def _ledger_path(ledger: Path | None) -> Path:
    from privacy.dp import default_ledger_path

    return ledger or default_ledger_path()


@budget_app.command("show")
def budget_show(
    dataset: Annotated[
        str | None,
        typer.Argument(
            metavar="[DATASET]",
            help="One data set (id or label), with its runs and budget changes; default: all.",
        ),
    ] = None,
    ledger: LedgerOption = None,
    keyring: Annotated[
        Path | None,
        keyring_option(
            "Keyring that signs the ledger: its public key, once it proves itself (--signer, "
            "the signers file, or its passphrase); its witness is consulted."
        ),
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option("--public-key", help="The ledger's signing key (hex), given out of band."),
    ] = None,
    signer: SignerOption = None,
    signers: SignersOption = None,
    witness: WitnessOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the data sets as JSON.")] = False,
) -> None:
    """Verify the ledger, then print each data set's spent ε, budget and runs.

    A ledger that does not verify (edited, cut, rolled back, deleted while its witness
    knows it) is refused with exit 3, naming what is wrong."""
    from privacy.dp import BudgetLedger
    from privacy.errors import PolicyError

    path = _ledger_path(ledger)
    trusted, consulted = verifying_key(
        "budget show needs the ledger's signing key",
        public_key,
        keyring,
        signer=signer,
        signers=signers,
        witness=witness,
    )
    book = BudgetLedger(path, public_key=trusted.public_key, witness=consulted)
    if dataset is None:
        entries = book.datasets()
    else:
        entry = book.entry(dataset)
        if entry is None:
            raise PolicyError(f"{path}: no data set {dataset!r} in the ledger")
        entries = [entry]
    if as_json:
        typer.echo(json.dumps(entries, sort_keys=True))
        return
    typer.echo(
        f"{path}: verified, signed by {trusted}; witness "
        f"{consulted if consulted and consulted.is_file() else 'none'}"
    )
    if not entries:
        typer.echo("  no data sets yet (a data set enters the ledger at its first charge)")
    for entry in entries:
        _print_entry(entry, detail=dataset is not None)


def _print_entry(entry: dict[str, Any], *, detail: bool) -> None:
    left = entry["budget"] - entry["epsilon_spent"]
    typer.echo(
        f"  {entry['dataset']}  {entry['label']}: spent ε {entry['epsilon_spent']:g} of "
        f"{entry['budget']:g} ({max(left, 0):g} left), δ {entry['delta_spent']:.3g}, "
        f"{len(entry['runs'])} runs"
    )
    if not detail:
        return
    for run in entry["runs"]:
        note = ""
        if run.get("covered_by"):
            note = f" (resumed {run['checkpoint_id']}, covered by the run's charge)"
        elif run.get("checkpoint_id"):
            note = f" (resumed {run['checkpoint_id']} again: charged in full)"
        typer.echo(f"    {run['charged']}  run {run['run_id']}: ε {run['epsilon']:g}{note}")
    for change in entry["budget_changes"]:
        who = (change.get("actor") or {}).get("user", "?")
        typer.echo(
            f"    {change['time']}  budget {change['previous']:g} -> {change['budget']:g} "
            f"by {who}: {change['reason']}"
        )


@budget_app.command("set")
def budget_set(
    dataset: DatasetArgument,
    eps: Annotated[float, typer.Argument(metavar="EPS", help="The data set's new budget (ε).")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why the budget changes (recorded in the ledger).")
    ],
    ledger: LedgerOption = None,
    keyring: Annotated[
        Path | None,
        keyring_option("The custodian's keyring (the vault and pseudonym scopes); it signs."),
    ] = None,
) -> None:
    """Change a data set's privacy budget: the custodian's act, recorded in the ledger
    with the reason, the previous budget and who did it.

    A data set's budget is fixed at its first charge; a policy whose training.budget
    differs is refused until this command changes it. Training then needs a policy whose
    training.budget is the new one."""
    from privacy.dp import BudgetLedger
    from privacy.errors import KeyAccessError

    if keyring is None:
        raise KeyAccessError("budget set needs the custodian's keyring: --keyring K")
    path = _ledger_path(ledger)
    changed = BudgetLedger(path, open_keyring(keyring)).set_budget(dataset, eps, reason=reason)
    typer.echo(
        f"budget of {changed['dataset']} ({changed['label']}): {changed['previous']:g} -> "
        f"{changed['budget']:g} (spent {changed['epsilon_spent']:g}); recorded in {path}"
    )
