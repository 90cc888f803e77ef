"""Figure: the error of each DP statistic against its exact value, beside the error its
stated noise scale predicts (the anchor, from the same release's own card).

The demo policy's three queries (counts by sex × race and by education × income, mean
hours by sex) on 20,000 synthetic people, released 200 times with OpenDP's Laplace
(ε = 0.5) and again with its Gaussian (ε = 0.5, δ = 1e-5). For every query: the root
mean squared error over all its cells and repetitions, the standard deviation the
release states (``noise_std``), their ratio (1.0: the noise is what it says), and how
often the 95 % interval held the exact value.

Usage: python benchmarks/dp_stats.py [--repetitions N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=200)
    args = parser.parse_args()
    import yaml

    from privacy.dp._noise import Accountant, rho_for_epsilon
    from privacy.dp._stats import exact_cells, measure_queries, plan_statistics
    from privacy.policy import policy_from_dict
    from privacy.synth import synthesize

    people = synthesize(20_000, 7)
    for mechanism in ("laplace", "gaussian"):
        data = yaml.safe_load((ROOT / "policies" / "demo.yaml").read_text())
        data["statistics"]["mechanism"] = mechanism
        policy = policy_from_dict(data)
        spec = policy.statistics
        assert spec is not None
        plans = plan_statistics(policy)
        exact = [exact_cells(people, plan) for plan in plans]
        zcdp = mechanism == "gaussian"
        allowance = rho_for_epsilon(spec.epsilon, spec.delta) if zcdp else spec.epsilon
        started = time.perf_counter()
        runs = [
            measure_queries(exact, plans, spec, Accountant("zcdp" if zcdp else "pure", allowance))
            for _ in range(args.repetitions)
        ]
        seconds = (time.perf_counter() - started) / args.repetitions
        print(
            f"DP statistics, {mechanism}, ε = {spec.epsilon:g}"
            + (f", δ = {spec.delta:g}" if zcdp else "")
            + f": {args.repetitions} releases of 20,000 people ({seconds * 1000:.0f} ms each)"
        )
        for index, plan in enumerate(plans):
            counts, sums = exact[index]
            if plan.query.kind == "count":
                truth = counts.astype(np.float64)
            elif plan.query.kind == "sum":
                truth = sums
            else:
                truth = np.clip(sums / np.maximum(counts, 1), *plan.bounds)  # type: ignore[misc]
            released = np.array([run[index]["values"] for run in runs])
            rmse = float(np.sqrt(((released - truth) ** 2).mean()))
            stated = float(runs[0][index]["std"])
            low = np.array([run[index]["low"] for run in runs])
            high = np.array([run[index]["high"] for run in runs])
            covered = float(((low <= truth) & (truth <= high)).mean())
            if plan.query.kind == "mean":  # stated: the sum's sd over the cells' counts
                stated = float(np.sqrt(((stated / np.maximum(counts, 1)) ** 2).mean()))
            print(
                f"  {plan.query.name:24} ({plan.cells:3} groups): error (RMSE) {rmse:9.4g}, "
                f"stated noise sd {stated:9.4g} (anchor), ratio {rmse / stated:5.3f}; 95 % "
                f"interval held the exact value in {covered:.1%}"
            )


if __name__ == "__main__":
    main()
