"""Figure: peak memory and rows/s of `privpipe sanitize` on 5M synthetic rows (the demo
policy without `scrub`: every other rule, k-anonymity with l-diversity included).

Runs the console script as a user does and reads the peak resident memory of the
largest process of the command's tree. Anchor, in the same run: polars reading the
same CSV and writing it back as Parquet, in a process of its own, the same way.
Usage: python benchmarks/sanitize_memory.py [--rows N]   (goal: under 4 GB at 5M rows)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import command_setup, measured

from privacy.synth import synthesize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env, policy_path = command_setup(root)
        source = root / "people.csv"
        for start in range(0, args.rows, 1_000_000):  # written in pieces: bounded here too
            part = synthesize(min(1_000_000, args.rows - start), seed=1 + start)
            with source.open("ab") as sink:
                part.write_csv(sink, include_header=start == 0)
        privpipe = str(Path(sys.executable).with_name("privpipe"))
        seconds, peak = measured(
            [
                privpipe,
                "-q",
                "sanitize",
                str(source),
                "--policy",
                str(policy_path),
                "--out",
                str(root / "out"),
            ],
            env,
        )
        copy = "import polars as pl, sys; pl.read_csv(sys.argv[1]).write_parquet(sys.argv[2])"
        anchor_s, anchor_peak = measured(
            [sys.executable, "-c", copy, str(source), str(root / "copy.parquet")], env
        )
    print(f"privpipe sanitize, {args.rows:,} synthetic rows, every rule but scrub")
    print(
        f"  privpipe : peak {peak:>8,.0f} MiB, {args.rows / seconds:>10,.0f} rows/s "
        f"({seconds:.1f} s)"
    )
    print(
        f"  anchor   : peak {anchor_peak:>8,.0f} MiB, {args.rows / anchor_s:>10,.0f} rows/s "
        f"(polars read_csv + write_parquet, no checks)"
    )
    print(f"  goal     : peak under 4,096 MiB ({'met' if peak < 4096 else 'not met'})")


if __name__ == "__main__":
    main()
