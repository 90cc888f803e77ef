"""The sanitize flow: ingest -> detect -> transform -> anonymize -> gate -> publish.

The input is read and checked once, sealed into the vault, and cut into partitions of
``partition_rows`` rows; detection, transformation, the k-anonymity counts and the
anonymization's rewrite run per partition, as Prefect tasks on the flow's task runner
(threads by default; Dask workers with ``--task-runner dask``). The search runs once, on
the merged counts; the gate and publish stream the partitions one after another, so
memory is bounded by a partition, not by the data set.

Tasks hand each other paths of files in a private workspace, never frames, so Prefect's
database sees paths, counts and hashes only. Every task: no result persistence, no
cache, no captured prints. Exceptions are sanitized before Prefect records them: a
privpipe error's message names places, never values; any other exception is replaced
by its type and the stage (the original stays in this process, for ``--debug``).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows._prefect_env import configure_prefect

configure_prefect()

import polars as pl  # noqa: E402
from prefect import Task, flow, unmapped  # noqa: E402
from prefect.futures import as_completed, wait  # noqa: E402
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner  # noqa: E402

from flows import _progress  # noqa: E402
from flows._artifacts import publish_sanitize, trail_head  # noqa: E402
from flows._prelude import FlowRun, audited, record_failed_step, start_run  # noqa: E402
from flows._tasks import private_task, run_policy, sanitized, unlocked  # noqa: E402
from privacy import stages  # noqa: E402
from privacy.audit import AuditTrail  # noqa: E402
from privacy.crypto import pseudonym_provider  # noqa: E402
from privacy.detect import TextScanner, default_workers  # noqa: E402
from privacy.errors import PolicyError, PrivacyGuaranteeError  # noqa: E402
from privacy.hashing import content_key  # noqa: E402
from privacy.io import prepare_output_dir  # noqa: E402
from privacy.report import REPORT_FILE, report_run  # noqa: E402
from privacy.sources import PostgresSource  # noqa: E402
from privacy.sources.objectstore import upload_artifacts  # noqa: E402
from privacy.workspace import Workspace  # noqa: E402

__all__ = [
    "sanitize_flow",
    "set_partitions_progress",
    "set_progress",
    "set_search_progress",
]


def set_progress(callback: Callable[[dict[str, Any]], None] | None) -> None:
    """Receive each stage's record as it completes (the CLI draws progress from it)."""
    _progress.stage = callback


def set_search_progress(callback: Callable[[int, int], None] | None) -> None:
    """Receive (nodes done, nodes) while the anonymize stage searches the lattice."""
    _progress.search = callback


def set_partitions_progress(callback: Callable[[str, int, int], None] | None) -> None:
    """Receive (stage, partitions done, partitions) as the per-partition tasks finish."""
    _progress.partitions = callback


def _report(record: dict[str, Any]) -> dict[str, Any]:
    if _progress.stage is not None:
        _progress.stage(record)
    return record


def _saved(work: Workspace, name: str, frame: Any) -> dict[str, str]:
    digest = hashlib.sha256()  # of the sealed file, taken as it is written
    path = work.save(name, frame, digest=digest)
    return {"path": str(path), "sha256": digest.hexdigest()}


def _digest(parts: list[dict[str, Any]]) -> str:
    """One hash for a partitioned artifact: SHA-256 over its partitions' SHA-256s, in order."""
    return hashlib.sha256("\n".join(p["sha256"] for p in parts).encode()).hexdigest()


@private_task("ingest")
@sanitized("ingest")
def ingest_task(
    input_path: str,
    policy_ref: dict[str, str],
    workdir: str,
    keyring_path: str,
    out_dir: str,
    run_id: str,
    partition_rows: int,
) -> dict[str, Any]:
    policy = run_policy(policy_ref)
    ring = unlocked(keyring_path)
    work = Workspace(ring.for_scope(policy.keys.seal.intermediates), workdir, run_id=run_id)

    def save(offset: int, frame: pl.DataFrame) -> dict[str, Any]:
        i = offset // partition_rows
        return {
            **_saved(work, f"raw-{i}", frame),
            "index": i,
            "offset": offset,
            "rows": frame.height,
        }

    if policy.input.kind == "postgres":  # input_path is the source's description
        reader: Callable[..., Any] = stages.ingest_database
        source: Any = PostgresSource.from_policy(policy.input)
    else:
        reader, source = stages.ingest, Path(input_path)
    parts, record = reader(
        source,
        policy,
        ring.for_scope(policy.keys.seal.vault),
        Path(out_dir) / stages.VAULT_DIR,
        content=content_key(pseudonym_provider(ring, policy.keys.pseudonym_key_env)),
        partition_rows=partition_rows,
        save=save,
    )
    return {"parts": parts, "sha256": _digest(parts), "record": record.to_dict()}


@private_task("detect")
@sanitized("detect")
def detect_task(
    part: dict[str, Any], policy_ref: dict[str, str], keyring_path: str, run_id: str
) -> dict[str, Any]:
    policy = run_policy(policy_ref)
    work = Workspace(unlocked(keyring_path), run_id=run_id)
    scanner = TextScanner.for_policy(policy)
    record = stages.detect(work.load(part["path"]), policy, scanner)
    return {"record": record.to_dict()}


@private_task("transform")
@sanitized("transform")
def transform_task(
    part: dict[str, Any], policy_ref: dict[str, str], workdir: str, keyring_path: str, run_id: str
) -> dict[str, Any]:
    policy = run_policy(policy_ref)
    ring = unlocked(keyring_path)
    work = Workspace(ring.for_scope(policy.keys.seal.intermediates), workdir, run_id=run_id)
    # scrub's free text goes through a pool of processes when there is much of it
    scanner = TextScanner.for_policy(policy, workers=default_workers())
    keys = pseudonym_provider(ring, policy.keys.pseudonym_key_env)
    frame, record = stages.transform(work.load(part["path"]), policy, keys, scanner)
    counts = stages.count(frame, policy, row_offset=part["offset"])
    i = part["index"]
    return {
        **_saved(work, f"transformed-{i}", frame),
        "index": i,
        "offset": part["offset"],
        "rows": frame.height,
        "counts": None if counts is None else str(work.save(f"counts-{i}", counts)),
        "record": record.to_dict(),
    }


@private_task("anonymize")
@sanitized("anonymize")
def plan_task(
    counts_paths: list[str],
    rows: int,
    policy_ref: dict[str, str],
    workdir: str,
    keyring_path: str,
    run_id: str,
) -> dict[str, Any]:
    policy = run_policy(policy_ref)
    work = Workspace(
        unlocked(keyring_path).for_scope(policy.keys.seal.intermediates), workdir, run_id=run_id
    )
    # held as categoricals (a 4-byte code per cell, not a string) until merged: the
    # counts have near one row per record when the quasi-identifiers are fine-grained
    counts = [
        work.load(p).with_columns(pl.col(pl.String).cast(pl.Categorical)) for p in counts_paths
    ] or None
    rewrite, record = stages.plan_anonymization(counts, policy, _progress.search, rows=rows)
    digest = hashlib.sha256()
    saved = None if rewrite is None else work.save_json("rewrite", rewrite.to_dict(), digest=digest)
    return {
        "path": None if saved is None else str(saved),
        "sha256": None if saved is None else digest.hexdigest(),
        "record": record.to_dict(),
    }


@private_task("anonymize-partition")
@sanitized("anonymize")
def apply_task(
    part: dict[str, Any],
    rewrite_path: str,
    workdir: str,
    keyring_path: str,
    run_id: str,
    scope: str,
) -> dict[str, Any]:
    from privacy.kanon import Rewrite, apply

    work = Workspace(unlocked(keyring_path).for_scope(scope), workdir, run_id=run_id)
    rewrite = Rewrite.from_dict(work.load_json(rewrite_path))
    frame = apply(work.load(part["path"]), rewrite)
    i = part["index"]
    return {**_saved(work, f"anonymized-{i}", frame), "index": i, "rows": frame.height}


@private_task("gate")
@sanitized("gate")
def gate_task(
    raw_parts: list[dict[str, Any]],
    parts: list[dict[str, Any]],
    policy_ref: dict[str, str],
    keyring_path: str,
    run_id: str,
) -> dict[str, Any]:
    policy = run_policy(policy_ref)
    work = Workspace(unlocked(keyring_path), run_id=run_id)
    scanner = TextScanner.for_policy(policy, workers=default_workers())
    gate = stages.Gate(policy, scanner, total_rows=sum(p["rows"] for p in raw_parts))
    for raw, out in zip(raw_parts, parts, strict=True):
        gate.add(work.scan(raw["path"]), work.load(out["path"]))
    return {"record": gate.finish().to_dict()}


@private_task("publish")
@sanitized("publish")
def publish_task(
    parts: list[dict[str, Any]],
    policy_ref: dict[str, str],
    out_dir: str,
    input_path: str,
    keyring_path: str,
    run_id: str,
    audit_path: str,
    records: list[dict[str, Any]],
    view_parts: list[dict[str, Any]],
) -> dict[str, Any]:
    policy = run_policy(policy_ref)
    started = time.perf_counter()
    ring = unlocked(keyring_path)
    work = Workspace(ring, run_id=run_id)
    rows = sum(p["rows"] for p in parts)
    record = stages.StageRecord("publish", rows_in=rows, rows_out=rows)
    done = stages.release(
        lambda: (work.scan(p["path"]) for p in parts),
        (work.scan(p["path"]) for p in view_parts) if view_parts else None,
        policy,
        Path(out_dir),
        keys_for=ring.for_scope,
        input_path=input_path,
        input_digest=records[0]["params"]["input"],
        run_id=run_id,
        stages=[*records, record.to_dict()],
        audit_trail=Path(audit_path),
    )
    published, view = done.published, done.training_view
    database, object_store = done.database, done.object_store
    manifest = published.manifest
    record.duration_s = round(time.perf_counter() - started, 4)
    record.params = {
        "sealed": manifest["output"]["sealed"],
        "kek_id": manifest["output"]["kek_id"],
        # what the report's columns row reads: from this signed record, not the manifest
        "columns": manifest["output"]["columns"],
    }
    if database is not None:
        record.params["database"] = database  # host, port, database, table, mode, rows
    if object_store:
        record.params["object_store"] = object_store  # the objects written
    if view is not None:
        record.params["training_view"] = {
            k: view[k] for k in ("path", "sha256", "rows", "kek_id", "scope")
        }
    data = Path(out_dir) / manifest["output"]["path"]
    return {
        "path": str(data),
        "sha256": manifest["output"]["sha256"],
        "manifest_sha256": published.files[stages.MANIFEST_FILE],
        "files": published.files,  # each by its path under out_dir: re-hashed by verify
        "record": record.to_dict(),
    }


OUTPUTS = (stages.DATA_FILE, stages.SEALED_DATA_FILE, stages.MANIFEST_FILE, "report.html")


class _Steps:
    """Runs each task (or one task per partition), and appends its audit record (failed
    ones too) as it ends."""

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
            self._failed(step, exc, started, inputs)
            raise
        record = result["record"]
        outputs = {
            k: v
            for k, v in result.items()
            if (k.endswith("sha256") or k == "files") and v is not None
        }
        self._append(record, outputs, inputs)
        return result

    def wave(
        self,
        step: str,
        task_fn: Task[..., dict[str, Any]],
        parts: list[dict[str, Any]],
        *args: Any,
        inputs: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """``task_fn`` on every partition, submitted to the flow's task runner at once;
        one merged record for the stage."""
        started = time.perf_counter()
        futures = task_fn.map(parts, *(unmapped(a) for a in args))
        try:
            for done, _ in enumerate(as_completed(futures), start=1):
                if _progress.partitions is not None:
                    _progress.partitions(step, done, len(parts))
            results = [future.result() for future in futures]
        except BaseException as exc:
            wait(futures)  # nothing may still run when the workspace is removed
            self._failed(step, exc, started, inputs)
            raise
        if "record" in results[0]:
            record = stages.merge_records(step, [r["record"] for r in results]).to_dict()
            record["duration_s"] = round(time.perf_counter() - started, 4)
            outputs = {"sha256": _digest(results)} if "sha256" in results[0] else {}
            self._append(record, outputs, inputs)
        return results

    def _failed(
        self, step: str, exc: BaseException, started: float, inputs: dict[str, str] | None
    ) -> None:
        record_failed_step(
            self.trail,
            step,
            exc,
            duration_s=round(time.perf_counter() - started, 4),
            inputs=inputs,
            # which guarantee failed, for the report's verdict; counts and names only
            params=exc.audit_fields() if isinstance(exc, PrivacyGuaranteeError) else None,
        )

    def _append(
        self, record: dict[str, Any], outputs: dict[str, str], inputs: dict[str, str] | None
    ) -> None:
        if record["stage"] == "ingest":  # the raw input: keyed, never a plain hash
            inputs = {"input_hmac": record["params"]["input"]["hmac_sha256"], **(inputs or {})}
        self.trail.append(
            record["stage"],
            duration_s=record["duration_s"],
            inputs=inputs or {},
            outputs=outputs,
            counts={
                "rows_in": record["rows_in"],
                "rows_out": record["rows_out"],
                **record["counts"],
            },
            params={"status": record["status"], **record["params"]},
        )
        self.trail.flush()
        self.records.append(_report(record))


# Partitions in threads of this process (polars releases the GIL); a few at a time, so
# memory holds a few partitions, not all of them.
_THREADS: TaskRunner[Any] = ThreadPoolTaskRunner(max_workers=min(4, os.cpu_count() or 1))


@flow(
    name="sanitize",
    persist_result=False,
    log_prints=False,
    validate_parameters=True,
    task_runner=_THREADS,
)
def sanitize_flow(
    input_path: str,
    policy_path: str,
    out_dir: str,
    keyring_path: str,
    overwrite: bool = False,
    audit_path: str | None = None,
    partition_rows: int = stages.DEFAULT_PARTITION_ROWS,
    workdir: str | None = None,
) -> dict[str, Any]:
    """Sanitize one input file by one policy into ``out_dir``; returns the run summary.

    The keyring is passed by path; it must be unlocked in this process (see flows._keys).
    Every step, failed ones included, is appended to the audit trail (default
    ``out_dir/audit.jsonl``), which is signed when the run ends however it ends.
    ``workdir``: where the run's sealed intermediates go (default: a private temporary
    folder); with Dask workers on other machines, a folder every worker can reach.
    """
    if partition_rows < 1:
        raise PolicyError(f"partition_rows: must be at least 1, not {partition_rows}")
    run = start_run("sanitize", policy_path, keyring_path)  # refused before any work
    policy, ring, run_id = run.policy, run.ring, run.run_id
    # and refused if raw input cannot be keyed
    content_key(pseudonym_provider(ring, policy.keys.pseudonym_key_env))
    out = Path(out_dir)
    prepare_output_dir(out, overwrite=overwrite, outputs=OUTPUTS, folders=(stages.VAULT_DIR,))
    trail_path = Path(audit_path) if audit_path else out / stages.AUDIT_FILE
    root = Path(workdir) / f"privpipe-work-{run_id}" if workdir else None
    own_trail = audit_path is None  # the report reads the run's own trail, signed
    with (
        audited(run, out, trail_path, report=own_trail) as trail,
        Workspace(ring.for_scope(policy.keys.seal.intermediates), root, run_id=run_id) as work,
    ):
        steps = _Steps(trail)
        where = _Where(input_path, out_dir, keyring_path, str(work.root), str(trail_path))
        raw, anonymized, transformed = _to_anonymized(steps, run, where, partition_rows)
        published = _gate_and_publish(steps, run, where, raw, anonymized, transformed)
    summary = _summary(run, steps.records, published, out, trail_path, trail_head(trail))
    if own_trail:  # the report, its SHA-256 then recorded in the trail
        recorded = report_run(out, ring, trail_path, run.context)
        summary["outputs"]["report"] = str(recorded.path)
        summary["audit"] = trail_head(recorded.trail)  # the final signed head
    store = stages.object_store_prefix(policy, out_dir)
    if store is not None:  # and the evidence beside the data
        names = [REPORT_FILE, stages.AUDIT_FILE, f"{stages.AUDIT_FILE}.head"] if own_trail else []
        summary["outputs"]["object_store"] = upload_artifacts(out, names, store)
    publish_sanitize(summary, steps.records)
    return summary


@dataclass(frozen=True)
class _Where:
    """Where a sanitize run reads and writes, as its tasks are handed it (paths only)."""

    input_path: str
    out_dir: str
    keyring_path: str
    workdir: str
    trail_path: str


def _to_anonymized(
    steps: _Steps, run: FlowRun, where: _Where, partition_rows: int
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Ingest (and the vault record), detect, transform, plan and apply the
    anonymization: (the raw partitions, the anonymized ones, the transformed ones)."""
    ref, wd, keys, run_id = run.policy_ref, where.workdir, where.keyring_path, run.run_id
    raw = steps.run(
        "ingest", ingest_task, where.input_path, ref, wd, keys, where.out_dir, run_id,
        partition_rows,
    )  # fmt: skip
    ingest = steps.records[0]
    vault, keyed = ingest["params"]["vault"], ingest["params"]["input"]
    steps.trail.append(
        "vault",
        inputs={"input_hmac": keyed["hmac_sha256"]},
        outputs={"vault": vault["sha256"]},
        params={"kek_id": vault["kek_id"], "input_key_id": keyed["key_id"]},
    )
    raw_parts = raw["parts"]
    inputs = {"raw": raw["sha256"]}
    steps.wave("detect", detect_task, raw_parts, ref, keys, run_id, inputs=inputs)
    transformed = steps.wave(
        "transform", transform_task, raw_parts, ref, wd, keys, run_id, inputs=inputs
    )
    counts = [t["counts"] for t in transformed if t["counts"] is not None]
    rows = sum(t["rows"] for t in transformed)
    plan = steps.run(
        "anonymize", plan_task, counts, rows, ref, wd, keys, run_id,
        inputs={"transformed": _digest(transformed)},
    )  # fmt: skip
    anonymized = transformed
    if plan["path"] is not None:
        anonymized = steps.wave(
            "anonymize", apply_task, transformed, plan["path"], wd, keys, run_id,
            run.policy.keys.seal.intermediates,
        )  # fmt: skip
    return raw, anonymized, transformed


def _gate_and_publish(
    steps: _Steps,
    run: FlowRun,
    where: _Where,
    raw: dict[str, Any],
    anonymized: list[dict[str, Any]],
    transformed: list[dict[str, Any]],
) -> dict[str, Any]:
    """The gate (fail closed), then the release: what publish_task returned."""
    ref, keys, run_id = run.policy_ref, where.keyring_path, run.run_id
    digest = _digest(anonymized)
    steps.run(
        "gate", gate_task, raw["parts"], anonymized, ref, keys, run_id,
        inputs={"raw": raw["sha256"], "anonymized": digest},
    )  # fmt: skip
    return steps.run(
        "publish", publish_task, anonymized, ref, where.out_dir, where.input_path, keys,
        run_id, where.trail_path, steps.records,
        transformed if run.policy.keeps_training_view() else [],
        inputs={"anonymized": digest},
    )  # fmt: skip


def _summary(
    run: FlowRun,
    records: list[dict[str, Any]],
    published: dict[str, Any],
    out: Path,
    trail_path: Path,
    head: dict[str, Any],
) -> dict[str, Any]:
    """What the flow returns (and the command prints with --json)."""
    return {
        "status": "ok",
        "run_id": run.run_id,
        "policy": run.policy.identity(),
        "rows_in": records[0]["rows_in"],
        "rows_out": records[-1]["rows_out"],
        "outputs": {
            "data": published["path"],
            "manifest": str(out / stages.MANIFEST_FILE),
            "vault": records[0]["params"]["vault"]["path"],
            "audit": str(trail_path),
        },
        "audit": head,
        "stages": {
            r["stage"]: {"status": r["status"], "rows_out": r["rows_out"], "counts": r["counts"]}
            for r in records
        },
        "anonymization": next(r["counts"] for r in records if r["stage"] == "anonymize"),
    }
