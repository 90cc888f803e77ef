"""Scheduled sanitization: the flow a schedule runs, and the loop that serves it.

Each run of :func:`scheduled_sanitize_flow` sanitizes one input file into a dated
folder of its own under the output root (``ROOT/2026-11-29T074512Z/``, UTC; a suffix
``-2``, ``-3``, ... keeps two runs in the same second apart), calling
:func:`flows.sanitize.sanitize_flow` as a subflow. After a successful run,
``ROOT/latest.json`` (written atomically) names that folder, the input's keyed digest
and the policy hash it processed. When the policy sets ``schedule.skip_unchanged``, a
run whose input file has the same keyed digest (HMAC-SHA256 under the content key, see
:mod:`privacy.hashing`; never a plain hash of raw content, which a small input's
candidates would give away) as the one the last successful run's manifest records,
under the same content key and policy, writes nothing and reports ``input unchanged
since RUN; not reprocessed`` (its return value and a markdown artifact). The content
key comes from the pseudonym secret, which never rotates, so a KEK rotation does not
make an unchanged input look changed.

:func:`serve_schedule` registers the flow as a deployment on the Prefect server
that ``PREFECT_API_URL`` names, with a cron or interval schedule, and runs its
scheduled runs, each in a process of its own; runs never overlap (a deployment
concurrency limit of 1 whose late ticks the server cancels). Those processes unlock
the keyring with ``PRIVPIPE_PASSPHRASE`` from the environment (see flows._keys): the
passphrase is never a flow parameter. Parameters, logs, artifacts and results hold
paths, hashes and counts only; results are never persisted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from flows._prefect_env import configure_prefect

configure_prefect()

from prefect import flow, get_run_logger  # noqa: E402
from prefect.artifacts import create_markdown_artifact  # noqa: E402
from prefect.runtime import flow_run  # noqa: E402

from flows._keys import keyring  # noqa: E402
from flows.sanitize import sanitize_flow  # noqa: E402
from privacy.crypto import pseudonym_provider  # noqa: E402
from privacy.errors import InputError, ServerError  # noqa: E402
from privacy.hashing import content_key  # noqa: E402
from privacy.io import atomic_write_json  # noqa: E402
from privacy.policy import Policy, load_policy  # noqa: E402
from privacy.schedule import (  # noqa: E402
    MANIFEST_FILE,
    STATE_FILE,
    make_run_folder,
    read_json,
    record_skip,
    unchanged_since,
)
from privacy.sources import PostgresSource  # noqa: E402
from privacy.sources.objectstore import object_url  # noqa: E402
from privacy.stages import input_digest  # noqa: E402

__all__ = [
    "ARTIFACT_KEY",
    "scheduled_sanitize_flow",
    "serve_schedule",
]

ARTIFACT_KEY = "privpipe-scheduled-run"


# --------------------------------------------------------------------------- the flow


@flow(name="scheduled-sanitize", persist_result=False, log_prints=False, validate_parameters=True)
def scheduled_sanitize_flow(
    input_path: str, policy_path: str, out_root: str, keyring_path: str
) -> dict[str, Any]:
    """Sanitize ``input_path`` into a new dated folder under ``out_root``, unless the
    policy's ``schedule.skip_unchanged`` holds and the input has not changed since the
    last successful run. Returns a summary (paths, hashes, counts)."""
    logger = get_run_logger()
    policy = load_policy(policy_path)
    database = policy.input.kind == "postgres"  # input_path: the source's description
    url = object_url(input_path)  # or an object, s3://bucket/key
    source, root = (input_path if database or url else Path(input_path)), Path(out_root)
    if not database and not url and not Path(source).is_file():
        raise InputError(f"{source}: input file not found")
    if policy.schedule.skip_unchanged:
        content = content_key(
            pseudonym_provider(keyring(keyring_path), policy.keys.pseudonym_key_env)
        )
        digest = input_digest(source, policy, keyring(keyring_path), content)
        previous = unchanged_since(root, digest["hmac_sha256"], digest["key_id"], policy.hash)
        if previous is not None:
            return _skip(root, source, policy, digest, previous)
    out = make_run_folder(root)
    logger.info("sanitizing %s into %s", source, out)
    summary = sanitize_flow(
        input_path=str(source), policy_path=policy_path, out_dir=str(out), keyring_path=keyring_path
    )
    manifest = read_json(out / MANIFEST_FILE) or {}
    recorded = manifest.get("input") or {}
    processed = {k: recorded.get(k) for k in ("hmac_sha256", "key_id")}  # what ingest read
    atomic_write_json(
        root / STATE_FILE,
        {
            "run": out.name,
            "flow_run_id": str(flow_run.id or "local"),
            "sanitize_run_id": summary["run_id"],
            "input": {"path": str(source), **processed},
            "policy": policy.identity(),
            "rows_in": summary["rows_in"],
            "rows_out": summary["rows_out"],
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )
    message = f"sanitized {summary['rows_in']:,} -> {summary['rows_out']:,} rows into {out}"
    _publish(
        message,
        [
            f"- input `{source}` {_keyed(processed)}",
            f"- policy `{policy.name}` sha256 `{policy.hash}`",
            f"- sanitize run `{summary['run_id']}`, audit trail `{summary['outputs']['audit']}`",
        ],
    )
    logger.info(message)
    return {
        "status": "ok",
        "message": message,
        "run": out.name,
        "out_dir": str(out),
        "input": {"path": str(source), **processed},
        "policy": policy.identity(),
        "sanitize": summary,
    }


def _skip(
    root: Path, source: str | Path, policy: Policy, digest: dict[str, str], previous: str
) -> dict[str, Any]:
    """The input is unchanged since the last successful run: say so (artifact, log,
    ``skipped.jsonl``) and process nothing."""
    logger = get_run_logger()
    message = f"input unchanged since {previous}; not reprocessed"
    _publish(
        message,
        [
            f"- input `{source}` {_keyed(digest)}",
            f"- policy `{policy.name}` sha256 `{policy.hash}`",
            f"- last successful run `{root / previous}`",
        ],
    )
    record_skip(
        root,
        {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "last_run": previous,
            "flow_run_id": str(flow_run.id or "local"),
            "input": {"hmac_sha256": digest["hmac_sha256"], "key_id": digest["key_id"]},
            "policy": policy.identity(),
        },
    )
    logger.info(message)
    return {
        "status": "skipped",
        "message": message,
        "last_run": previous,
        "input": {"path": str(source), **digest},
        "policy": policy.identity(),
    }


def _keyed(digest: dict[str, Any]) -> str:
    return f"hmac-sha256 `{digest['hmac_sha256']}` (content key `{digest['key_id']}`)"


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _publish(message: str, lines: list[str]) -> None:
    create_markdown_artifact(
        "\n".join([f"# privpipe scheduled run: {message}", "", *lines]),
        key=ARTIFACT_KEY,
        description=message,
    )


# --------------------------------------------------------------------------- serving


def serve_schedule(
    *,
    input_path: Path | None,
    policy_path: Path,
    out_root: Path,
    keyring_path: Path,
    name: str,
    cron: str | None = None,
    interval: float | None = None,
    limit: int | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> int:
    """Create (or update) the deployment ``scheduled-sanitize/NAME`` with one schedule
    and run its runs until stopped (SIGTERM, Ctrl-C) or, with ``limit``, until that
    many runs have finished (no run is cut short). Returns the runs that finished.

    The Prefect server is the one ``PREFECT_API_URL`` names now, even if Prefect was
    imported before it was set. The schedule is paused when serving stops.
    """
    from prefect.context import refresh_global_settings_context
    from prefect.settings import get_current_settings

    refresh_global_settings_context()
    if not get_current_settings().api.url:
        raise ServerError("scheduled runs need a Prefect server: set PREFECT_API_URL")
    if input_path is None:  # a database source: its description, never its URI
        source = PostgresSource.from_policy(load_policy(policy_path).input).describe()
    else:
        source = object_url(input_path) or str(input_path.resolve())
    parameters = {
        "input_path": source,
        "policy_path": str(policy_path.resolve()),
        "out_root": str(out_root.resolve()),
        "keyring_path": str(keyring_path.resolve()),
    }
    return asyncio.run(_serve(parameters, name, cron, interval, limit, say))


async def _serve(
    parameters: dict[str, str],
    name: str,
    cron: str | None,
    interval: float | None,
    limit: int | None,
    say: Callable[[str], None],
) -> int:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.runner import Runner
    from prefect.schedules import Cron, Interval
    from prefect.types.entrypoint import EntrypointType

    schedule = Cron(cron, timezone="UTC") if cron else Interval(dt.timedelta(seconds=interval or 0))
    poll = min(10.0, max(1.0, interval)) if interval else 10.0
    runner = Runner(name=f"privpipe-{name}", limit=1, pause_on_shutdown=True, query_seconds=poll)
    since = dt.datetime.now(dt.UTC)
    deployment_id = await runner.aadd_flow(
        scheduled_sanitize_flow,
        name=name,
        schedules=[schedule],
        parameters=parameters,
        description="privpipe serve: sanitize one input on a schedule into dated folders.",
        tags=["privpipe"],
        entrypoint_type=EntrypointType.MODULE_PATH,
        # Runs never overlap (this runner takes one at a time, the server allows one
        # across runners); a tick that falls due while a run is going waits a little,
        # and once it is late the server cancels it: ticks never pile up.
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
        ),
    )
    every = f"cron '{cron}' (UTC)" if cron else f"every {interval:g} s"
    say(
        f"serving deployment 'scheduled-sanitize/{name}' ({deployment_id}) {every}: each run "
        f"writes {parameters['out_root']}/<UTC start>/"
        + (f"; stopping after {_runs(limit)}" if limit else "; Ctrl-C stops")
    )
    finished: set[UUID] = set()
    watcher = asyncio.create_task(_watch(runner, deployment_id, since, limit, finished, say))
    try:
        await runner.start()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    return len(finished)


async def _watch(
    runner: Any,
    deployment_id: UUID,
    since: dt.datetime,
    limit: int | None,
    finished: set[UUID],
    say: Callable[[str], None],
) -> None:
    """Say how each run ended (and each tick the server cancelled). With ``limit``:
    once that many runs have been handed out, pause the schedule (the server drops the
    runs still scheduled); once every run handed out has ended, stop the runner, so no
    run is cut short. ``finished`` collects the runs that ended (not cancelled ticks)."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    handed_out = FlowRunFilter(
        # the server compares the start time, else the expected start time
        start_time=FlowRunFilterStartTime(after_=since),
        state=FlowRunFilterState(type=FlowRunFilterStateType(not_any_=[StateType.SCHEDULED])),
    )
    ours = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
    reported: set[UUID] = set()
    started: set[UUID] = set()
    paused = False
    async with get_client() as client:
        while True:
            await asyncio.sleep(2)
            try:
                runs = await client.read_flow_runs(
                    deployment_filter=ours,
                    flow_run_filter=handed_out,
                    sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                    limit=50,
                )
                busy = False
                for run in sorted(runs, key=lambda r: r.expected_start_time or since):
                    state = run.state
                    if state is None or not state.is_final():
                        busy = True
                        started.add(run.id)
                        continue
                    dropped = state.type == StateType.CANCELLED and not run.run_count
                    if not dropped:
                        started.add(run.id)
                    if run.id in reported:
                        continue
                    reported.add(run.id)
                    if not dropped:
                        finished.add(run.id)
                    say(await _outcome(client, run))
                if limit is None:
                    continue
                if len(started) >= limit and not paused:
                    await client.pause_deployment(deployment_id)
                    paused = True
                if len(finished) < limit or busy:
                    continue
            except Exception as exc:  # a hiccup of the API: keep serving, try again
                say(f"could not read the runs' states ({type(exc).__name__}); retrying")
                continue
            await runner.astop()
            return


async def _outcome(client: Any, run: Any) -> str:
    """``run NAME (ID): STATE: what it did``: its artifact's description, else the
    state's message (a privpipe error names places, never values)."""
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    artifacts = await client.read_artifacts(
        artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[ARTIFACT_KEY]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]),
        )
    )
    what = next((a.description for a in artifacts if a.description), None)
    if what is None and not run.state.is_completed():
        what = run.state.message
    return f"run {run.name} ({run.id}): {run.state.name}" + (f": {what}" if what else "")
