"""Shared helpers: best-of-N wall time and a figure line printed beside its anchor."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    """The fastest of ``repeats`` runs, in seconds (the least disturbed by a noisy machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved(repeats: int, runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best-of-N times for several functions, run in rotation so that a slow spell of the
    machine (or the page cache writing back an earlier run) hits all of them alike."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def report(figure: str, ours: float, anchor: float, unit: str, anchor_name: str) -> None:
    """Print our rate beside the anchor's, measured in the same run, and their ratio."""
    print(f"{figure}")
    print(f"  privpipe : {ours:>14,.0f} {unit}")
    print(f"  anchor   : {anchor:>14,.0f} {unit}  ({anchor_name})")
    print(f"  ratio    : {ours / anchor:>14.2f} x anchor")


BENCH_PASSPHRASE = "benchmark"


def bench_keyring(root: Path) -> Any:
    """A throwaway keyring in ``root`` (cheaper scrypt than the default: not a secret)."""
    from privacy.crypto import Keyring

    return Keyring.create(root / "ring.json", BENCH_PASSPHRASE, scrypt_n=2**14)


_MEASURE = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
    "capture_output=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def measured(
    command: list[str], env: dict[str, str], cwd: Path | None = None
) -> tuple[float, float]:
    """Seconds and peak memory (MiB, the largest process of its tree) of one command,
    run as a user runs it."""
    import subprocess
    import sys

    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        check=True,
        env=env,
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    return time.perf_counter() - start, int(done.stdout.split()[-1]) / 1024


def command_setup(root: Path) -> tuple[dict[str, str], Path]:
    """For a benchmark that runs `privpipe sanitize` as a command: the environment (a
    throwaway keyring, a Prefect home in ``root``) and the demo policy without ``scrub``
    (every other rule), written to ``root``."""
    import os

    import yaml

    ring = bench_keyring(root)
    env = {
        **os.environ,
        "PRIVPIPE_KEYRING": str(ring.path),
        "PRIVPIPE_PASSPHRASE": BENCH_PASSPHRASE,
        "PREFECT_HOME": str(root / "prefect"),
    }
    policy = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "policies" / "demo.yaml").read_text()
    )
    policy["columns"]["notes"] = {"rule": "drop"}  # every rule but scrub
    path = root / "structured.yaml"
    path.write_text(yaml.safe_dump(policy))
    return env, path
