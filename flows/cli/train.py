"""privpipe train: a differentially private model from a sanitize output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.app import (
    STATE,
    DeviceOption,
    JsonOption,
    LedgerOption,
    OverwriteOption,
    app,
    echo_err,
    keyring_option,
    open_keyring,
    progress_bar,
)


def check_training(policy: Path, device: str) -> Any:
    """The loaded policy, once it can train and the device is one we know."""
    from privacy.errors import PolicyError
    from privacy.policy import load_policy
    from privacy.policy_signing import enforce_policy_signature

    loaded = load_policy(policy)
    enforce_policy_signature(loaded)  # signed policies: refused here, before Prefect starts
    if loaded.training.label is None:
        raise PolicyError(f"{policy}: training.label: set the column to predict")
    if device not in ("auto", "cpu", "cuda"):
        raise PolicyError(f"--device: {device!r} is not one of auto, cpu, cuda")
    return loaded


@app.command()
def train(
    data: Annotated[
        Path,
        typer.Argument(
            metavar="DATA", help="A sanitize output folder, or its data.parquet[.sealed]."
        ),
    ],
    policy: Annotated[Path, typer.Option("--policy", "-p", help="Policy YAML file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder.")],
    device: DeviceOption = "auto",
    ledger: LedgerOption = None,
    overwrite: OverwriteOption = False,
    as_json: JsonOption = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run --out's audit trail records as stopped, from its "
            "checkpoint (the custodian's keyring: checkpoints are sealed under 'vault').",
        ),
    ] = False,
    keyring: Annotated[
        Path | None, keyring_option("Keyring for sealed data and the sealed weights.")
    ] = None,
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc",
            min=1,
            help="Train in N processes (PyTorch distributed data parallel with Opacus: "
            "gloo on CPU, NCCL with one GPU each on CUDA); the same ε, steps and noise "
            "as one process, one budget charge, one model.",
        ),
    ] = 1,
) -> None:
    """Train the policy's model with differential privacy (Opacus, DP-SGD) on DATA.

    The run's ε is charged to the data set's privacy budget before training; a run that
    would exceed the budget is refused (exit 2) and changes nothing. The data set is
    known by its content (the raw input's keyed digest and the sanitized data's hash),
    and its budget is the one fixed at its first charge (`privpipe budget`). Writes
    model.safetensors.sealed, encoder.json, model_card.json and audit.jsonl into --out."""
    from flows import _keys
    from privacy.dp import default_ledger_path, require_resume_scope
    from privacy.errors import InputError, OutputError, PolicyError

    STATE["json"] = as_json
    loaded = check_training(policy, device)
    if not data.exists():
        raise InputError(f"{data}: input file not found")
    if out.is_dir() and any(out.iterdir()) and not (overwrite or resume):
        raise OutputError(f"{out}: output folder exists and is not empty (use --overwrite)")
    ring_path = _keys.resolve_keyring_path(keyring, loaded)
    ring = open_keyring(ring_path)
    ring.for_scope(loaded.keys.seal.model)  # refused here, before Prefect starts
    if resume:
        require_resume_scope(ring)
    if loaded.training.reads == "deidentified":  # the training view is the custodian's
        ring.for_scope(loaded.keys.seal.vault)
    if nproc > 1 and (resume or not loaded.training.dp):
        why = "--resume" if resume else "training.dp: false"
        raise PolicyError(f"--nproc {nproc}: not with {why}; train in one process")
    ledger_path = ledger or default_ledger_path()
    summary = run_train(data, policy, out, ring_path, ledger_path, device, overwrite, resume, nproc)
    card = summary["card"]
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
        return
    print_card(card, out)


def run_train(
    data: Path,
    policy: Path,
    out: Path,
    ring: Path,
    ledger: Path,
    device: str,
    overwrite: bool,
    resume: bool = False,
    nproc: int = 1,
) -> dict[str, Any]:
    from flows._prefect_env import configure_prefect
    from flows.cli.app import use_prefect_server

    configure_prefect("INFO" if STATE["verbose"] else "CRITICAL")
    use_prefect_server()  # a temporary one without the passphrase in its environment
    with progress_bar() as bar:
        task = bar.add_task("starting the train flow", total=None)

        def epochs(done: int, total: int) -> None:
            bar.update(task, description="training epochs", completed=done, total=total)

        from flows import train as train_module

        train_module.set_progress(epochs)
        try:
            return train_module.train_flow(
                str(data.resolve()),
                str(policy.resolve()),
                str(out.resolve()),
                str(ring.resolve()),
                str(ledger.resolve()),
                device,
                overwrite,
                resume,
                nproc,
            )
        finally:
            train_module.set_progress(None)


def print_card(card: dict[str, Any], out: Path) -> None:
    privacy, metrics = card["privacy"], card["metrics"]
    if privacy["private"]:
        ledger = privacy["ledger"]
        typer.echo(
            f"trained {card['model']['kind']} with DP-SGD: ε {privacy['epsilon']:.3f} "
            f"(target {privacy['target_epsilon']:g}), δ {privacy['delta']:.2g}, "
            f"{privacy['accountant'].upper()} accountant, noise {privacy['noise_multiplier']:.3f}, "
            f"{privacy['steps']} steps"
            + (f" in {privacy['processes']} processes" if privacy.get("processes", 1) > 1 else "")
            + f"; budget of {ledger.get('label')} "
            f"({ledger['dataset']}): {ledger['spent_after']:g} of {ledger['budget']:g} spent"
        )
    else:
        echo_err(privacy["warning"])
    majority = metrics["majority_class_rate"]
    typer.echo(f"  trained on the {card['data'].get('input', 'published')} data")
    typer.echo(
        f"  test accuracy {metrics['accuracy']:.4f} (majority class {majority:.4f}), "
        f"balanced accuracy {metrics['balanced_accuracy']:.4f}, F1 {metrics['f1']:.4f} "
        f"at threshold {metrics['threshold']:g}, ROC AUC {metrics['roc_auc']:.4f}, "
        f"PR AUC {metrics['pr_auc']:.4f}"
    )
    mia = card["membership_inference"]
    typer.echo(
        f"  membership inference: AUC {mia['auc']:.3f}, TPR at 1 % FPR {mia['tpr_at_1pct_fpr']:.3f}"
    )
    typer.echo(f"  model card {out / 'model_card.json'}")
