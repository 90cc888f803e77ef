"""DP synthetic tables: MST and AIM, their selection steps written on Private-PGM.

Both mechanisms measure noisy marginals of the training view (integer codes over the
policy's declared domain, :mod:`privacy.dp._domain`), fit a graphical model to the
measurements with Private-PGM (``mbi``, mirror descent on JAX), and sample rows from it.
Only the measurements touch the data; the model, the rows and every figure drawn from
them are post-processing. Every draw is an OpenDP measurement, accounted in zCDP by
:class:`privacy.dp._noise.Accountant`, and the whole release's ρ is at most the ρ that
the policy's (ε, δ) converts to.

* **MST** (McKenna, Miklau & Sheldon, "Winning the NIST Contest", 2021): a third of ρ
  measures every 1-way marginal; values whose noisy count is under 3σ are merged into
  one (the paper's domain compression: post-processing of the noisy 1-ways, undone by
  sampling uniformly among the merged values at the end); a third selects a maximum
  spanning tree of the column pairs, one edge per round by the exponential mechanism on
  the L1 error between each pair's marginal in the data and under independence of the
  noisy 1-ways (sensitivity 1); the last third measures the tree's 2-way marginals.
* **AIM** (McKenna, Mullins, Sheldon & Miklau, VLDB 2022): every 1-way marginal first,
  then rounds of select (exponential mechanism on the marginal's L1 error less the
  noise it would be measured with, ``√(2/π)·σ·cells``), measure, re-fit (warm-started);
  when a round's measurement changes the model by less than its noise, σ halves and
  the selection's ε doubles; the last round spends what is left. Candidates are the
  1- and 2-way marginals (the workload the report measures) whose cells stay under the
  model-size limit, growing with the share of ρ spent, as in the paper. A round's ρ
  is split 0.9 / 0.1 between measuring and selecting.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from privacy.dp._domain import ColumnDomain
from privacy.dp._noise import Accountant, rho_for_epsilon

__all__ = ["Synthesis", "synthesize_codes"]

Progress = Callable[[str], None]
_MAX_CELLS = 2_000_000  # AIM's model-size limit, in cells of the largest clique pair


def _mbi() -> Any:
    """Private-PGM, with JAX in float64 (its float32 stalls on tens of thousands of
    rows) and without JAX's compilation cache (many small programs)."""
    import jax

    jax.config.update("jax_enable_x64", True)  # type: ignore[no-untyped-call]
    jax.config.update("jax_enable_compilation_cache", False)  # type: ignore[no-untyped-call]
    import mbi

    return mbi


@dataclass
class Synthesis:
    """A synthetic table as codes, and what was measured to make it."""

    codes: dict[str, npt.NDArray[np.int64]]
    mechanism: str
    privacy: dict[str, Any]
    measured: list[dict[str, Any]] = field(default_factory=list)
    rounds: int = 0
    seconds: float = 0.0


def synthesize_codes(
    codes: dict[str, npt.NDArray[Any]],
    domains: list[ColumnDomain],
    *,
    mechanism: str,
    epsilon: float,
    delta: float,
    rows: int,
    iterations: int,
    seed: int,
    max_rounds: int | None = None,
    progress: Progress | None = None,
) -> Synthesis:
    """``rows`` synthetic rows of the columns in ``domains``, from ``codes`` (one code
    array per column, the training rows), at (``epsilon``, ``delta``)."""
    mbi = _mbi()
    started = time.perf_counter()
    names = [d.name for d in domains]
    domain = mbi.Domain(names, [d.size for d in domains])
    data = mbi.Dataset({n: np.asarray(codes[n], dtype=np.int64) for n in names}, domain)
    accountant = Accountant("zcdp", rho_for_epsilon(epsilon, delta))
    note = progress or (lambda _line: None)
    mapping: dict[str, npt.NDArray[np.int64]] = {}
    if mechanism == "mst":
        fitted = _mst(mbi, data, accountant, note)
        measured, rounds, mapping = fitted.measured, fitted.rounds, fitted.mapping
        note(f"MST: fitting the graphical model ({iterations} steps)")
        model = _estimate(mbi, fitted.data.domain, fitted.measurements, iterations)
    elif mechanism == "aim":
        model, measured, rounds = _aim(mbi, data, accountant, iterations, max_rounds, note)
    else:
        raise ValueError(f"unknown mechanism {mechanism!r}")
    note("sampling rows from the model")
    np.random.seed(seed)  # Private-PGM samples with numpy's global generator
    sample = model.synthetic_data(rows)
    if mapping:
        sample = sample.decompress(mapping)  # a merged value: one of its values, uniformly
    out = {n: np.asarray(sample.data[n], dtype=np.int64) for n in names}
    privacy = accountant.figures(delta) | {
        "target_epsilon": epsilon,
        "mechanism": mechanism.upper(),
        "measurements": len(measured),
    }
    return Synthesis(out, mechanism, privacy, measured, rounds, time.perf_counter() - started)


def _estimate(
    mbi: Any, domain: Any, measurements: list[Any], iterations: int, warm: Any = None
) -> Any:
    return mbi.estimation.MirrorDescent().estimate(
        domain, measurements, iters=iterations, warm_start=warm
    )


def _measure(
    mbi: Any, data: Any, clique: tuple[str, ...], sigma: float, accountant: Accountant
) -> tuple[Any, dict[str, Any]]:
    """A noisy marginal (discrete Gaussian, L2 sensitivity 1) as Private-PGM's
    measurement, and its line for the card."""
    exact = np.rint(np.asarray(data.project(clique).datavector())).astype(np.int64)
    noisy = accountant.counts(exact, sigma, "marginal " + " × ".join(clique))
    measurement = mbi.LinearMeasurement(noisy.astype(np.float64), clique, stddev=sigma)
    return measurement, {"marginal": list(clique), "sigma": sigma, "cells": int(exact.size)}


def _l1(data: Any, marginal: Callable[[tuple[str, ...]], Any], clique: tuple[str, ...]) -> float:
    real = np.asarray(data.project(clique).datavector())
    return float(np.abs(real - marginal(clique)).sum())


def _forget_compiled() -> None:
    """Drop JAX's compiled programs: AIM's model gains a clique most rounds, and the
    programs compiled for its earlier shapes (hundreds of MiB by the last round) are
    never run again."""
    import jax

    jax.clear_caches()  # type: ignore[no-untyped-call]


def _sampled_marginals(model: Any, data: Any) -> Callable[[tuple[str, ...]], Any]:
    """The model's marginal of any clique, from a large sample of it (three times the
    data, at least 100,000 rows), scaled to the data's size. Private-PGM computes an
    exact marginal of a clique outside the model by variable elimination, compiled
    anew for every model structure (seconds per clique); the sample costs one pass,
    and its error is far below the noise AIM weighs the scores against. Post-processing
    of the model: it spends nothing."""
    rows = max(100_000, 3 * int(data.records))
    sample = model.synthetic_data(rows, method="sample")
    scale = float(data.records) / rows
    sizes = data.domain.config

    def marginal(clique: tuple[str, ...]) -> Any:
        shape = [sizes[a] for a in clique]
        index = np.ravel_multi_index(tuple(np.asarray(sample.data[a]) for a in clique), shape)
        return np.bincount(index, minlength=int(np.prod(shape))) * scale

    return marginal


@dataclass
class _Fitted:
    measurements: list[Any]
    measured: list[dict[str, Any]]
    rounds: int
    data: Any  # the (compressed) data the measurements are of
    mapping: dict[str, npt.NDArray[np.int64]]  # column -> compressed code per code


def _compress(noisy: npt.NDArray[np.int64], sigma: float) -> npt.NDArray[np.int64] | None:
    """MST's compression of one column: values with a noisy count under 3σ share one
    code (the last); None when nothing merges."""
    small = noisy < 3 * sigma
    if small.sum() <= 1:
        return None
    mapping = np.empty(len(noisy), dtype=np.int64)
    mapping[~small] = np.arange(int((~small).sum()))
    mapping[small] = int((~small).sum())
    return mapping


def _independent_l1(data: Any, noisy: dict[str, npt.NDArray[Any]], pair: tuple[str, str]) -> float:
    """L1 distance between a pair's marginal in the data and the product of the two
    noisy 1-way marginals (negative counts at zero), scaled to the data's size."""
    total = float(data.records)
    a, b = (np.maximum(noisy[c].astype(np.float64), 0) for c in pair)
    expected = np.outer(a / max(a.sum(), 1.0), b / max(b.sum(), 1.0)).ravel() * total
    real = np.asarray(data.project(pair).datavector(), dtype=np.float64)
    return float(np.abs(real - expected).sum())


def _mst(mbi: Any, data: Any, accountant: Accountant, note: Progress) -> _Fitted:
    rho = accountant.allowance
    names = list(data.domain.attributes)
    edges = max(1, len(names) - 1)
    sigma = accountant.gaussian_scale(rho / 3 / len(names))
    note(f"MST: measuring {len(names)} 1-way marginals")
    measurements, measured, noisy = [], [], {}
    for name in names:
        m, line = _measure(mbi, data, (name,), sigma, accountant)
        measurements.append(m)
        measured.append(line)
        noisy[name] = np.asarray(m.noisy_measurement)
    mapping = {n: c for n in names if (c := _compress(noisy[n], sigma)) is not None}
    if mapping:
        measurements = [m.compress(mapping, data.domain) for m in measurements]
        noisy = {
            n: np.bincount(mapping[n], weights=noisy[n]) if n in mapping else noisy[n]
            for n in names
        }
        data = data.compress(mapping)
    pairs = list(itertools.combinations(names, 2))
    errors = {pair: _independent_l1(data, noisy, pair) for pair in pairs}
    scale = accountant.selection_scale(rho / 3 / edges, 1.0)
    component = {name: i for i, name in enumerate(names)}
    tree: list[tuple[str, str]] = []
    note(f"MST: selecting {edges} edges of the spanning tree")
    for _ in range(edges):
        open_pairs = [p for p in pairs if component[p[0]] != component[p[1]]]
        if not open_pairs:
            break
        chosen = open_pairs[
            accountant.select(
                np.array([errors[p] for p in open_pairs]), 1.0, scale, "spanning-tree edge"
            )
        ]
        tree.append(chosen)
        old, new = component[chosen[1]], component[chosen[0]]
        component = {n: new if c == old else c for n, c in component.items()}
    sigma2 = accountant.gaussian_scale(rho / 3 / edges)
    note(f"MST: measuring {len(tree)} 2-way marginals")
    for pair in tree:
        m, line = _measure(mbi, data, pair, sigma2, accountant)
        measurements.append(m)
        measured.append(line)
    return _Fitted(measurements, measured, len(tree), data, mapping)


def _aim(
    mbi: Any,
    data: Any,
    accountant: Accountant,
    iterations: int,
    max_rounds: int | None,
    note: Progress,
) -> tuple[Any, list[dict[str, Any]], int]:
    rho = accountant.allowance
    names = list(data.domain.attributes)
    rounds = max_rounds or 16 * len(names)
    sizes = data.domain.config
    candidates = [(n,) for n in names] + list(itertools.combinations(names, 2))
    cells = {c: math.prod(sizes[a] for a in c) for c in candidates}
    round_rho = rho / rounds
    sigma = accountant.gaussian_scale(0.9 * round_rho)
    note(f"AIM: measuring {len(names)} 1-way marginals")
    measurements, measured = [], []
    for name in names:
        m, line = _measure(mbi, data, (name,), sigma, accountant)
        measurements.append(m)
        measured.append(line)
    model = _estimate(mbi, data.domain, measurements, iterations)
    marginal = _sampled_marginals(model, data)
    done = 0
    while accountant.allowance - accountant.spent > 1e-12 and done < rounds:
        done += 1
        remaining = accountant.allowance - accountant.spent
        last = remaining < 2 * round_rho
        this_rho = remaining * (1 - 1e-6) if last else round_rho
        sigma = accountant.gaussian_scale(0.9 * this_rho)
        limit = _MAX_CELLS * max(0.05, accountant.spent / rho)
        pool = [c for c in candidates if cells[c] <= limit] or [
            min(candidates, key=lambda c: cells[c])
        ]
        bias = math.sqrt(2 / math.pi) * sigma
        scores = np.array([_l1(data, marginal, c) - bias * cells[c] for c in pool])
        scale = accountant.selection_scale(0.1 * this_rho, 1.0)
        chosen = pool[accountant.select(scores, 1.0, scale, "AIM round selection")]
        note(f"AIM round {done}: measuring {' × '.join(chosen)} (σ {sigma:.3g})")
        before = marginal(chosen)
        m, line = _measure(mbi, data, chosen, sigma, accountant)
        measurements.append(m)
        measured.append(line | {"round": done})
        model = _estimate(mbi, data.domain, measurements, max(100, iterations // 4), model)
        _forget_compiled()  # the model only grows: no earlier round's program runs again
        marginal = _sampled_marginals(model, data)
        after = marginal(chosen)
        if float(np.abs(after - before).sum()) <= bias * cells[chosen]:
            round_rho *= 4  # σ halves and the selection's ε doubles
        if last:
            break
    model = _estimate(mbi, data.domain, measurements, iterations, model)
    return model, measured, done
