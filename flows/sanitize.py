"""The sanitize flow: ingest -> detect -> transform -> anonymize -> gate -> publish.

Tasks hand each other paths of files in a private workspace, never frames, so Prefect's
database sees paths, counts and hashes only. Every task: no result persistence, no
cache, no captured prints. Exceptions are sanitized before Prefect records them: a
privpipe error's message names places, never values; any other exception is replaced
by its type and the stage (the original stays in this process, for ``--debug``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows._prefect_env import configure_prefect

configure_prefect()

from prefect import flow  # noqa: E402
from prefect.runtime import flow_run  # noqa: E402

from flows._artifacts import publish_sanitize  # noqa: E402
from flows._keys import pseudonym_provider  # noqa: E402
from flows._tasks import private_task, sanitized, unlocked  # noqa: E402
from privacy import stages  # noqa: E402
from privacy.audit import AuditTrail  # noqa: E402
from privacy.detect import TextScanner  # noqa: E402
from privacy.io import prepare_output_dir, sha256_file  # noqa: E402
from privacy.policy import Policy, load_policy  # noqa: E402
from privacy.report import REPORT_FILE, write_report  # noqa: E402
from privacy.workspace import Workspace  # noqa: E402

__all__ = [
    "sanitize_flow",
    "set_progress",
    "set_search_progress",
]

_progress: Callable[[dict[str, Any]], None] | None = None
_search_progress: Callable[[int, int], None] | None = None


def set_progress(callback: Callable[[dict[str, Any]], None] | None) -> None:
    """Receive each stage's record as it completes (the CLI draws progress from it)."""
    global _progress
    _progress = callback


def set_search_progress(callback: Callable[[int, int], None] | None) -> None:
    """Receive (nodes done, nodes) while the anonymize stage searches the lattice."""
    global _search_progress
    _search_progress = callback


def _report(record: dict[str, Any]) -> dict[str, Any]:
    if _progress is not None:
        _progress(record)
    return record


def _saved(work: Workspace, name: str, frame: Any) -> dict[str, str]:
    path = work.save(name, frame)
    return {"path": str(path), "sha256": sha256_file(path)}


@private_task("ingest")
@sanitized("ingest")
def ingest_task(
    input_path: str, policy_path: str, workdir: str, keyring_path: str, out_dir: str, run_id: str
) -> dict[str, Any]:
    policy = load_policy(policy_path)
    keys = unlocked(keyring_path)
    frame, record = stages.ingest(Path(input_path), policy, keys, Path(out_dir) / stages.VAULT_DIR)
    return {
        **_saved(Workspace(keys, workdir, run_id=run_id), "raw", frame),
        "record": record.to_dict(),
    }


@private_task("detect")
@sanitized("detect")
def detect_task(raw_path: str, policy_path: str, keyring_path: str, run_id: str) -> dict[str, Any]:
    policy = load_policy(policy_path)
    work = Workspace(unlocked(keyring_path), run_id=run_id)
    record = stages.detect(work.load(raw_path), policy, TextScanner.from_policy(policy.detection))
    return {"path": raw_path, "record": record.to_dict()}


@private_task("transform")
@sanitized("transform")
def transform_task(
    raw_path: str, policy_path: str, workdir: str, keyring_path: str, run_id: str
) -> dict[str, Any]:
    policy = load_policy(policy_path)
    ring = unlocked(keyring_path)
    work = Workspace(ring, workdir, run_id=run_id)
    scanner = TextScanner.from_policy(policy.detection)
    keys = pseudonym_provider(policy, ring)
    frame, record = stages.transform(work.load(raw_path), policy, keys, scanner)
    return {**_saved(work, "transformed", frame), "record": record.to_dict()}


@private_task("anonymize")
@sanitized("anonymize")
def anonymize_task(
    path: str, policy_path: str, workdir: str, keyring_path: str, run_id: str
) -> dict[str, Any]:
    policy = load_policy(policy_path)
    work = Workspace(unlocked(keyring_path), workdir, run_id=run_id)
    frame, record = stages.anonymize(work.load(path), policy, _search_progress)
    return {**_saved(work, "anonymized", frame), "record": record.to_dict()}


@private_task("gate")
@sanitized("gate")
def gate_task(
    raw_path: str, path: str, policy_path: str, keyring_path: str, run_id: str
) -> dict[str, Any]:
    policy = load_policy(policy_path)
    work = Workspace(unlocked(keyring_path), run_id=run_id)
    scanner = TextScanner.from_policy(policy.detection)
    record = stages.gate(work.load(raw_path), work.load(path), policy, scanner)
    return {"path": path, "record": record.to_dict()}


@private_task("publish")
@sanitized("publish")
def publish_task(
    path: str,
    policy_path: str,
    out_dir: str,
    input_path: str,
    keyring_path: str,
    run_id: str,
    audit_path: str,
    records: list[dict[str, Any]],
) -> dict[str, Any]:
    policy = load_policy(policy_path)
    started = time.perf_counter()
    keys = unlocked(keyring_path)
    frame = Workspace(keys, run_id=run_id).load(path)
    input_sha256 = records[0]["params"]["input_sha256"]
    record = stages.StageRecord("publish", rows_in=frame.height, rows_out=frame.height)
    manifest = stages.publish(
        frame,
        policy,
        Path(out_dir),
        keys=keys,
        input_path=Path(input_path),
        input_sha256=input_sha256,
        run_id=run_id,
        stages=[*records, record.to_dict()],
        audit_trail=Path(audit_path),
    )
    record.duration_s = round(time.perf_counter() - started, 4)
    record.params = {"sealed": manifest["output"]["sealed"], "kek_id": manifest["output"]["kek_id"]}
    data = Path(out_dir) / manifest["output"]["path"]
    manifest_path = Path(out_dir) / stages.MANIFEST_FILE
    return {
        "path": str(data),
        "sha256": manifest["output"]["sha256"],
        "manifest_sha256": sha256_file(manifest_path),
        "record": record.to_dict(),
    }


OUTPUTS = (stages.DATA_FILE, stages.SEALED_DATA_FILE, stages.MANIFEST_FILE, "report.html")


class _Steps:
    """Runs each task, and appends its audit record (failed ones too) as it ends."""

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail
        self.records: list[dict[str, Any]] = []

    def run(
        self,
        step: str,
        task_fn: Callable[..., dict[str, Any]],
        *args: Any,
        inputs: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            result = task_fn(*args)
        except BaseException as exc:
            self.trail.append(
                step,
                outcome="failed",
                error=type(exc).__name__,
                duration_s=round(time.perf_counter() - started, 4),
                inputs=inputs or {},
            )
            self.trail.flush()
            raise
        record = result["record"]
        if "input_sha256" in record["params"]:
            inputs = {"input": record["params"]["input_sha256"], **(inputs or {})}
        outputs = {k: v for k, v in result.items() if k.endswith("sha256")}
        self.trail.append(
            step,
            duration_s=record["duration_s"],
            inputs=inputs or {},
            outputs={"sha256" if k == "sha256" else k: v for k, v in outputs.items()},
            counts={
                "rows_in": record["rows_in"],
                "rows_out": record["rows_out"],
                **record["counts"],
            },
            params={"status": record["status"], **record["params"]},
        )
        self.trail.flush()
        self.records.append(_report(record))
        return result


@flow(name="sanitize", persist_result=False, log_prints=False, validate_parameters=True)
def sanitize_flow(
    input_path: str,
    policy_path: str,
    out_dir: str,
    keyring_path: str,
    overwrite: bool = False,
    audit_path: str | None = None,
) -> dict[str, Any]:
    """Sanitize one input file by one policy into ``out_dir``; returns the run summary.

    The keyring is passed by path; it must be unlocked in this process (see flows._keys).
    Every step, failed ones included, is appended to the audit trail (default
    ``out_dir/audit.jsonl``), which is signed when the run ends however it ends.
    """
    policy: Policy = load_policy(policy_path)
    stages.check_supported(policy)
    ring = unlocked(keyring_path)  # fail before any work if the keyring cannot be opened
    out = Path(out_dir)
    prepare_output_dir(out, overwrite=overwrite, outputs=OUTPUTS, folders=(stages.VAULT_DIR,))
    run_id = str(flow_run.id or "local")
    trail_path = Path(audit_path) if audit_path else out / stages.AUDIT_FILE
    context = {
        "run_id": run_id,
        "flow": "sanitize",
        "policy": {"id": policy.name, "sha256": policy.hash},
    }
    with (
        AuditTrail(trail_path, ring, context=context) as trail,
        Workspace(ring, run_id=run_id) as work,
    ):
        steps = _Steps(trail)
        workdir = str(work.root)
        raw = steps.run(
            "ingest", ingest_task, input_path, policy_path, workdir, keyring_path, out_dir, run_id
        )
        ingest = steps.records[0]
        vault = ingest["params"]["vault"]
        trail.append(
            "vault",
            inputs={"input": ingest["params"]["input_sha256"]},
            outputs={"vault": vault["sha256"]},
            params={"kek_id": vault["kek_id"]},
        )
        detected = steps.run(
            "detect",
            detect_task,
            raw["path"],
            policy_path,
            keyring_path,
            run_id,
            inputs={"raw": raw["sha256"]},
        )
        transformed = steps.run(
            "transform",
            transform_task,
            raw["path"],
            policy_path,
            workdir,
            keyring_path,
            run_id,
            inputs={"raw": raw["sha256"]},
        )
        anonymized = steps.run(
            "anonymize",
            anonymize_task,
            transformed["path"],
            policy_path,
            workdir,
            keyring_path,
            run_id,
            inputs={"transformed": transformed["sha256"]},
        )
        gated = steps.run(
            "gate",
            gate_task,
            raw["path"],
            anonymized["path"],
            policy_path,
            keyring_path,
            run_id,
            inputs={"raw": raw["sha256"], "anonymized": anonymized["sha256"]},
        )
        published = steps.run(
            "publish",
            publish_task,
            gated["path"],
            policy_path,
            out_dir,
            input_path,
            keyring_path,
            run_id,
            str(trail_path),
            steps.records,
            inputs={"anonymized": anonymized["sha256"]},
        )
        del detected
    records = steps.records
    summary = {
        "status": "ok",
        "run_id": run_id,
        "policy": {"name": policy.name, "sha256": policy.hash},
        "rows_in": records[0]["rows_in"],
        "rows_out": records[-1]["rows_out"],
        "outputs": {
            "data": published["path"],
            "manifest": str(out / stages.MANIFEST_FILE),
            "vault": records[0]["params"]["vault"]["path"],
            "audit": str(trail_path),
        },
        "audit": {"records": trail.last_checkpoint["length"] if trail.last_checkpoint else 0},
        "stages": {
            r["stage"]: {"status": r["status"], "rows_out": r["rows_out"], "counts": r["counts"]}
            for r in records
        },
        "anonymization": next(r["counts"] for r in records if r["stage"] == "anonymize"),
    }
    publish_sanitize(summary, records)
    if audit_path is None:  # the report reads the run's own trail, now signed
        write_report(out, ring.signing_public_key)
        summary["outputs"]["report"] = str(out / REPORT_FILE)
    return summary
