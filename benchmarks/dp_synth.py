"""Figures: DP synthetic tables on Adult (MST and AIM), beside their anchors.

For each mechanism and ε in (0.5, 1, 4), δ = 1e-5, on UCI Adult (30,162 records, the 9
columns of `policies/adult.yaml`, domains from ARX's hierarchies; 20 % held out):

* TSTR: accuracy and F1 (>50K) of scikit-learn's histogram gradient boosting trained
  on the synthetic table and tested on the real holdout;
* the mean and the worst 2-way marginal TVD against the training rows;
* wall time and peak memory of the synthesis, in a process of its own.

Anchors, measured in the same run: the same classifier trained on the real training
rows (non-private), and a DP baseline at the same ε: every 1-way marginal measured with
OpenDP's discrete Gaussian (ρ split evenly), each column sampled alone from its noisy
marginal, so the gain from modelling the correlations is a number.

Goals (ε = 1): TSTR accuracy ≥ 0.80 and within 3 points of real, F1 within 0.08; mean
2-way TVD at most half the baseline's; MST ≤ 2 min, AIM ≤ 10 min, each ≤ 2 GiB.
Needs ../shared/data/adult. Usage: python benchmarks/dp_synth.py [--mechanism mst|aim]
[--epsilon 1 ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ADULT = ROOT.parent / "shared" / "data" / "adult"
LABEL, POSITIVE, DELTA = "salary-class", ">50K", 1e-5


def _data(folder: Path) -> tuple[Any, Any, Any, list[Any]]:
    """Adult's codes over the declared domains, split 80 / 20 (seed 0)."""
    import numpy as np
    import polars as pl

    from privacy.dp._domain import release_domain
    from privacy.policy import load_policy

    for item in ADULT.iterdir():
        shutil.copy(item, folder / item.name)
    shutil.copy(ROOT / "policies" / "adult.yaml", folder / "adult.yaml")
    policy = load_policy(folder / "adult.yaml")
    frame = pl.read_csv(folder / "adult.csv", separator=";", infer_schema_length=0)
    domains = release_domain(policy, list(policy.columns), "synthetic")
    codes = np.column_stack([d.encode(frame.get_column(d.name)) for d in domains]).astype(np.int64)
    order = np.random.default_rng(0).permutation(len(codes))
    cut = len(codes) // 5
    return codes[np.sort(order[cut:])], codes[np.sort(order[:cut])], policy, domains


def _independent(train: Any, domains: list[Any], epsilon: float) -> Any:
    """The baseline: each column from its own noisy 1-way marginal (OpenDP)."""
    import numpy as np

    from privacy.dp._noise import Accountant, rho_for_epsilon

    rho = rho_for_epsilon(epsilon, DELTA)
    accountant = Accountant("zcdp", rho)
    sigma = accountant.noise_scale(rho / len(domains))
    draw = np.random.default_rng(1)
    columns = []
    for i, d in enumerate(domains):
        noisy = accountant.counts(np.bincount(train[:, i], minlength=d.size), sigma, d.name)
        p = np.maximum(noisy, 0).astype(np.float64)
        p = p / p.sum() if p.sum() > 0 else np.full(d.size, 1 / d.size)
        columns.append(draw.choice(d.size, len(train), p=p))
    return np.column_stack(columns)


def one(mechanism: str, epsilon: float) -> dict[str, Any]:
    """One synthesis (or the baseline, ``independent``) and its figures."""
    import numpy as np

    from privacy.dp._synthetic import synthesize_codes
    from privacy.dp._table_check import marginal_distances, tstr

    with tempfile.TemporaryDirectory() as tmp:
        train, holdout, _, domains = _data(Path(tmp))
    started = time.perf_counter()
    if mechanism == "independent":
        synthetic = _independent(train, domains, epsilon)
    else:
        made = synthesize_codes(
            {d.name: train[:, i] for i, d in enumerate(domains)},
            domains,
            mechanism=mechanism,
            epsilon=epsilon,
            delta=DELTA,
            rows=len(train),
            iterations=2000,
            seed=0,
        )
        synthetic = np.column_stack([made.codes[d.name] for d in domains])
    seconds = time.perf_counter() - started
    marginals = marginal_distances(train, synthetic, domains)
    fit = tstr(train, synthetic, holdout, domains, LABEL, POSITIVE, 0)
    return {
        "mechanism": mechanism,
        "epsilon": epsilon,
        "seconds": seconds,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "two_way_mean": marginals["two_way_mean"],
        "two_way_max": marginals["two_way_max"],
        "tstr": fit["synthetic"],
        "real": fit["real"],
    }


def _run(mechanism: str, epsilon: float) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--one", mechanism, str(epsilon)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mechanism", action="append", choices=["mst", "aim"])
    parser.add_argument("--epsilon", action="append", type=float)
    parser.add_argument("--one", nargs=2, metavar=("MECHANISM", "EPSILON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        import warnings

        warnings.filterwarnings("ignore")
        print(json.dumps(one(args.one[0], float(args.one[1]))))
        return
    if not ADULT.is_dir():
        sys.exit(f"{ADULT}: not found (UCI Adult with ARX's hierarchies)")
    mechanisms = args.mechanism or ["mst", "aim"]
    for epsilon in args.epsilon or [0.5, 1.0, 4.0]:
        baseline = _run("independent", epsilon)
        real = baseline["real"]
        print(f"DP synthetic Adult at ε = {epsilon:g}, δ = {DELTA:g} (2-way TVD vs training rows)")
        print(
            f"  anchor: classifier on real rows       : accuracy {real['accuracy']:.4f}, "
            f"F1 {real['f1']:.4f}"
        )
        print(
            f"  anchor: independent noisy 1-ways      : TSTR accuracy "
            f"{baseline['tstr']['accuracy']:.4f}, F1 {baseline['tstr']['f1']:.4f}; 2-way TVD "
            f"mean {baseline['two_way_mean']:.4f}, worst {baseline['two_way_max']:.4f}"
        )
        for mechanism in mechanisms:
            got = _run(mechanism, epsilon)
            print(
                f"  privpipe {mechanism.upper():4}                       : TSTR accuracy "
                f"{got['tstr']['accuracy']:.4f} ({got['tstr']['accuracy'] - real['accuracy']:+.4f}"
                f" vs real), F1 {got['tstr']['f1']:.4f} ({got['tstr']['f1'] - real['f1']:+.4f});"
                f" 2-way TVD mean {got['two_way_mean']:.4f} "
                f"({got['two_way_mean'] / baseline['two_way_mean']:.2f}x baseline), worst "
                f"{got['two_way_max']:.4f}; {got['seconds']:.1f} s, peak {got['peak_mib']:,.0f} MiB"
            )


if __name__ == "__main__":
    main()
