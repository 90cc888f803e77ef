"""Everything privpipe writes is owner-only: files 0600, folders 0700, whatever the umask.

The helpers are checked under a permissive 022 umask (so the modes come from privpipe,
not from the umask); a whole demo run in a process of its own, Prefect's home included,
is checked after it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import polars as pl
import pytest

from privacy._atomic import atomic_path, private_dir
from privacy.audit import AuditTrail
from privacy.crypto import Keyring
from privacy.dp import BudgetLedger, DataIdentity
from privacy.io import atomic_write_bytes, prepare_output_dir, write_frame
from privacy.workspace import Workspace
from tests._keys import FAST_SCRYPT, PASSPHRASE

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _not_private(root: Path) -> list[str]:
    """Every file under ``root`` not 0600 and every folder not 0700, as 'path 0o644'."""
    bad = []
    for path in sorted(root.rglob("*")):
        want = 0o700 if path.is_dir() else 0o600
        if path.is_symlink() or _mode(path) != want:
            bad.append(f"{path} {oct(_mode(path))}")
    return bad


def test_private_dir_creates_each_missing_folder_0700(
    tmp_path: Path, permissive_umask: None
) -> None:
    existing = tmp_path / "mine"
    existing.mkdir()
    os.chmod(existing, 0o755)
    made = private_dir(existing / "a" / "b" / "c")
    assert made.is_dir()
    assert _not_private(existing) == []
    assert _mode(existing) == 0o755  # a folder privpipe did not create keeps its mode
    with pytest.raises(FileExistsError):
        private_dir(made, exist_ok=False)
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(FileExistsError):
        private_dir(tmp_path / "file")


def test_atomic_writes_are_0600_even_over_a_readable_file(
    tmp_path: Path, permissive_umask: None
) -> None:
    target = tmp_path / "new" / "folder" / "out.json"
    atomic_write_bytes(target, b"{}")
    old = tmp_path / "old.txt"
    old.write_bytes(b"before")
    os.chmod(old, 0o644)
    with atomic_path(old) as tmp:
        assert _mode(tmp) == 0o600
        tmp.write_bytes(b"after")
    assert old.read_bytes() == b"after"
    assert _not_private(tmp_path) == []


def test_library_writers_are_private(tmp_path: Path, permissive_umask: None) -> None:
    ring = Keyring.create(tmp_path / "keys" / "ring.json", PASSPHRASE, scrypt_n=FAST_SCRYPT)
    out = tmp_path / "out" / "run"
    prepare_output_dir(out, overwrite=False, outputs=())
    write_frame(pl.DataFrame({"a": [1, 2]}), out / "raw" / "f.csv.sealed", keys=ring)
    write_frame(pl.DataFrame({"a": [1, 2]}), out / "plain.parquet")
    with AuditTrail(out / "trail" / "audit.jsonl", ring) as trail:
        trail.append("step")
    assert (out / "trail" / "audit.jsonl.head").is_file()
    with Workspace(ring, tmp_path / "work" / "privpipe-work-x", run_id="x") as work:
        work.save("part", pl.DataFrame({"a": [1]}))
        work.save_json("plan", {"k": 1})
        assert _not_private(tmp_path / "work") == []
    BudgetLedger(tmp_path / "ledger" / "ledger.jsonl", ring).charge(
        DataIdentity("0" * 64, label="d"), epsilon=1.0, delta=1e-6, budget=3.0, run_id="r"
    )
    assert _not_private(tmp_path) == []


def test_prefect_home_is_made_private(
    tmp_path: Path, permissive_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows._prefect_env import private_prefect_home

    home = tmp_path / "prefect"
    monkeypatch.setenv("PREFECT_HOME", str(home))
    assert private_prefect_home() == home and _mode(home) == 0o700  # created
    os.chmod(home, 0o755)
    for name in ("prefect.db", "prefect.db-wal", "profiles.toml"):
        (home / name).write_bytes(b"")
        os.chmod(home / name, 0o644)
    (home / "storage").mkdir(mode=0o755)
    (home / "read-only").write_bytes(b"")
    os.chmod(home / "read-only", 0o444)
    private_prefect_home()
    assert _mode(home / "read-only") == 0o400  # bits are only taken away
    os.chmod(home / "read-only", 0o600)
    assert _not_private(home) == [] and _mode(home) == 0o700


def test_scheduled_run_folders_are_private(tmp_path: Path, permissive_umask: None) -> None:
    import datetime as dt

    from privacy.schedule import make_run_folder

    moment = dt.datetime(2026, 11, 29, 7, 45, 12, tzinfo=dt.UTC)
    first = make_run_folder(tmp_path / "root", moment)
    second = make_run_folder(tmp_path / "root", moment)
    assert (first.name, second.name) == ("2026-11-29T074512Z", "2026-11-29T074512Z-2")
    assert _not_private(tmp_path) == []


def test_the_cli_gives_the_callers_umask_back() -> None:
    from flows.cli import main

    previous = os.umask(0o022)
    try:
        assert main(["--version"]) == 0
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(previous)


@pytest.mark.slow
@pytest.mark.prefect
def test_demo_run_leaves_only_private_files(tmp_path: Path) -> None:
    """``privpipe demo`` in a process of its own, started under a 022 umask with a fresh
    Prefect home, home folder and temporary folder: every file it leaves anywhere
    (outputs, keyring, ledger, audit trails, Prefect's database, caches) is 0600 and
    every folder 0700."""
    made = tmp_path / "made"  # everything below is created by the run
    made.mkdir(mode=0o700)
    work_tmp = made / "tmp"
    work_tmp.mkdir(mode=0o700)
    out, prefect_home = made / "out", made / "prefect-home"
    env = {
        **os.environ,
        "PREFECT_HOME": str(prefect_home),
        "HOME": str(made / "home"),
        "TMPDIR": str(work_tmp),
        "PRIVPIPE_LEDGER": str(made / "ledger" / "ledger.json"),
        "PRIVPIPE_OPERATOR_KEY": "sig-00112233aabbccdd",
    }
    for name in ("PREFECT_API_URL", "PRIVPIPE_AUDIT", "PRIVPIPE_KEYRING"):
        env.pop(name, None)
    command = [sys.executable, "-m", "flows.cli", "-q", "demo", "--out", str(out), "--rows", "300"]
    previous = os.umask(0o022)
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
        )
    finally:
        os.umask(previous)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "model" / "model.safetensors.sealed").is_file()
    assert (out / "report.html").is_file()
    assert any(prefect_home.glob("prefect.db*")), "Prefect's database is elsewhere"
    bad = _not_private(made)
    assert not bad, "not owner-only after the demo: " + ", ".join(bad)
    first = orjson.loads((out / "sanitized" / "audit.jsonl").read_bytes().splitlines()[0])
    assert first["actor"]["operator"] == "sig-00112233aabbccdd"
