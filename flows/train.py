"""The train flow: a sanitize output -> a differentially private model, a model card.

One task, handed paths only (as in the sanitize flow): it reads the published data
(unsealing it in memory), charges the privacy budget ledger before training, trains with
Opacus, and writes the sealed weights, the encoder and ``model_card.json``, each
atomically. The audit trail records the run, and marks a non-private one NOT PRIVATE.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows._prefect_env import configure_prefect

configure_prefect()

from prefect import flow  # noqa: E402
from prefect.runtime import flow_run  # noqa: E402

from flows._artifacts import publish_train  # noqa: E402
from flows._tasks import private_task, run_policy, sanitized, unlocked  # noqa: E402
from privacy import stages  # noqa: E402
from privacy.audit import AuditTrail  # noqa: E402
from privacy.crypto import is_sealed, seal_bytes, unseal_bytes  # noqa: E402
from privacy.dp import BudgetLedger, train_model  # noqa: E402
from privacy.errors import InputError  # noqa: E402
from privacy.io import (  # noqa: E402
    atomic_write_bytes,
    atomic_write_json,
    prepare_output_dir,
    sha256_file,
)
from privacy.policy import Policy, load_policy  # noqa: E402
from privacy.policy_signing import enforce_policy_signature  # noqa: E402
from privacy.report import write_report  # noqa: E402

__all__ = ["MODEL_FILES", "load_published", "set_progress", "train_flow"]

WEIGHTS = "model.pt.sealed"
ENCODER = "encoder.json"
CARD = "model_card.json"
CHECKPOINT = "checkpoint.pt.sealed"  # while training; removed when the run completes
MODEL_FILES = (
    WEIGHTS,
    ENCODER,
    CARD,
    CHECKPOINT,
    "report.html",
    stages.AUDIT_FILE,
    stages.AUDIT_FILE + ".head",
)


_epochs: Callable[[int, int], None] | None = None


def set_progress(callback: Callable[[int, int], None] | None) -> None:
    """Receive (epochs done, epochs) as training goes."""
    global _epochs
    _epochs = callback


def load_published(data: Path, policy: Policy, keys: Any) -> tuple[Any, str]:
    """The sanitized frame and its file's SHA-256, from a sanitize output folder (its
    manifest names the data file) or a data file; a sealed one is opened in memory and
    must be the output of this policy."""
    import polars as pl

    if data.is_dir():
        manifest = data / stages.MANIFEST_FILE
        if not manifest.is_file():
            raise InputError(f"{data}: no {stages.MANIFEST_FILE}: not a sanitize output")
        data = data / json.loads(manifest.read_text())["output"]["path"]
    if not data.is_file():
        raise InputError(f"{data}: input file not found")
    digest = sha256_file(data)
    if is_sealed(data):
        plain = unseal_bytes(data, keys, expected=stages.published_associated_data(policy))
        return pl.read_parquet(io.BytesIO(plain)), digest
    try:
        return pl.read_parquet(data), digest
    except pl.exceptions.PolarsError:
        raise InputError(f"{data}: not a readable Parquet file") from None


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
) -> dict[str, Any]:
    policy = run_policy(policy_ref)
    ring = unlocked(keyring_path)
    frame, digest = load_published(Path(data_path), policy, ring)
    out = Path(out_dir)
    result = train_model(
        frame,
        policy,
        run_id=run_id,
        ledger=BudgetLedger(Path(ledger_path)),
        device=device,
        data_sha256=digest,
        checkpoint=out / CHECKPOINT,
        keys=ring.for_scope(policy.keys.seal.model),
        resume=resume,
        progress=_epochs,
    )
    bound = {"artifact": "model", "dataset": policy.name, "model": result.card["model_version"]}
    atomic_write_bytes(
        out / WEIGHTS, seal_bytes(result.weights, ring.for_scope(policy.keys.seal.model), bound)
    )
    atomic_write_json(out / ENCODER, result.encoder.to_dict())
    atomic_write_json(out / CARD, result.card)
    (out / CHECKPOINT).unlink(missing_ok=True)
    return {"card": result.card, "weights_sha256": sha256_file(out / WEIGHTS)}


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
) -> dict[str, Any]:
    """Train the policy's model on a sanitize output into ``out_dir``; returns the card.
    ``resume`` continues an interrupted run from ``out_dir``'s checkpoint."""
    policy = load_policy(policy_path)
    signed = enforce_policy_signature(policy)  # {} or {"signed_by": [...]}; signed policies
    ring = unlocked(keyring_path)
    out = Path(out_dir)
    if not resume:
        prepare_output_dir(out, overwrite=overwrite, outputs=MODEL_FILES, folders=())
    run_id = str(flow_run.id or "local")
    context = {
        "run_id": run_id,
        "flow": "train",
        "policy": {"id": policy.name, "sha256": policy.hash, **signed},
    }
    with AuditTrail(out / stages.AUDIT_FILE, ring, context=context) as trail:
        try:
            result = train_task(
                data_path,
                {"path": policy_path, "sha256": policy.hash},  # the task re-checks it
                out_dir,
                keyring_path,
                ledger_path,
                device,
                run_id,
                resume,
            )
        except BaseException as exc:
            trail.append("train", outcome="failed", error=type(exc).__name__)
            trail.flush()
            raise
        card = result["card"]
        privacy = card["privacy"]
        trail.append(
            "train",
            inputs={"data": card["data"]["sha256"]},
            outputs={"weights": result["weights_sha256"], "model_version": card["model_version"]},
            counts={
                "rows_train": card["data"]["rows_train"],
                "rows_test": card["data"]["rows_test"],
            },
            params={
                "status": "private" if privacy["private"] else "NOT PRIVATE",
                **{k: v for k, v in privacy.items() if k != "ledger"},
                "metrics": card["metrics"],
                "membership_inference": card["membership_inference"],
            },
        )
    publish_train(card)
    write_report(out, ring.signing_public_key)
    return {"status": "ok", "run_id": run_id, "model_dir": str(out), "card": card}
