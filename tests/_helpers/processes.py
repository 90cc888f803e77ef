"""Processes a command starts, read from /proc while it runs; a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER_APP = b"prefect.server.api.server:create_app"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        for child in children(todo.pop()):
            seen.append(child)
            todo.append(child)
    return seen


def server_environs(command: list[str], env: dict[str, str]) -> tuple[int, str, list[bytes]]:
    """Run ``command``; while it runs, read the environment of each Prefect server
    process it starts (once the server has exec'd: before, a forked child shows its
    parent's environment)."""
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    environs: dict[int, bytes] = {}
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline:
        for pid in descendants(process.pid):
            if pid in environs:
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if SERVER_APP in cmdline:
                    environs[pid] = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue  # gone meanwhile
        time.sleep(0.05)
    _, err = process.communicate(timeout=60)
    return process.returncode, err.decode(errors="replace"), list(environs.values())
