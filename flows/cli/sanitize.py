"""privpipe sanitize: one sanitize flow over an input file.

The checks made before Prefect starts (:func:`check_policy_and_input`,
:func:`check_run_inputs`) and the summary it prints are shared with ``run``, ``demo``
and ``serve``."""

from __future__ import annotations

import enum
import json
import os
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from flows.cli.app import (
    PASSPHRASE_ENV,
    STATE,
    AuditOption,
    OverwriteOption,
    app,
    keyring_option,
    open_keyring,
)


class TaskRunnerName(enum.StrEnum):
    threads = "threads"
    dask = "dask"


def check_policy_and_input(input_path: Path | None, policy_file: Path, out: Path) -> Any:
    """What a sanitize run (now, or scheduled) can check before Prefect starts and
    without reading data: the policy (valid, supported, signed where it must be), the
    input (there, of a known format), the output (not a file). Returns the policy."""
    from privacy.errors import InputError, OutputError
    from privacy.io import detect_format, plain_name
    from privacy.policy import load_policy
    from privacy.policy_signing import enforce_policy_signature

    policy = load_policy(policy_file)
    enforce_policy_signature(policy)  # signed policies: refused here, before Prefect starts
    if policy.input.kind == "postgres":
        from privacy.sources import PostgresSource

        if input_path is not None:
            raise InputError(
                f"{input_path}: the policy reads from PostgreSQL (input.kind: postgres): "
                "give no INPUT"
            )
        PostgresSource.from_policy(policy.input).describe()  # its URI variable is set
    else:
        from privacy.sources.objectstore import check_object, object_url

        if input_path is None:
            raise InputError(
                "INPUT: give the file to sanitize (or a policy with input.kind: postgres)"
            )
        url = object_url(input_path)
        if url is not None:
            check_object(url)  # there and readable, before Prefect starts
        elif not input_path.is_file():
            raise InputError(f"{input_path}: input file not found")
        detect_format(plain_name(input_path), policy.input.format)
    if policy.outputs.database is not None:
        from privacy.sources import PostgresTable

        spec = policy.outputs.database
        PostgresTable(spec.uri_env, spec.table, spec.mode).describe()  # its URI is set
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    return policy


def flow_source(input_path: Path | None, policy: Any) -> str:
    """What a flow is told to read: the resolved path of a local file, an ``s3://`` URL,
    or a database source's description (host, port, database, table: no credentials)."""
    from privacy.sources import PostgresSource
    from privacy.sources.objectstore import object_url

    if input_path is None:
        return PostgresSource.from_policy(policy.input).describe()
    return object_url(input_path) or str(input_path.resolve())


def check_run_inputs(
    input_path: Path | None, policy_file: Path, out: Path, overwrite: bool, keyring: Path | None
) -> Path:
    """Fail fast, before Prefect starts, on what can be checked without reading data;
    unlock the keyring (asking for its passphrase if need be). Returns its path."""
    from flows import _keys
    from privacy.errors import OutputError
    from privacy.transform import operators_for

    policy = check_policy_and_input(input_path, policy_file, out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"{out}: output folder exists and is not empty (use --overwrite)")
    from flows.cli.app import start_prefect_early

    start_prefect_early(policy)  # it boots while the keyring unlocks
    ring_path = _keys.resolve_keyring_path(keyring, policy)
    ring = open_keyring(ring_path)
    seal = policy.keys.seal
    for scope in (seal.vault, seal.intermediates, seal.published):  # refused before Prefect
        ring.for_scope(scope)
    from privacy.crypto import pseudonym_provider

    if any(op.uses_key() for op in operators_for(policy)):
        pseudonym_provider(ring, policy.keys.pseudonym_key_env).pseudonym_key()
    return ring_path


def run_sanitize(
    input_path: Path | None,
    policy_file: Path,
    out: Path,
    keyring: Path,
    overwrite: bool,
    quiet: bool,
    audit: Path | None = None,
    scale: ScaleOut | None = None,
) -> dict[str, Any]:
    from flows._prefect_env import configure_prefect

    configure_prefect("INFO" if STATE["verbose"] else "CRITICAL")
    import threading

    from flows.cli.app import ask_passphrase, use_prefect_server
    from privacy.detect import analyzer
    from privacy.policy import load_policy

    scale = scale or ScaleOut()
    # The passphrase for the Dask workers is read (or prompted for) before the server
    # starts; the server itself never gets it, nor the policy's pseudonym key variable.
    passphrase = ask_passphrase(keyring) if scale.dask else None
    loaded = load_policy(policy_file)
    # neither the pseudonym key's variable nor the database URI's reaches the server
    secrets = [e for e in (loaded.keys.pseudonym_key_env, loaded.input.uri_env) if e]
    source = flow_source(input_path, loaded)
    # Load the spaCy model while Prefect's temporary server starts (both take seconds);
    # the detect task then finds the engine built.
    threading.Thread(target=analyzer, name="privpipe-nlp-warmup", daemon=True).start()
    api_url = use_prefect_server(secrets)
    from flows import sanitize

    flow = sanitize.sanitize_flow
    if passphrase is not None:
        worker_secrets = [PASSPHRASE_ENV, *filter(None, [loaded.keys.pseudonym_key_env])]
        runner = _dask_runner(scale, passphrase, api_url, worker_secrets)
        flow = flow.with_options(task_runner=runner)
    with _StageProgress(quiet) as bar:
        sanitize.set_progress(bar.stage_done)
        sanitize.set_search_progress(bar.searching)
        sanitize.set_partitions_progress(bar.partitions)
        try:
            return flow(
                source,
                str(policy_file.resolve()),
                str(out.resolve()),
                str(keyring.resolve()),
                overwrite,
                str(audit.resolve()) if audit else None,
                partition_rows=scale.partition_rows,
                workdir=str(scale.workdir.resolve()) if scale.workdir else None,
            )
        finally:
            sanitize.set_progress(None)
            sanitize.set_search_progress(None)
            sanitize.set_partitions_progress(None)


class _StageProgress:
    """One rich progress bar under the finished stages' lines: partitions done in the
    per-partition stages, nodes searched in the anonymize search, a pulse in between."""

    def __init__(self, quiet: bool) -> None:
        from flows.cli.app import progress_bar, stderr_console

        console = stderr_console()
        if quiet:
            console.quiet = True
        self.progress = progress_bar(console)
        self.task = self.progress.add_task("starting Prefect (embedded)…", total=None)
        self.quiet = quiet

    def __enter__(self) -> _StageProgress:
        if self.progress.console.is_terminal:  # a log file gets the stage lines only
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress.live.is_started:
            self.progress.stop()

    def stage_done(self, record: dict[str, Any]) -> None:
        if self.quiet:
            return
        note = "" if record["status"] == "ok" else f" [{record['status']}]"
        parts = record["counts"].get("partitions")
        where = f" in {parts} partitions" if parts and parts > 1 else ""
        self.progress.console.print(
            f"  ✓ {record['stage']:<10} {record['rows_out']:>10,} rows"
            f"  {record['duration_s']:.2f} s{where}{note}",
            markup=False,
            highlight=False,
        )
        self.progress.update(self.task, description="running sanitize…", total=None, completed=0)

    def partitions(self, stage: str, done: int, total: int) -> None:
        self.progress.update(
            self.task, description=f"{stage}: partitions", total=total, completed=done
        )

    def searching(self, done: int, total: int) -> None:
        self.progress.update(
            self.task,
            description="anonymize: generalizations searched",
            total=total,
            completed=done,
        )


class ScaleOut:
    """How a sanitize run is spread: partition size, task runner, shared work folder."""

    def __init__(
        self,
        partition_rows: int | None = None,
        task_runner: str = "threads",
        dask_address: str | None = None,
        dask_workers: int = 2,
        workdir: Path | None = None,
    ) -> None:
        from privacy.stages import DEFAULT_PARTITION_ROWS

        self.partition_rows = partition_rows or DEFAULT_PARTITION_ROWS
        self.dask = task_runner == "dask" or dask_address is not None
        self.dask_address = dask_address
        self.dask_workers = dask_workers
        self.workdir = workdir


def _dask_runner(
    scale: ScaleOut, passphrase: str, api_url: str | None, worker_secrets: list[str]
) -> Any:
    """Prefect's Dask task runner: a LocalCluster of ``dask_workers`` processes
    (:func:`local_cluster`), or the scheduler at ``dask_address``. Workers unlock the
    keyring with PRIVPIPE_PASSPHRASE (set here, after Prefect's temporary server started
    without it) and report to the Prefect server in PREFECT_API_URL: the temporary
    server's address (``api_url``, where this process started one) is exported, so that
    workers do not each start their own (tens of seconds each)."""
    from prefect_dask.task_runners import DaskTaskRunner

    if api_url is not None:
        os.environ["PREFECT_API_URL"] = api_url
    os.environ[PASSPHRASE_ENV] = passphrase
    if scale.dask_address:
        return DaskTaskRunner(address=scale.dask_address)
    return DaskTaskRunner(
        cluster_class=cast(Any, local_cluster),  # takes kwargs, as LocalCluster does
        cluster_kwargs={
            "worker_secrets": worker_secrets,  # names only: the values stay in os.environ
            "n_workers": scale.dask_workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        },
    )


def local_cluster(*, worker_secrets: list[str], **kwargs: Any) -> Any:
    """Dask's LocalCluster (``kwargs``), its worker processes started with the
    allow-listed environment (privacy.childenv) plus the variables ``worker_secrets``
    names: the keyring's passphrase, and the policy's pseudonym key variable where it
    names one, which the workers' transform tasks need. The cluster starts its workers
    before it returns; a worker the nanny restarts later inherits the whole environment
    (README: still open)."""
    from distributed import LocalCluster

    from privacy.childenv import narrowed_environ

    extra = {name: os.environ[name] for name in worker_secrets if name in os.environ}
    with narrowed_environ(extra):
        return LocalCluster(**kwargs)  # type: ignore[no-untyped-call]


@app.command()
def sanitize(
    policy: Annotated[Path, typer.Option("--policy", "-p", help="Policy YAML file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    input_path: Annotated[
        Path | None,
        typer.Argument(
            metavar="INPUT",
            help="CSV, Parquet or JSON Lines: a path or s3://bucket/key (sealed or not); "
            "none when the policy reads a database (input.kind: postgres).",
        ),
    ] = None,
    overwrite: OverwriteOption = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="End stdout with one JSON summary line.")
    ] = False,
    keyring: Annotated[
        Path | None,
        keyring_option(
            "Keyring that seals the vault, intermediates and output (default: the "
            "policy's keys.keyring). Passphrase from PRIVPIPE_PASSPHRASE or a prompt."
        ),
    ] = None,
    audit: AuditOption = None,
    partition_rows: Annotated[
        int | None,
        typer.Option(
            "--partition-rows",
            min=1,
            help="Rows per partition: detection, transformation and the anonymization's "
            "rewrite run per partition, and memory is bounded by one (default 500,000).",
        ),
    ] = None,
    task_runner: Annotated[
        TaskRunnerName,
        typer.Option(
            "--task-runner",
            help="threads: this process (default); dask: a local Dask cluster of "
            "--dask-workers processes, or the scheduler at --dask-address.",
        ),
    ] = TaskRunnerName.threads,
    dask_address: Annotated[
        str | None,
        typer.Option(
            "--dask-address",
            envvar="PRIVPIPE_DASK_ADDRESS",
            help="A running Dask scheduler (tcp://HOST:8786); implies --task-runner dask.",
        ),
    ] = None,
    dask_workers: Annotated[
        int, typer.Option("--dask-workers", min=1, help="Local Dask worker processes.")
    ] = 2,
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir",
            help="Folder for the run's sealed intermediates (default: a private temporary "
            "folder); on a real Dask cluster, one every worker can reach.",
        ),
    ] = None,
) -> None:
    """Run the sanitize flow: ingest, detect, transform, anonymize, gate, publish.

    INPUT may be sealed (e.g. people.csv.sealed): it is decrypted in memory."""
    STATE["json"] = as_json
    ring = check_run_inputs(input_path, policy, out, overwrite, keyring)
    scale = ScaleOut(partition_rows, task_runner.value, dask_address, dask_workers, workdir)
    summary = run_sanitize(
        input_path, policy, out, ring, overwrite, quiet=as_json, audit=audit, scale=scale
    )
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        print_summary(summary)


def print_summary(summary: dict[str, Any]) -> None:
    typer.echo(
        f"sanitized {summary['rows_in']:,} rows -> {summary['rows_out']:,} rows "
        f"(run {summary['run_id']})"
    )
    for name, path in summary["outputs"].items():
        typer.echo(f"  {name:<9} {path}")
    anonymity = summary["stages"]["anonymize"]["counts"]
    if "k_achieved" in anonymity:
        node = anonymity["node"]
        levels = ", ".join(f"{c} {v}" for c, v in node.items()) if node else "Mondrian"
        extra = "".join(
            f", {name} {anonymity[key]:g}"
            for name, key in (("l", "l_achieved"), ("t", "t_achieved"))
            if anonymity.get(key) is not None
        )
        before, after = anonymity["risk_before"], anonymity["risk_after"]
        typer.echo(
            f"  k-anonymity: k {anonymity['k_achieved']}{extra}; {anonymity['classes']:,} "
            f"classes, {anonymity['suppressed']:,} records suppressed; levels: {levels}"
        )
        kept = anonymity.get("information") or {}
        if kept:
            typer.echo(
                "  kept: "
                + "; ".join(
                    f"{c} {v['distinct_before']:,} values -> {v['distinct_after']:,} labels"
                    + (
                        f" of {v['values_per_label']:.3g} values"
                        if v.get("values_per_label", 1) != 1
                        else ""
                    )
                    + (f" ({v['top_share']:.0%} *)" if v["top_share"] else "")
                    for c, v in kept.items()
                )
            )
        typer.echo(
            f"  risk: highest prosecutor risk {before['prosecutor_highest']:.3f} -> "
            f"{after['prosecutor_highest']:.3f}; records above {after['threshold']:g}: "
            f"{before['records_above_threshold']:.1%} -> {after['records_above_threshold']:.1%}"
        )
    pending = [s for s, r in summary["stages"].items() if r["status"] != "ok"]
    if pending:
        typer.echo(f"  note: stages not yet enforcing: {', '.join(pending)}")
