"""The train flow: a sanitize output -> a differentially private model, a model card.

One task, handed paths only (as in the sanitize flow): it reads the published data
(unsealing it in memory), charges the privacy budget ledger before training, trains with
Opacus, and writes the sealed weights (safetensors), the encoder and
``model_card.json``, each atomically. The audit trail records the run, and marks a
non-private one NOT PRIVATE.

The ledger is charged for the data's identity: the raw input's keyed digest (bound
into a sealed file's associated data at publish; of a plain file, from the sanitize
manifest that describes it) and the SHA-256 of the sanitized plaintext. Checkpoints
are run intermediates: sealed under the ``vault`` scope, so a keyring without it trains
without them. ``resume`` continues the training run that the output folder's verified
audit trail records as stopped, and no other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows._prefect_env import configure_prefect

configure_prefect()

from prefect import flow  # noqa: E402

from flows._artifacts import publish_train, trail_head  # noqa: E402
from flows._prelude import audited, record_failed_step, start_run  # noqa: E402
from flows._tasks import private_task, run_policy, sanitized, unlocked  # noqa: E402
from privacy import stages  # noqa: E402
from privacy.audit import AuditTrail, read_trail, verify_trail  # noqa: E402
from privacy.crypto import seal_bytes  # noqa: E402
from privacy.dp import (  # noqa: E402
    CHECKPOINT_SCOPE,
    BudgetLedger,
    load_published,
    load_training_view,
    require_resume_scope,
    train_model,
)
from privacy.errors import InputError  # noqa: E402
from privacy.integrity import witness_path  # noqa: E402
from privacy.io import (  # noqa: E402
    atomic_write_bytes,
    atomic_write_json,
    prepare_output_dir,
)
from privacy.report import report_run  # noqa: E402

__all__ = [
    "CHECKPOINT",
    "MODEL_FILES",
    "WEIGHTS",
    "resumable_run",
    "set_progress",
    "train_flow",
]

WEIGHTS = "model.safetensors.sealed"
ENCODER = "encoder.json"
CARD = "model_card.json"
CHECKPOINT = "checkpoint.safetensors.sealed"  # while training; removed when the run completes
# What --overwrite replaces (older releases' pickled files too). The audit trail is kept
# and appended to, as the sanitize flow's is: its heads are in the witness, and a trail
# emptied under it would be refused.
MODEL_FILES = (
    WEIGHTS,
    ENCODER,
    CARD,
    CHECKPOINT,
    "model.pt.sealed",
    "checkpoint.pt.sealed",
    "report.html",
)


_epochs: Callable[[int, int], None] | None = None


def set_progress(callback: Callable[[int, int], None] | None) -> None:
    """Receive (epochs done, epochs) as training goes."""
    global _epochs
    _epochs = callback


def resumable_run(out: Path, ring: Any) -> str:
    """The training run that ``out``'s audit trail (verified, against the witness
    beside the keyring) records as stopped before it finished: the only run
    ``--resume`` may continue there."""
    trail = out / stages.AUDIT_FILE
    if not trail.is_file():
        raise InputError(f"{out}: no audit trail ({stages.AUDIT_FILE}): no run to resume")
    verify_trail(trail, ring.signing_public_key, witness=witness_path(ring.path))
    trained = [r for r in read_trail(trail) if r.get("step") == "train"]
    if not trained or trained[-1].get("outcome") == "ok":
        raise InputError(f"{trail}: no training run stopped before it finished: none to resume")
    last = trained[-1]
    return str((last.get("params") or {}).get("training_run") or last["run_id"])


@private_task("train")
@sanitized("train")
def train_task(
    data_path: str,
    policy_ref: dict[str, str],
    out_dir: str,
    keyring_path: str,
    ledger_path: str,
    device: str,
    run_id: str,
    resume: bool,
    nproc: int = 1,
    out_root: str | None = None,
) -> dict[str, Any]:
    policy = run_policy(policy_ref)
    ring = unlocked(keyring_path)
    load = load_training_view if policy.training.reads == "deidentified" else load_published
    frame, digest, identity = load(Path(data_path), policy, ring)
    out = Path(out_dir)
    checkpoints = CHECKPOINT_SCOPE in ring.scopes  # intermediates are the custodian's
    result = train_model(
        frame,
        policy,
        run_id=run_id,
        ledger=BudgetLedger(Path(ledger_path), ring),
        device=device,
        data_sha256=digest,
        data=identity,
        checkpoint=out / CHECKPOINT if checkpoints else None,
        keys=ring.for_scope(CHECKPOINT_SCOPE) if checkpoints else None,
        resume=resume,
        progress=_epochs,
        source=policy.training.reads,
        nproc=nproc,
    )
    bound = {"artifact": "model", "dataset": policy.name, "model": result.card["model_version"]}
    sealed = seal_bytes(result.weights, ring.for_scope(policy.keys.seal.model), bound)
    root = Path(out_root) if out_root else None  # no link followed below it
    files = {  # the SHA-256 of the bytes written, for the signed train record
        WEIGHTS: atomic_write_bytes(out / WEIGHTS, sealed, root=root),
        ENCODER: atomic_write_json(out / ENCODER, result.encoder.to_dict(), root=root),
        CARD: atomic_write_json(out / CARD, result.card, root=root),
    }
    (out / CHECKPOINT).unlink(missing_ok=True)
    return {"card": result.card, "weights_sha256": files[WEIGHTS], "files": files}


def _ledger_params(privacy: dict[str, Any]) -> dict[str, Any]:
    """What the trail records of the run's charge: the data set, ε charged (0 for a
    first resume, covered by its run's charge) and the checkpoint resumed."""
    ledger = privacy.get("ledger")
    if not ledger:
        return {}
    keep = ("dataset", "label", "charged", "budget", "spent_after", "resumed_checkpoint")
    return {"ledger": {k: ledger.get(k) for k in keep}}


@flow(name="train", persist_result=False, log_prints=False, validate_parameters=True)
def train_flow(
    data_path: str,
    policy_path: str,
    out_dir: str,
    keyring_path: str,
    ledger_path: str,
    device: str = "auto",
    overwrite: bool = False,
    resume: bool = False,
    nproc: int = 1,
    out_root: str | None = None,
) -> dict[str, Any]:
    """Train the policy's model on a sanitize output into ``out_dir``; returns the card.
    ``resume`` continues the training run ``out_dir``'s trail records as stopped, from
    its checkpoint. ``out_root``: the folder the user named, when ``out_dir`` is one
    privpipe makes below it (``privpipe run``'s ``model/``): a link between them is
    refused, not followed."""
    run = start_run("train", policy_path, keyring_path)
    ring, run_id, context = run.ring, run.run_id, run.context
    out = Path(out_dir)
    training_run = run_id  # the run a checkpoint and the ledger's charge are bound to
    if resume:
        require_resume_scope(ring)
        training_run = resumable_run(out, ring)
    else:
        prepare_output_dir(
            out,
            overwrite=overwrite,
            outputs=MODEL_FILES,
            folders=(),
            root=Path(out_root) if out_root else None,
        )
    trail_path = out / stages.AUDIT_FILE
    with audited(run, out, trail_path) as trail:
        try:
            result = train_task(
                data_path,
                run.policy_ref,  # the task re-checks it
                out_dir,
                keyring_path,
                ledger_path,
                device,
                training_run,
                resume,
                nproc,
                out_root,
            )
        except BaseException as exc:
            record_failed_step(
                trail, "train", exc, params={"training_run": training_run, "resume": resume}
            )
            raise
        card = result["card"]
        _record_train(trail, result, training_run=training_run, resume=resume)
    recorded = report_run(out, ring, trail_path, context, ledger=Path(ledger_path))
    audit = trail_head(recorded.trail)  # the final signed head: the report's record is in it
    publish_train(card, audit, str(out / stages.AUDIT_FILE))
    return {"status": "ok", "run_id": run_id, "model_dir": str(out), "card": card, "audit": audit}


def _record_train(
    trail: AuditTrail, result: dict[str, Any], *, training_run: str, resume: bool
) -> None:
    """The signed train record: what the verdict reads (ε, δ, the ledger's charge, the
    metrics and the attack), and the SHA-256 of every file the run wrote."""
    card = result["card"]
    privacy = card["privacy"]
    trail.append(
        "train",
        inputs={"data": card["data"]["sha256"]},
        outputs={
            "weights": result["weights_sha256"],
            "model_version": card["model_version"],
            "files": result["files"],  # weights, encoder, card: re-hashed by verify
        },
        counts={
            "rows_train": card["data"]["rows_train"],
            "rows_test": card["data"]["rows_test"],
        },
        params={
            "status": "private" if privacy["private"] else "NOT PRIVATE",
            "training_input": card["data"]["input"],
            "training_run": training_run,
            "resume": resume,
            **{k: v for k, v in privacy.items() if k != "ledger"},
            **_ledger_params(privacy),
            "metrics": card["metrics"],
            "membership_inference": card["membership_inference"],
        },
    )
