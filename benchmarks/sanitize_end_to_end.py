"""Figure: `privpipe sanitize` end to end on 1M synthetic rows, every rule but `scrub`.

Runs the real command in a fresh process (Prefect's temporary server, keyring, sealing,
detection, gate, audit trail, all of it) and prints rows/s, and rows/s once the fixed
cost is taken off (the same command on 10 rows: Prefect's temporary server, imports,
the spaCy model). Anchor, in the same run: polars reading the same CSV and writing it
as Parquet, no checks.
Usage: python benchmarks/sanitize_end_to_end.py [--rows N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from _common import best_of, command_setup, report

from privacy.synth import synthesize


def _sanitize(source: Path, policy: Path, out: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "sanitize",
            str(source),
            "--policy",
            str(policy),
            "--out",
            str(out),
            "--overwrite",
            "--json",
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env, policy_path = command_setup(root)
        frame = synthesize(args.rows, seed=1)
        big, small = root / "big.csv", root / "small.csv"
        frame.write_csv(big)
        frame.head(10).write_csv(small)

        overhead = _sanitize(small, policy_path, root / "o-small", env)
        total = _sanitize(big, policy_path, root / "o-big", env)
        anchor = best_of(2, lambda: pl.read_csv(big).write_parquet(root / "copy.parquet"))
    report(
        f"privpipe sanitize, end to end: {args.rows:,} rows, every rule but scrub",
        args.rows / total,
        args.rows / anchor,
        "rows/s",
        "polars read_csv + write_parquet, no checks",
    )
    print(
        f"  time     : {total:>14.1f} s, of which {overhead:.1f} s is the same command on "
        f"10 rows (Prefect's temporary server, imports)"
    )
    rest = max(total - overhead, 1e-9)
    print(f"  without that fixed cost: {args.rows / rest:,.0f} rows/s")


if __name__ == "__main__":
    main()
