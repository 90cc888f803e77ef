"""The DP release flows: a synthetic table and a statistics release from a sanitize
output's training view, each in its own folder with its own signed trail and report.

As the train flow: one task, handed paths only. It opens the training view in memory
(the ``vault`` scope: the custodian's), charges the budget ledger under the same
identity DP training charges (the raw input's keyed digest and the people's and
records' keyed sketches), measures, gates (a synthetic table only), and writes the
release sealed under the ``published`` scope (``outputs.seal``) and its card, each
atomically. The signed record carries the figures the verdict reads and the SHA-256
of every file written.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from flows._prefect_env import configure_prefect

configure_prefect()

from prefect import flow  # noqa: E402

from flows._prelude import audited, record_failed_step, start_run  # noqa: E402
from flows._tasks import private_task, run_policy, sanitized, unlocked  # noqa: E402
from privacy import layout  # noqa: E402
from privacy.crypto import seal_bytes  # noqa: E402
from privacy.dp import (  # noqa: E402
    BudgetLedger,
    load_training_view,
    make_synthetic_table,
    release_record,
    release_statistics,
)
from privacy.errors import PrivacyGuaranteeError  # noqa: E402
from privacy.io import atomic_write_bytes, atomic_write_json, prepare_output_dir  # noqa: E402
from privacy.report import report_run  # noqa: E402

__all__ = ["RELEASE_FILES", "statistics_flow", "synthesize_flow"]

# What --overwrite replaces in a release folder (the trail is kept and appended to).
RELEASE_FILES = (
    *(layout.release_file("synthetic", sealed=s) for s in (True, False)),
    *(
        layout.release_file("statistics", sealed=s, format=f)
        for s in (True, False)
        for f in ("parquet", "csv")
    ),
    layout.SYNTHETIC_CARD,
    layout.STATISTICS_CARD,
    "report.html",
)


def _encode(
    frame: Any, kind: str, policy: Any, ring: Any, fmt: str = "parquet"
) -> tuple[str, bytes]:
    """The release's file name and bytes: Parquet (or CSV), sealed under the published
    scope unless ``outputs.seal`` is false."""
    buffer = io.BytesIO()
    if fmt == "csv":
        frame.write_csv(buffer)
    else:
        frame.write_parquet(buffer, compression=policy.outputs.compression)
    data = buffer.getvalue()
    sealed = policy.outputs.seal
    if sealed:
        keys = ring.for_scope(policy.keys.seal.published)
        data = seal_bytes(data, keys, layout.release_associated_data(policy, kind))
    return layout.release_file(kind, sealed=sealed, format=fmt), data


def _write_release(
    frame: Any,
    card: dict[str, Any],
    kind: str,
    card_name: str,
    policy: Any,
    ring: Any,
    out_dir: str,
    out_root: str | None,
    fmt: str = "parquet",
) -> dict[str, str]:
    """Write the release and its card atomically (no link followed below ``out_root``);
    the SHA-256 of the bytes written of each, for the signed record."""
    name, blob = _encode(frame, kind, policy, ring, fmt)
    out, root = Path(out_dir), Path(out_root) if out_root else None
    return {
        name: atomic_write_bytes(out / name, blob, root=root),
        card_name: atomic_write_json(out / card_name, card, root=root),
    }


@private_task("synthesize")
@sanitized("synthesize")
def synthesize_task(
    data_path: str,
    policy_ref: dict[str, str],
    out_dir: str,
    keyring_path: str,
    ledger_path: str,
    run_id: str,
    out_root: str | None = None,
) -> dict[str, Any]:
    policy = run_policy(policy_ref)
    ring = unlocked(keyring_path)
    frame, digest, identity = load_training_view(Path(data_path), policy, ring)
    result = make_synthetic_table(
        frame, policy, run_id=run_id, ledger=BudgetLedger(Path(ledger_path), ring), data=identity
    )
    result.card["data"]["sha256"] = digest
    files = _write_release(
        result.frame, result.card, "synthetic", layout.SYNTHETIC_CARD, policy, ring,
        out_dir, out_root,
    )  # fmt: skip
    return {"card": result.card, "files": files, "data": digest}


@private_task("statistics")
@sanitized("statistics")
def statistics_task(
    data_path: str,
    policy_ref: dict[str, str],
    out_dir: str,
    keyring_path: str,
    ledger_path: str,
    run_id: str,
    out_root: str | None = None,
) -> dict[str, Any]:
    policy = run_policy(policy_ref)
    ring = unlocked(keyring_path)
    frame, digest, identity = load_training_view(Path(data_path), policy, ring)
    result = release_statistics(
        frame, policy, run_id=run_id, ledger=BudgetLedger(Path(ledger_path), ring), data=identity
    )
    result.card["data"]["sha256"] = digest
    fmt = policy.statistics.format if policy.statistics is not None else "parquet"
    files = _write_release(
        result.table, result.card, "statistics", layout.STATISTICS_CARD, policy, ring,
        out_dir, out_root, fmt,
    )  # fmt: skip
    return {"card": result.card, "files": files, "data": digest}


def _release_flow(
    kind: str,
    step: str,
    task: Any,
    data_path: str,
    policy_path: str,
    out_dir: str,
    keyring_path: str,
    ledger_path: str,
    overwrite: bool,
    out_root: str | None,
) -> dict[str, Any]:
    run = start_run(step, policy_path, keyring_path)
    out = Path(out_dir)
    prepare_output_dir(
        out,
        overwrite=overwrite,
        outputs=RELEASE_FILES,
        root=Path(out_root) if out_root else None,
    )
    trail_path = out / layout.AUDIT_FILE
    with audited(run, out, trail_path) as trail:
        try:
            result = task(
                data_path, run.policy_ref, out_dir, keyring_path, ledger_path, run.run_id, out_root
            )
        except BaseException as exc:
            guarantee = exc.audit_fields() if isinstance(exc, PrivacyGuaranteeError) else None
            record_failed_step(trail, step, exc, params=guarantee)
            raise
        trail.append(
            step,
            inputs={"data": result["data"]},
            outputs={"files": result["files"]},
            counts={"rows": result["card"]["rows"]},
            params=release_record(result["card"]),
        )
    report_run(out, run.ring, trail_path, run.context, ledger=Path(ledger_path))
    return {"status": "ok", "run_id": run.run_id, "out": str(out), "card": result["card"]}


@flow(name="synthesize", persist_result=False, log_prints=False, validate_parameters=True)
def synthesize_flow(
    data_path: str,
    policy_path: str,
    out_dir: str,
    keyring_path: str,
    ledger_path: str,
    overwrite: bool = False,
    out_root: str | None = None,
) -> dict[str, Any]:
    """A DP synthetic table of the sanitize output ``data_path`` into ``out_dir``."""
    return _release_flow(
        "synthetic", "synthesize", synthesize_task, data_path, policy_path, out_dir,
        keyring_path, ledger_path, overwrite, out_root,
    )  # fmt: skip


@flow(name="statistics", persist_result=False, log_prints=False, validate_parameters=True)
def statistics_flow(
    data_path: str,
    policy_path: str,
    out_dir: str,
    keyring_path: str,
    ledger_path: str,
    overwrite: bool = False,
    out_root: str | None = None,
) -> dict[str, Any]:
    """A DP statistics release of the sanitize output ``data_path`` into ``out_dir``."""
    return _release_flow(
        "statistics", "statistics", statistics_task, data_path, policy_path, out_dir,
        keyring_path, ledger_path, overwrite, out_root,
    )  # fmt: skip
