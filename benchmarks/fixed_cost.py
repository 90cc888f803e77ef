"""Figure: the fixed cost of one command, `privpipe sanitize` on 10 rows (the demo policy
without `scrub`), in three settings, beside a bare Prefect flow with one task run the
same way (Prefect's own floor, the anchor):

- embedded, fresh home: Prefect's temporary server in a new PREFECT_HOME (migrations);
- embedded, used home: the same, in a home that has run before;
- local server: against `privpipe server start` on loopback (the bare flow gets its
  PREFECT_API_URL).

Each figure is the best of N runs as a new process, as a user runs it. Goals: at most
1.5x the bare flow in each setting; at most 3 s against the local server.
Usage: python benchmarks/fixed_cost.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import command_setup

from privacy.synth import synthesize

BARE = """
from prefect import flow, task

@task
def one() -> int:
    return 1

@flow
def bare() -> int:
    return one()

bare()
"""
QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


def _timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{command[2:5]} failed: {done.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base, policy = command_setup(root)
        base = {k: v for k, v in base.items() if k != "PREFECT_API_URL"} | QUIET
        source = root / "ten.csv"
        synthesize(10, seed=1).write_csv(source)
        out = root / "out"

        def sanitize(env: dict[str, str]) -> float:
            command = [sys.executable, "-m", "flows.cli", "sanitize", str(source)]
            command += ["-p", str(policy), "-o", str(out), "--overwrite", "--json"]
            return _timed(command, env)

        def bare(env: dict[str, str]) -> float:
            return _timed([sys.executable, "-c", BARE], env)

        def setting(name: str, **extra: str) -> dict[str, str]:
            return base | {"PRIVPIPE_HOME": str(root / name / "privpipe")} | extra

        figures: dict[str, tuple[float, float]] = {}
        fresh = [float("inf"), float("inf")]
        for i in range(max(1, args.repeats - 1)):  # a new home each time
            fresh[0] = min(fresh[0], sanitize(setting("fresh", PREFECT_HOME=f"{root}/f{i}a")))
            fresh[1] = min(fresh[1], bare(setting("fresh", PREFECT_HOME=f"{root}/f{i}b")))
        figures["embedded, fresh home"] = (fresh[0], fresh[1])
        used_ours = setting("used", PREFECT_HOME=str(root / "used-ours"))
        used_bare = setting("used", PREFECT_HOME=str(root / "used-bare"))
        sanitize(used_ours), bare(used_bare)  # the homes' first (migrating) runs
        figures["embedded, used home"] = (
            min(sanitize(used_ours) for _ in range(args.repeats)),
            min(bare(used_bare) for _ in range(args.repeats)),
        )
        served = setting("server", PREFECT_HOME=str(root / "used-ours"))
        cli = [sys.executable, "-m", "flows.cli"]
        subprocess.run([*cli, "server", "start"], env=served, check=True, capture_output=True)
        try:
            state = json.loads(
                (root / "server" / "privpipe" / "server" / "server.json").read_text()
            )
            bare_env = served | {"PREFECT_API_URL": state["url"]}
            sanitize(served), bare(bare_env)  # first runs register the flows
            figures["local server"] = (
                min(sanitize(served) for _ in range(args.repeats)),
                min(bare(bare_env) for _ in range(args.repeats)),
            )
        finally:
            subprocess.run([*cli, "server", "stop"], env=served, capture_output=True)
    print(
        f"Fixed cost: `privpipe sanitize` on 10 rows vs a bare one-task Prefect flow "
        f"(best of {args.repeats}, {os.cpu_count()} cores)"
    )
    print(f"  {'setting':<22} {'privpipe':>9} {'bare flow':>10} {'ratio':>7}")
    for name, (ours, anchor) in figures.items():
        print(f"  {name:<22} {ours:>8.2f}s {anchor:>9.2f}s {ours / anchor:>6.2f}x")
    print("  goals: <= 1.5x the bare flow in each setting; <= 3 s against the local server")


if __name__ == "__main__":
    main()
