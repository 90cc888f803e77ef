"""privpipe serve: the command's checks, the scheduled flow's dated folders and its
unchanged-input skip, and (slow) scheduled runs served from a real Prefect server."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from flows.cli import main
from tests._helpers.processes import free_port
from tests.conftest import KEYRING, ROOT

DATED = r"\d{4}-\d{2}-\d{2}T\d{6}Z(-\d+)?"


def _serve(*args: str) -> list[str]:
    return ["serve", *args]


def _policy(tmp_path: Path, demo_policy_path: Path, **schedule: object) -> Path:
    data = yaml.safe_load(demo_policy_path.read_text())
    data["schedule"] = schedule
    for column in data["columns"].values():  # hierarchy files stay beside the demo policy
        hierarchy = column.get("hierarchy") or {}
        if hierarchy.get("kind") == "file":
            hierarchy["path"] = str(demo_policy_path.parent / hierarchy["path"])
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _dated(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and re.fullmatch(DATED, p.name))


# --------------------------------------------------------------------------- the command


@pytest.fixture
def args(tmp_path: Path, people_csv: Path, demo_policy_path: Path) -> list[str]:
    out = str(tmp_path / "root")
    return ["--policy", str(demo_policy_path), "--input", str(people_csv), "--out", out]


def test_no_server_is_one_line_exit_2(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "PREFECT_API_URL" not in os.environ
    assert main(_serve(*args, "--interval", "5")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: scheduled runs need a Prefect server")
    assert "cannot schedule" in err and "`prefect server start`" in err
    assert "PREFECT_API_URL=http://127.0.0.1:4200/api" in err and "--start-server" in err
    assert not (tmp_path / "root").exists()


def test_an_unsigned_policy_that_must_be_signed_is_refused_before_any_server(
    tmp_path: Path, people_csv: Path, demo_policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _policy(tmp_path, demo_policy_path)
    data = yaml.safe_load(policy.read_text())
    data["require_signed_policy"] = True
    policy.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "root"
    args = ["--policy", str(policy), "--input", str(people_csv), "--out", str(out)]
    assert main(_serve(*args, "--interval", "5")) == 2  # no server is set either
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "require_signed_policy" in err and str(policy) in err
    assert not out.exists()


@pytest.mark.parametrize("schedule", [[], ["--cron", "0 2 * * *", "--interval", "5"]])
def test_cron_xor_interval_is_a_usage_error(
    args: list[str], schedule: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_serve(*args, *schedule)) == 2
    err = capsys.readouterr().err
    assert "Usage: privpipe serve" in err
    assert "give exactly one of --cron EXPR and --interval SECONDS" in err


def test_bad_cron_is_one_line_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_serve(*args, "--cron", "every night")) == 2
    err = capsys.readouterr().err
    assert (
        err
        == "error: --cron 'every night': not a cron expression (five fields, e.g. '0 2 * * *')\n"
    )


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (
            {"skip_unchanged": "sometimes"},
            "schedule.skip_unchanged: Input should be a valid boolean",
        ),
        ({"skip_if_same": True}, "schedule.skip_if_same: unknown key (allowed: skip_unchanged)"),
    ],
)
def test_bad_schedule_key_names_file_and_key(
    tmp_path: Path,
    people_csv: Path,
    demo_policy_path: Path,
    schedule: dict[str, object],
    expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = _policy(tmp_path, demo_policy_path, **schedule)
    where = ["--input", str(people_csv), "--out", str(tmp_path / "r")]
    code = main(_serve("--policy", str(policy), *where, "--interval", "5", "--start-server"))
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {policy}: {expected}")


def test_missing_input_fails_before_any_server(
    tmp_path: Path, demo_policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.csv"
    where = ["--input", str(missing), "--out", str(tmp_path)]
    code = main(
        _serve("--policy", str(demo_policy_path), *where, "--interval", "5", "--start-server")
    )
    assert code == 2
    assert capsys.readouterr().err == f"error: {missing}: input file not found\n"


def test_a_server_that_does_not_answer_is_one_line_exit_2(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    assert main(_serve(*args, "--interval", "5")) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: PREFECT_API_URL={url}: no Prefect server answers at {url}/health (start one "
        "with `prefect server start`, or pass --start-server)\n"
    )


def test_wrong_passphrase_fails_before_any_server(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", "not the passphrase")
    assert main(_serve(*args, "--interval", "5", "--start-server")) == 2
    assert "wrong passphrase, or the keyring was altered" in capsys.readouterr().err


# --------------------------------------------------------------------------- dated folders


def test_run_folders_are_dated_in_utc_and_never_reused(tmp_path: Path) -> None:
    from privacy.schedule import make_run_folder

    moment = dt.datetime(2026, 11, 29, 8, 45, 12, 999, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    made = [make_run_folder(tmp_path / "root", moment).name for _ in range(3)]
    assert made == ["2026-11-29T074512Z", "2026-11-29T074512Z-2", "2026-11-29T074512Z-3"]


def test_unchanged_since_needs_state_and_manifest_to_agree(tmp_path: Path) -> None:
    from privacy.schedule import STATE_FILE, unchanged_since

    root = tmp_path / "root"
    (root / "2026-11-29T074512Z").mkdir(parents=True)
    same = ("a" * 64, "k-1", "b" * 64)
    assert unchanged_since(root, *same) is None  # no state yet
    (root / STATE_FILE).write_text(json.dumps({"run": "2026-11-29T074512Z"}))
    assert unchanged_since(root, *same) is None  # no manifest
    manifest = {"input": {"hmac_sha256": "a" * 64, "key_id": "k-1"}, "policy": {"sha256": "b" * 64}}
    (root / "2026-11-29T074512Z" / "manifest.json").write_text(json.dumps(manifest))
    assert unchanged_since(root, *same) == "2026-11-29T074512Z"
    assert unchanged_since(root, "c" * 64, "k-1", "b" * 64) is None  # the input changed
    assert unchanged_since(root, "a" * 64, "k-2", "b" * 64) is None  # another content key
    assert unchanged_since(root, "a" * 64, "k-1", "c" * 64) is None  # the policy changed
    legacy = {"input": {"sha256": "a" * 64}, "policy": {"sha256": "b" * 64}}
    (root / "2026-11-29T074512Z" / "manifest.json").write_text(json.dumps(legacy))
    assert unchanged_since(root, *same) is None  # a plain hash is never matched: reprocessed
    (root / "2026-11-29T074512Z" / "manifest.json").write_text(json.dumps(manifest))
    (root / STATE_FILE).write_text(json.dumps({"run": "../elsewhere"}))
    assert unchanged_since(root, *same) is None
    (root / STATE_FILE).write_text("{not json")
    assert unchanged_since(root, *same) is None


# --------------------------------------------------------------------------- the flow


@pytest.mark.prefect
def test_unchanged_input_is_skipped_until_it_changes(
    tmp_path: Path, people: pl.DataFrame, demo_policy_path: Path
) -> None:
    from flows.serve import ARTIFACT_KEY, scheduled_sanitize_flow
    from privacy.schedule import STATE_FILE

    source = tmp_path / "people.csv"
    people.write_csv(source)
    policy = _policy(tmp_path, demo_policy_path, skip_unchanged=True)
    root = tmp_path / "root"

    def run() -> dict[str, Any]:
        return scheduled_sanitize_flow(
            input_path=str(source),
            policy_path=str(policy),
            out_root=str(root),
            keyring_path=str(KEYRING),
        )

    first = run()
    assert first["status"] == "ok"
    (folder,) = _dated(root)
    assert first["run"] == folder.name and first["out_dir"] == str(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    state = json.loads((root / STATE_FILE).read_text())
    assert state["run"] == folder.name
    assert state["input"]["hmac_sha256"] == manifest["input"]["hmac_sha256"]
    assert (
        state["input"] == first["input"] and state["input"]["key_id"] == manifest["input"]["key_id"]
    )
    assert "sha256" not in state["input"]  # keyed: the trail's attack test covers the rest
    assert (folder / "report.html").exists() and (folder / "data.parquet.sealed").exists()
    assert main(["audit", "verify", str(folder / "audit.jsonl"), "--keyring", str(KEYRING)]) == 0

    second = run()
    message = f"input unchanged since {folder.name}; not reprocessed"
    assert second["status"] == "skipped" and second["message"] == message
    assert second["last_run"] == folder.name
    assert _dated(root) == [folder]  # nothing written
    assert json.loads((root / STATE_FILE).read_text()) == state

    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[ARTIFACT_KEY]))
        )
    assert message in [a.description for a in artifacts]

    people.head(400).write_csv(source)  # the input changes
    third = run()
    assert third["status"] == "ok" and third["run"] != folder.name
    assert len(_dated(root)) == 2
    assert json.loads((root / STATE_FILE).read_text())["run"] == third["run"]
    assert third["sanitize"]["rows_in"] == 400


@pytest.mark.prefect
def test_attack_brute_force_of_a_scheduled_one_line_input(
    tmp_path: Path, keyring: Any, demo_policy_path: Path
) -> None:
    """The skip bookkeeping (latest.json, manifests, the runs' results and artifacts)
    holds the input's digest keyed: no candidate SSN's plain hash is in any of it; and
    the keyed digest survives a KEK rotation, so an unchanged input is still skipped."""
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows import _keys
    from flows.serve import ARTIFACT_KEY, scheduled_sanitize_flow
    from tests._helpers.digests import (
        PLANTED_SSN,
        SSN_CANDIDATES,
        brute_force,
        one_line_input,
        run_artifacts,
    )

    _keys.register(keyring)  # a keyring of its own: this test rotates its KEKs
    source = tmp_path / "ssn.jsonl"
    source.write_bytes(one_line_input(PLANTED_SSN))
    policy = tmp_path / "ssn.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "name": "ssn-file",
                "input": {"format": "jsonl"},
                "columns": {"ssn": {"rule": "pseudonymize"}},
                "schedule": {"skip_unchanged": True},
            }
        )
    )
    root = tmp_path / "root"

    def run() -> dict[str, Any]:
        return scheduled_sanitize_flow(
            input_path=str(source),
            policy_path=str(policy),
            out_root=str(root),
            keyring_path=str(keyring.path),
        )

    first = run()
    keyring.rotate()  # new KEKs: the content key comes from the pseudonym secret
    second = run()
    assert (first["status"], second["status"]) == ("ok", "skipped")
    assert second["input"] == first["input"] and "hmac_sha256" in first["input"]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[ARTIFACT_KEY]))
        )
    blob = b"".join(
        [
            run_artifacts(root),
            json.dumps([first, second]).encode(),
            *(json.dumps([a.data, a.description]).encode() for a in artifacts),
        ]
    )
    assert first["input"]["hmac_sha256"].encode() in blob  # what was searched holds it
    assert brute_force(blob, SSN_CANDIDATES, one_line_input) == []


@pytest.mark.prefect
def test_without_skip_unchanged_every_run_processes(
    tmp_path: Path, people_csv: Path, demo_policy_path: Path
) -> None:
    from flows.serve import scheduled_sanitize_flow

    root = tmp_path / "root"
    for _ in range(2):
        result = scheduled_sanitize_flow(
            input_path=str(people_csv),
            policy_path=str(demo_policy_path),
            out_root=str(root),
            keyring_path=str(KEYRING),
        )
        assert result["status"] == "ok"
    assert len(_dated(root)) == 2


# --------------------------------------------------------------------------- served


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _start_server(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``prefect server start`` on loopback, with a home of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PRIVPIPE_"))}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_UI_ENABLED="false",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    port = free_port()
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return server, f"http://127.0.0.1:{port}/api"


@pytest.mark.slow
@pytest.mark.prefect
def test_served_schedule_writes_dated_verified_runs(
    tmp_path: Path, people: pl.DataFrame, demo_policy_path: Path
) -> None:
    """Two scheduled runs served from a real server: dated folders whose trails verify,
    and no planted value in the server's database or anything else the runs leave."""
    from tests._helpers.sentinels import plant, sentinels_in

    started = time.monotonic()
    source = tmp_path / "in" / "people.csv"
    source.parent.mkdir()
    plant(people, [3, 250]).write_csv(source)
    root, server_home, serve_home = tmp_path / "root", tmp_path / "server", tmp_path / "serve"
    (tmp_path / "tmp").mkdir()
    server, url = _start_server(server_home, tmp_path / "server.log")
    serve: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 90
        while not _answers(f"{url}/health"):
            assert server.poll() is None, _tail(tmp_path / "server.log")
            assert time.monotonic() < deadline, "the Prefect server did not answer in 90 s"
            time.sleep(0.25)
        env = {**os.environ, "PREFECT_API_URL": url, "PREFECT_HOME": str(serve_home)}
        env["TMPDIR"] = str(tmp_path / "tmp")
        command = ["--policy", str(demo_policy_path), "--input", str(source), "--out", str(root)]
        schedule = ["--interval", "5", "--limit", "2"]
        with (tmp_path / "serve.err").open("wb") as err:
            serve = subprocess.Popen(
                [sys.executable, "-m", "flows.cli", "serve", *command, *schedule],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                cwd=ROOT,
            )
        try:
            serve.wait(timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail(
                "serve did not finish 2 runs in 3 minutes: " + _tail(tmp_path / "serve.err")
            )
    finally:
        if serve is not None:
            _stop(serve)
        _stop(server)
    log = (tmp_path / "serve.err").read_text()
    assert serve.returncode == 0, log[-3000:]
    assert f"using the Prefect server at {url} (PREFECT_API_URL)" in log
    # --limit 2 pauses the schedule once two runs are out; none is ever cut short
    assert log.count(": Completed: sanitized 500 -> ") >= 2, log[-3000:]
    assert "finished runs; schedule paused" in log and "Crashed" not in log

    runs = [d for d in _dated(root) if (d / "report.html").exists()]
    assert len(runs) >= 2, sorted(p.name for p in root.iterdir())
    assert all((d / "report.html").exists() for d in _dated(root))
    for run in runs:
        assert main(["audit", "verify", str(run / "audit.jsonl"), "--keyring", str(KEYRING)]) == 0
    assert json.loads((root / "latest.json").read_text())["run"] == runs[-1].name

    assert any(server_home.rglob("*.db*"))  # the server's database, WAL included
    hits = [
        h
        for place in (server_home, serve_home, tmp_path / "tmp", root)
        for h in sentinels_in(place)
    ]
    assert not hits, hits
    print(f"served schedule test: {time.monotonic() - started:.1f} s")


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


def test_the_served_prefect_server_gets_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve --start-server`'s own Prefect server: no passphrase, no pseudonym key."""
    from flows.cli.serve import server_env

    for name in ("PRIVPIPE_PASSPHRASE", "PRIVPIPE_NEW_PASSPHRASE", "PRIVPIPE_PSEUDONYM_KEY"):
        monkeypatch.setenv(name, "s3cret-" + name)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    env = server_env()
    assert not [v for v in env.values() if "s3cret-" in v]
    assert "PREFECT_API_URL" not in env and env["PATH"] == os.environ["PATH"]
