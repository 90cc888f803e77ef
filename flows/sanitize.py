"""The sanitize flow: ingest -> detect -> transform -> anonymize -> gate -> publish.

Tasks hand each other paths of files in a private workspace, never frames, so Prefect's
database sees paths, counts and hashes only. Every task: no result persistence, no
cache, no captured prints. Exceptions are sanitized before Prefect records them: a
privpipe error's message names places, never values; any other exception is replaced
by its type and the stage (the original stays in this process, for ``--debug``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from flows._prefect_env import configure_prefect

configure_prefect()

from prefect import Task, flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.runtime import flow_run  # noqa: E402

from flows._keys import keyring as _keyring  # noqa: E402
from flows._keys import pseudonym_provider  # noqa: E402
from privacy import stages  # noqa: E402
from privacy.crypto import Keyring  # noqa: E402
from privacy.errors import PrivpipeError  # noqa: E402
from privacy.io import prepare_output_dir  # noqa: E402
from privacy.policy import Policy, load_policy  # noqa: E402
from privacy.workspace import Workspace  # noqa: E402

__all__ = ["InternalStageError", "last_internal_error", "sanitize_flow", "set_progress"]

P = ParamSpec("P")
R = TypeVar("R")

_progress: Callable[[dict[str, Any]], None] | None = None
_internal: list[BaseException] = []


class InternalStageError(RuntimeError):
    """A stage failed for a reason that is not the user's; details stay out of Prefect."""


def set_progress(callback: Callable[[dict[str, Any]], None] | None) -> None:
    """Receive each stage's record as it completes (the CLI draws progress from it)."""
    global _progress
    _progress = callback


def last_internal_error() -> BaseException | None:
    """The unsanitized exception behind the last :class:`InternalStageError`, if any."""
    return _internal[-1] if _internal else None


def _sanitized(stage: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except PrivpipeError as exc:
                raise type(exc)(str(exc)) from None
            except Exception as exc:
                _internal.append(exc)
                raise InternalStageError(
                    f"internal error in stage {stage} ({type(exc).__name__})"
                ) from None

        return run

    return wrap


def _private_task(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task whose parameters are paths and whose result is never persisted or cached."""
    return task(name=name, persist_result=False, cache_policy=NO_CACHE, log_prints=False, retries=0)


def _report(record: dict[str, Any]) -> dict[str, Any]:
    if _progress is not None:
        _progress(record)
    return record


def _keys(keyring_path: str) -> Keyring:
    return _keyring(keyring_path)


@_private_task("ingest")
@_sanitized("ingest")
def ingest_task(
    input_path: str, policy_path: str, workdir: str, keyring_path: str, out_dir: str, run_id: str
) -> dict[str, Any]:
    policy = load_policy(policy_path)
    keys = _keys(keyring_path)
    frame, record = stages.ingest(Path(input_path), policy, keys, Path(out_dir) / stages.VAULT_DIR)
    path = Workspace(keys, workdir, run_id=run_id).save("raw", frame)
    return {"path": str(path), "record": record.to_dict()}


@_private_task("detect")
@_sanitized("detect")
def detect_task(raw_path: str, policy_path: str, keyring_path: str, run_id: str) -> dict[str, Any]:
    policy = load_policy(policy_path)
    work = Workspace(_keys(keyring_path), run_id=run_id)
    record = stages.detect(work.load(raw_path), policy)
    return {"path": raw_path, "record": record.to_dict()}


@_private_task("transform")
@_sanitized("transform")
def transform_task(
    raw_path: str, policy_path: str, workdir: str, keyring_path: str, run_id: str
) -> dict[str, Any]:
    policy = load_policy(policy_path)
    ring = _keys(keyring_path)
    work = Workspace(ring, workdir, run_id=run_id)
    frame, record = stages.transform(work.load(raw_path), policy, pseudonym_provider(policy, ring))
    return {"path": str(work.save("transformed", frame)), "record": record.to_dict()}


@_private_task("anonymize")
@_sanitized("anonymize")
def anonymize_task(
    path: str, policy_path: str, workdir: str, keyring_path: str, run_id: str
) -> dict[str, Any]:
    policy = load_policy(policy_path)
    work = Workspace(_keys(keyring_path), workdir, run_id=run_id)
    frame, record = stages.anonymize(work.load(path), policy)
    return {"path": str(work.save("anonymized", frame)), "record": record.to_dict()}


@_private_task("gate")
@_sanitized("gate")
def gate_task(
    raw_path: str, path: str, policy_path: str, keyring_path: str, run_id: str
) -> dict[str, Any]:
    policy = load_policy(policy_path)
    work = Workspace(_keys(keyring_path), run_id=run_id)
    record = stages.gate(work.load(raw_path), work.load(path), policy)
    return {"path": path, "record": record.to_dict()}


@_private_task("publish")
@_sanitized("publish")
def publish_task(
    path: str,
    policy_path: str,
    out_dir: str,
    input_path: str,
    keyring_path: str,
    run_id: str,
    records: list[dict[str, Any]],
) -> dict[str, Any]:
    policy = load_policy(policy_path)
    started = time.perf_counter()
    keys = _keys(keyring_path)
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
    )
    record.duration_s = round(time.perf_counter() - started, 4)
    record.params = {
        "output_sha256": manifest["output"]["sha256"],
        "sealed": manifest["output"]["sealed"],
    }
    return {"path": str(Path(out_dir) / manifest["output"]["path"]), "record": record.to_dict()}


OUTPUTS = (stages.DATA_FILE, stages.SEALED_DATA_FILE, stages.MANIFEST_FILE)


@flow(name="sanitize", persist_result=False, log_prints=False, validate_parameters=True)
def sanitize_flow(
    input_path: str, policy_path: str, out_dir: str, keyring_path: str, overwrite: bool = False
) -> dict[str, Any]:
    """Sanitize one input file by one policy into ``out_dir``; returns the run summary.

    The keyring is passed by path; it must be unlocked in this process (see flows._keys).
    """
    policy: Policy = load_policy(policy_path)
    stages.check_supported(policy)
    _keys(keyring_path)  # fail before any work if the keyring cannot be opened
    out = Path(out_dir)
    prepare_output_dir(out, overwrite=overwrite, outputs=OUTPUTS, folders=(stages.VAULT_DIR,))
    run_id = str(flow_run.id or "local")
    records: list[dict[str, Any]] = []
    with Workspace(_keys(keyring_path), run_id=run_id) as work:
        workdir = str(work.root)
        raw = ingest_task(input_path, policy_path, workdir, keyring_path, out_dir, run_id)
        records.append(_report(raw["record"]))
        detected = detect_task(raw["path"], policy_path, keyring_path, run_id)
        records.append(_report(detected["record"]))
        transformed = transform_task(raw["path"], policy_path, workdir, keyring_path, run_id)
        records.append(_report(transformed["record"]))
        anonymized = anonymize_task(transformed["path"], policy_path, workdir, keyring_path, run_id)
        records.append(_report(anonymized["record"]))
        gated = gate_task(raw["path"], anonymized["path"], policy_path, keyring_path, run_id)
        records.append(_report(gated["record"]))
        published = publish_task(
            gated["path"], policy_path, out_dir, input_path, keyring_path, run_id, records
        )
        records.append(_report(published["record"]))
    return {
        "status": "ok",
        "run_id": run_id,
        "policy": {"name": policy.name, "sha256": policy.hash},
        "rows_in": records[0]["rows_in"],
        "rows_out": records[-1]["rows_out"],
        "outputs": {
            "data": published["path"],
            "manifest": str(out / stages.MANIFEST_FILE),
            "vault": records[0]["params"]["vault"]["path"],
        },
        "stages": {
            r["stage"]: {"status": r["status"], "rows_out": r["rows_out"], "counts": r["counts"]}
            for r in records
        },
    }
