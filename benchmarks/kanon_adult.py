"""Figures: the k-anonymity stage on UCI Adult, and `privpipe sanitize` on a 1M-row
Adult, against anjana (PyPI; a greedy Datafly-style search), the tool Python users pick.

1. Adult (30,162 records, the 8 quasi-identifiers, ARX hierarchies), k = 5, 5 %
   suppression: the time of privpipe's k-anonymity stage (search, generalization,
   suppression, re-count and risk; after imports and reading) beside the time of anjana's
   k_anonymity call on the same data, and the discernibility each reaches.
2. With --scale: a 1M-row Adult built deterministically (copies of Adult with jittered
   age and resampled categories): the extra time of the whole `privpipe sanitize` command
   over its run on Adult (fixed start-up costs cancel), beside anjana's extra time from
   Adult to 1M rows, and the command's peak memory.

anjana runs in its own virtual environment (its pins conflict with privpipe's):
`make bench-anjana` creates benchmarks/.venv-anjana; or pass --anjana-python.
Needs ../shared/data/adult. Usage: python benchmarks/kanon_adult.py [--scale]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from _common import best_of, measured

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ADULT = ROOT.parent / "shared" / "data" / "adult"


def _quasi_identifiers() -> list[str]:
    from privacy.policy import load_policy

    return load_policy(ROOT / "policies" / "adult.yaml").columns_with_role("quasi_identifier")


def _anjana(python: Path, data: Path, folder: Path) -> dict[str, float]:
    done = subprocess.run(
        [
            str(python),
            str(HERE / "anchors" / "anjana_kanon.py"),
            str(data),
            str(folder),
            "5",
            "5",
            ",".join(_quasi_identifiers()),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def scaled_adult(source: Path, rows: int, seed: int = 7) -> pl.DataFrame:
    """``rows`` records from Adult: whole copies, each with ages moved by -2..2 (kept in
    17..90) and, in one record in five, one category redrawn from its column."""
    adult = pl.read_csv(source, separator=";", infer_schema=False)
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(-(-rows // adult.height)):
        n = adult.height
        age = adult.get_column("age").cast(pl.Int64).to_numpy() + rng.integers(-2, 3, n)
        copy = adult.with_columns(pl.Series("age", np.clip(age, 17, 90).astype(str)))
        column = rng.choice(["race", "marital-status", "education", "workclass", "occupation"])
        redraw = rng.random(n) < 0.2
        values = copy.get_column(column).to_numpy()
        values[redraw] = rng.choice(values, int(redraw.sum()))
        parts.append(copy.with_columns(pl.Series(column, values)))
    return pl.concat(parts).head(rows)


def _sanitize(data: Path, policy: Path, out: Path, env: dict[str, str]) -> tuple[float, float]:
    """Seconds and peak memory of one `privpipe sanitize`, the console script."""
    privpipe = str(Path(sys.executable).with_name("privpipe"))
    command = [privpipe, "sanitize", str(data), "--policy", str(policy), "--out", str(out)]
    return measured([*command, "--overwrite", "--json"], env, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", action="store_true", help="Also the 1M-row figure.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--anjana-python", type=Path, default=HERE / ".venv-anjana" / "bin" / "python"
    )
    args = parser.parse_args()
    if not (ADULT / "adult.csv").is_file():
        sys.exit(f"needs the Adult data in {ADULT}")
    if not args.anjana_python.exists():
        sys.exit(f"no anjana environment at {args.anjana_python}: run `make bench-anjana`")

    from privacy.io import read_input
    from privacy.kanon import anonymize
    from privacy.policy import load_policy

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for path in ADULT.glob("adult_hierarchy_*.csv"):
            shutil.copy(path, folder)
        shutil.copy(ROOT / "policies" / "adult.yaml", folder)
        policy = load_policy(folder / "adult.yaml")
        frame = read_input(ADULT / "adult.csv", policy)
        result = {}

        def stage() -> None:
            result["r"] = anonymize(frame, policy)[1]

        ours = best_of(3, stage)
        theirs = _anjana(args.anjana_python, ADULT / "adult.csv", folder)
        ours_dm = result["r"].metrics["discernibility"]
        print("k-anonymity on Adult (30,162 records, 8 quasi-identifiers), k=5, 5 % suppression")
        print(f"  privpipe : {ours:>10.3f} s   discernibility {ours_dm:>14,.0f} (the optimum)")
        print(
            f"  anchor   : {theirs['seconds']:>10.3f} s   discernibility "
            f"{theirs['discernibility']:>14,.0f}  (anjana k_anonymity, same data)"
        )
        print(
            f"  ratio    : {ours / theirs['seconds']:>10.3f} x anchor's time "
            f"(goal <= 0.10); anjana's DM is {theirs['discernibility'] / ours_dm:.1f}x"
        )
        if not args.scale:
            return

        big = folder / "adult-1m.csv"
        scaled_adult(ADULT / "adult.csv", args.rows).write_csv(big, separator=";")
        env = {**os.environ, "PREFECT_HOME": str(folder / "prefect")}
        env.pop("PRIVPIPE_KEYRING", None)
        ring = folder / "ring.json"
        subprocess.run(
            [sys.executable, "-m", "flows.cli", "keys", "init", "--keyring", str(ring)],
            check=True,
            capture_output=True,
            cwd=ROOT,
            env={**env, "PRIVPIPE_PASSPHRASE": "benchmark"},
        )
        env |= {"PRIVPIPE_KEYRING": str(ring), "PRIVPIPE_PASSPHRASE": "benchmark"}
        # interleaved, best of two: Prefect's temporary server alone varies by seconds
        runs: dict[str, list[tuple[float, float]]] = {"small": [], "big": []}
        for _ in range(2):
            for name, data in (("small", ADULT / "adult.csv"), ("big", big)):
                runs[name].append(_sanitize(data, folder / "adult.yaml", folder / name, env))
        small_t = min(t for t, _ in runs["small"])
        big_t = min(t for t, _ in runs["big"])
        small_mib = max(m for _, m in runs["small"])
        peak_mib = max(m for _, m in runs["big"])
        anj_big = _anjana(args.anjana_python, big, folder)
        ours_extra = big_t - small_t
        theirs_extra = anj_big["seconds"] - theirs["seconds"]
        print(f"privpipe sanitize, {args.rows:,}-row Adult, extra time over the Adult run")
        print(
            f"  privpipe : {ours_extra:>10.1f} s   ({small_t:.1f} s on Adult, {big_t:.1f} s on "
            f"{args.rows:,} rows, best of 2 each)"
        )
        print(
            f"  memory   : {peak_mib:>10,.0f} MiB peak on {args.rows:,} rows (goal <= 1,024); "
            f"{small_mib:,.0f} MiB on Adult, the command's own footprint"
        )
        print(
            f"  anchor   : {theirs_extra:>10.1f} s   (anjana k_anonymity: "
            f"{theirs['seconds']:.1f} s on Adult, {anj_big['seconds']:.1f} s on {args.rows:,} rows)"
        )
        print(
            f"  ratio    : {ours_extra / theirs_extra:>10.3f} x anchor's extra time (goal <= 0.10)"
        )


if __name__ == "__main__":
    main()
