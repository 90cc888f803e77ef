"""``privpipe server start | stop | status``: a real Prefect server on loopback, started
once, used by the flow commands, stopped by its PID; it holds no planted value and no
passphrase."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from flows import _server
from flows.cli import main
from tests._helpers.sentinels import BAD_AGE, SENTINELS, cell_hits, plant
from tests.conftest import PASSPHRASE


def _listening(port: int) -> set[str]:
    """The local addresses on which something listens on TCP ``port`` (from /proc)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:] if Path(table).exists() else []
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    found.add(".".join(str(b) for b in reversed(raw)))
                else:
                    found.add(raw.hex())
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "State:\tZ" not in status.read_text()


@pytest.fixture(scope="module")
def server() -> Iterator[_server.LocalServer]:
    assert main(["server", "start"]) == 0
    state = _server.read_state()
    assert state is not None
    try:
        yield state
    finally:
        main(["server", "stop"])


@pytest.mark.prefect
def test_start_runs_one_loopback_server_in_an_owner_only_home(
    server: _server.LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _server.server_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(server.prefect_home).stat().st_mode) == 0o700
    for name in ("server.json", "server.log"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert _alive(server.pid) and _listening(server.port) == {"127.0.0.1"}
    capsys.readouterr()
    assert main(["server", "status"]) == 0
    assert f"running at {server.url} (pid {server.pid}" in capsys.readouterr().out
    assert main(["server", "start"]) == 0  # a second start finds it: one server
    assert f"already running at {server.url} (pid {server.pid})" in capsys.readouterr().out


@pytest.mark.prefect
def test_a_flow_command_reports_to_it_and_it_holds_no_planted_value(
    server: _server.LocalServer,
    tmp_path: Path,
    people: pl.DataFrame,
    demo_policy_path: Path,
) -> None:
    raw = tmp_path / "in" / "people.csv"
    raw.parent.mkdir()
    plant(people, [3, 77]).write_csv(raw)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    command = ["sanitize", str(raw), "-p", str(demo_policy_path), "-o", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"using Prefect server at {server.url}" in done.stderr
    database = Path(server.prefect_home) / "prefect.db"
    import sqlite3

    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        flows = [row[0] for row in db.execute("SELECT name FROM flow")]
        states = [row[0] for row in db.execute("SELECT state_type FROM flow_run")]
    assert "sanitize" in flows and "COMPLETED" in states  # the run is the server's
    needles = [*SENTINELS.values(), BAD_AGE, "zyxsentinel", PASSPHRASE]
    hits, cells = cell_hits(database, needles)
    assert cells and hits == []
    for path in sorted(p for p in _server.server_dir().rglob("*") if p.is_file()):
        data = path.read_bytes().lower()
        assert not [n for n in needles if n.lower().encode() in data], path
    environ = Path(f"/proc/{server.pid}/environ")
    if environ.exists():
        assert PASSPHRASE.encode() not in environ.read_bytes()
        assert b"PRIVPIPE_PASSPHRASE" not in environ.read_bytes()


@pytest.mark.prefect
def test_stop_ends_it_by_its_pid_and_forgets_it(
    server: _server.LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["server", "stop"]) == 0
    assert f"stopped the Prefect server (pid {server.pid})" in capsys.readouterr().out
    assert not _alive(server.pid) and not _listening(server.port)
    assert not (_server.server_dir() / "server.json").exists()
    assert main(["server", "status"]) == 1
    assert "no privpipe Prefect server is running" in capsys.readouterr().out
    assert main(["server", "stop"]) == 0
    assert "no privpipe Prefect server is running" in capsys.readouterr().out


def test_a_stale_record_never_signals_the_process_that_now_has_its_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PRIVPIPE_HOME", str(tmp_path / "home"))
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)  # a group leader too
    try:
        folder = _server.server_dir()
        folder.mkdir(parents=True)
        record = {
            "pid": other.pid,
            "port": _server.free_port(),
            "url": "http://127.0.0.1:9/api",
            "started": "2026-01-01T00:00:00+00:00",
            "prefect_home": str(folder / "prefect"),
            "log": str(folder / "server.log"),
        }
        (folder / "server.json").write_text(json.dumps(record))
        assert main(["server", "status"]) == 1
        capsys.readouterr()
        assert main(["server", "stop"]) == 0
        assert capsys.readouterr().out == "no privpipe Prefect server is running\n"
        assert other.poll() is None  # the process that has the recorded PID lives on
        assert not (folder / "server.json").exists()
    finally:
        other.kill()
        other.wait()


def _record(folder: Path, pid: int, **more: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "pid": pid,
        "port": _server.free_port(),
        "url": "http://127.0.0.1:9/api",
        "started": "2026-01-01T00:00:00+00:00",
        "prefect_home": str(folder / "prefect"),
        "log": str(folder / "server.log"),
        **more,
    }
    (folder / "server.json").write_text(json.dumps(record))


def test_attack_stop_never_signals_a_process_that_only_looks_like_a_prefect_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A writer of server.json names a process whose argv holds "prefect" and "server"
    (anyone's long-running job): its start time and the start's random token are not
    what privpipe's start recorded, so it is never signalled, whatever the record says
    (with the victim's real start time copied in, or without any)."""
    monkeypatch.setenv("PRIVPIPE_HOME", str(tmp_path / "home"))
    script = "import time; time.sleep(60)"
    token = "5e" * 16  # as if inherited from a real server, by a process reusing its PID
    victim = subprocess.Popen(
        [sys.executable, "-c", script, "prefect", "server"],
        start_new_session=True,
        env={**os.environ, _server.TOKEN_ENV: token},
    )
    try:
        ticks = _server.start_ticks(victim.pid)
        assert ticks is not None
        for forged in (
            {},  # a record from before the check: never trusted
            {"start_ticks": ticks, "token": "0" * 32},  # its real start time copied in
            {"start_ticks": ticks - 1, "token": token},  # the token, on a later process
        ):
            _record(_server.server_dir(), victim.pid, **forged)
            assert main(["server", "stop"]) == 0
            assert capsys.readouterr().out == "no privpipe Prefect server is running\n"
            assert victim.poll() is None, forged  # alive: no signal reached it
    finally:
        victim.kill()
        victim.wait()
