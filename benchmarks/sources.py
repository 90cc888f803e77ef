"""Figure: reading from PostgreSQL and sanitizing, on N synthetic rows (default 1M).

Starts a throwaway PostgreSQL cluster (the test harness's: Debian's postgresql, loopback,
stopped by PID), loads N synthetic people into a table, then runs, in the same run:

- privpipe: `privpipe sanitize` with `input.kind: postgres` (every rule but scrub),
  printing rows/s of the read (the ingest step: rows from the server, checked, the vault
  copy sealed) and of the whole command;
- anchor 1: polars `read_database_uri` of the same table, nothing else: ADBC (the driver
  privpipe streams with) and, where it is installed, connectorx;
- anchor 2: `psql \\copy` of the table to CSV, then `privpipe sanitize` of that CSV: what a
  user would script without a database source (the read step is the copy).

Usage: python benchmarks/sources.py [--rows N]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import yaml
from _common import command_setup

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from privacy.synth import synthesize
from tests._postgres import postgres_cluster

URI_ENV = "PRIVPIPE_BENCH_PG_URI"


def _sanitize(args: list[str], env: dict[str, str]) -> tuple[float, dict]:  # type: ignore[type-arg]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "sanitize", *args, "--overwrite", "--json"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - start, json.loads(done.stdout.strip().splitlines()[-1])


def _ingest_seconds(out: Path) -> float:
    manifest = json.loads((out / "manifest.json").read_text())
    return float(next(s for s in manifest["stages"] if s["stage"] == "ingest")["duration_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    rows = args.rows
    with tempfile.TemporaryDirectory() as tmp, postgres_cluster() as pg:
        root = Path(tmp)
        env, file_policy = command_setup(root)
        env[URI_ENV] = pg.uri()
        synthesize(rows, seed=1).write_database(
            "people", pg.uri(), engine="adbc", if_table_exists="replace"
        )
        data = yaml.safe_load(file_policy.read_text())
        data["input"] = {
            "kind": "postgres",
            "uri_env": URI_ENV,
            "table": "people",
            "partition_by": "person_id",
        }
        db_policy = root / "db.yaml"
        db_policy.write_text(yaml.safe_dump(data))

        # one small command first: Prefect's home is created and migrated once, not in
        # whichever figure happens to run first
        small = root / "small.csv"
        synthesize(10, seed=2).write_csv(small)
        _sanitize([str(small), "--policy", str(file_policy), "--out", str(root / "o-small")], env)
        total, _ = _sanitize(["--policy", str(db_policy), "--out", str(root / "o-db")], env)
        read = _ingest_seconds(root / "o-db")

        start = time.perf_counter()
        plain = pl.read_database_uri("SELECT * FROM people", pg.uri(), engine="adbc")
        polars_read = time.perf_counter() - start
        assert plain.height == rows
        connectorx = None  # the other reader polars offers, where it is installed
        if importlib.util.find_spec("connectorx") is not None:
            start = time.perf_counter()
            pl.read_database_uri("SELECT * FROM people", pg.uri(), engine="connectorx")
            connectorx = time.perf_counter() - start

        csv = root / "people.csv"
        start = time.perf_counter()
        subprocess.run(
            ["psql", "-X", "-q", "-d", pg.uri(), "-c", f"\\copy people TO '{csv}' CSV HEADER"],
            check=True,
            capture_output=True,
        )
        copy = time.perf_counter() - start
        after_copy, _ = _sanitize(
            [str(csv), "--policy", str(file_policy), "--out", str(root / "o-csv")], env
        )
    print(f"PostgreSQL to a sanitized release: {rows:,} rows, every rule but scrub")
    print(f"  privpipe read (ingest: rows, checks, sealed vault): {rows / read:>12,.0f} rows/s")
    print(
        f"  anchor: polars read_database_uri (ADBC)           : {rows / polars_read:>12,.0f} rows/s"
    )
    if connectorx is not None:
        label = "  anchor: polars read_database_uri (connectorx)     :"
        print(f"{label} {rows / connectorx:>12,.0f} rows/s")
    else:
        print("  (connectorx is not installed: pip install connectorx to time it too)")
    print(f"  anchor: psql \\copy to CSV                          : {rows / copy:>12,.0f} rows/s")
    print(f"  privpipe sanitize from the table, end to end      : {rows / total:>12,.0f} rows/s")
    both = copy + after_copy
    print(f"  anchor: \\copy then privpipe sanitize of the CSV    : {rows / both:>12,.0f} rows/s")
    print(f"  ratio (end to end)                                : {both / total:>12.2f} x anchor")


if __name__ == "__main__":
    main()
