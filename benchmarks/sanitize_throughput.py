"""Figure: rows per second through ingest -> transform -> gate -> publish (library),
with the vault copy and the output sealed as the flow does.

Anchor: the floor of any such pipeline, polars reading the same CSV and writing it back
as Parquet with no checks and no transformation, in the same run. Prefect's own
overhead (a temporary server start, per-task API calls) is not in either figure.
Usage: python benchmarks/sanitize_throughput.py [--rows N]
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
from pathlib import Path

import polars as pl
from _common import bench_keyring, best_of, report

from privacy import stages
from privacy.crypto import StaticKeyProvider
from privacy.io import write_frame
from privacy.policy import load_policy
from privacy.synth import synthesize

POLICY = Path(__file__).resolve().parent.parent / "policies" / "demo.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    policy = load_policy(POLICY)
    keys = StaticKeyProvider(secrets.token_bytes(32))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ring = bench_keyring(root)
        source = root / "people.csv"
        synthesize(args.rows, seed=1).write_csv(source)

        def pipeline() -> None:
            raw, _ = stages.ingest(source, policy, ring, root / "vault")
            out, _ = stages.transform(raw, policy, keys)
            stages.gate(raw, out, policy)
            write_frame(out, root / "data.parquet.sealed", keys=ring)

        def floor() -> None:
            pl.read_csv(source).write_parquet(root / "copy.parquet")

        ours = best_of(2, pipeline)
        anchor = best_of(2, floor)
    report(
        f"sanitize stages: {args.rows:,} rows, demo policy (19 columns, 8 rules)",
        args.rows / ours,
        args.rows / anchor,
        "rows/s",
        "polars read_csv + write_parquet, no checks",
    )
    print(f"  time     : {ours:>14.1f} s for {args.rows:,} rows")


if __name__ == "__main__":
    main()
