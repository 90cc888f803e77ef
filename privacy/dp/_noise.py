"""Noise and accounting for the table and statistics releases: OpenDP's measurements.

Every noisy value privpipe releases beside a model is drawn by an OpenDP measurement
(``opendp.measurements``): the discrete Gaussian or discrete Laplace on integer counts,
the continuous Laplace or Gaussian on clipped sums, and report-noisy-max (Gumbel, the
exponential mechanism) for a selection. Each measurement's privacy loss is OpenDP's own
map at the stated sensitivity: ρ (zero-concentrated DP) or ε (pure DP). A release of
many measurements composes them, and the ledger is charged the (ε, δ) of the whole:

* zCDP: ρ adds up over measurements, adaptively chosen ones included (Bun & Steinke
  2016, Lemma 2.3); the total is converted to (ε, δ) by OpenDP's zCDP → approximate-DP
  map (``make_zCDP_to_approxDP``; Canonne, Kamath & Steinke 2020), which depends on ρ
  alone;
* pure DP: ε adds up (basic sequential composition), δ = 0.

:class:`Accountant` keeps the losses spent and refuses a measurement that would spend
past the release's allowance, before it draws: a release never takes more than it was
charged.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from privacy.errors import PolicyError

__all__ = [
    "Accountant",
    "epsilon_of_rho",
    "rho_for_epsilon",
]

Measure = Literal["zcdp", "pure"]


def _dp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def epsilon_of_rho(rho: float, delta: float) -> float:
    """ε at ``delta`` of a ρ-zCDP release: OpenDP's conversion of a measurement whose
    loss is exactly ρ (a Gaussian of scale 1 at sensitivity √(2ρ))."""
    if rho <= 0:
        return 0.0
    dp = _dp()
    reference = dp.m.make_gaussian(
        dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float), scale=1.0
    )
    profile = dp.c.make_zCDP_to_approxDP(reference).map(math.sqrt(2 * rho))
    return float(profile.epsilon(delta))


@functools.lru_cache(maxsize=256)
def rho_for_epsilon(epsilon: float, delta: float) -> float:
    """The largest ρ whose (ε, δ) conversion stays within ``epsilon`` at ``delta``
    (OpenDP's binary search over the conversion)."""
    dp = _dp()
    return float(
        dp.binary_search(
            lambda rho: epsilon_of_rho(rho, delta) <= epsilon, bounds=(1e-12, 4 * epsilon + 1)
        )
    )


@functools.lru_cache(maxsize=1024)
def _noise_scale(measure: Measure, loss: float, sensitivity: float, integer: bool) -> float:
    dp = _dp()
    kind = int if integer else float
    zcdp = measure == "zcdp"
    metric = dp.l2_distance(T=kind) if zcdp else dp.l1_distance(T=kind)
    make = dp.m.make_gaussian if zcdp else dp.m.make_laplace
    atom = dp.atom_domain(T=int) if integer else dp.atom_domain(T=float, nan=False)
    domain = dp.vector_domain(atom)
    d_in = math.ceil(sensitivity) if integer else float(sensitivity)
    return float(
        dp.binary_search_param(lambda s: make(domain, metric, scale=s), d_in=d_in, d_out=loss)
    )


@dataclass
class Accountant:
    """The privacy loss of one release's measurements, within its allowance.

    ``measure`` zcdp: ``allowance`` is ρ; pure: ε. Every draw goes through a method
    here, which builds the OpenDP measurement, reads its loss at the sensitivity, and
    refuses to draw past the allowance. OpenDP draws from the operating system's
    secure generator: noise is never seeded."""

    measure: Measure
    allowance: float
    spent: float = 0.0
    log: list[dict[str, Any]] = field(default_factory=list)

    def _spend(self, loss: float, what: str, **facts: Any) -> None:
        if self.spent + loss > self.allowance * (1 + 1e-9) + 1e-12:
            raise PolicyError(
                f"{what}: would spend {loss:.6g} more, past the release's "
                f"{'ρ' if self.measure == 'zcdp' else 'ε'} of {self.allowance:.6g} "
                f"({self.spent:.6g} spent)"
            )
        self.spent += loss
        self.log.append({"what": what, "loss": loss, **facts})

    def counts(self, values: npt.NDArray[Any], scale: float, what: str) -> npt.NDArray[np.int64]:
        """Noisy integer counts (L2 / L1 sensitivity 1: one record changes one cell by
        one): the discrete Gaussian under zCDP, the discrete Laplace under pure DP."""
        dp = _dp()
        metric = dp.l2_distance(T=int) if self.measure == "zcdp" else dp.l1_distance(T=int)
        make = dp.m.make_gaussian if self.measure == "zcdp" else dp.m.make_laplace
        measurement = make(dp.vector_domain(dp.atom_domain(T=int)), metric, scale=scale)
        self._spend(float(measurement.map(1)), what, scale=scale, cells=int(np.size(values)))
        flat = [int(v) for v in np.asarray(values, dtype=np.int64).ravel()]
        return np.asarray(measurement(flat), dtype=np.int64).reshape(np.shape(values))

    def sums(
        self, values: npt.NDArray[Any], sensitivity: float, scale: float, what: str
    ) -> npt.NDArray[np.float64]:
        """Noisy sums of values clipped to a range whose largest magnitude is
        ``sensitivity`` (one record moves one cell by at most that): the Gaussian under
        zCDP, the Laplace under pure DP, both OpenDP's floating-point-safe samplers."""
        dp = _dp()
        metric = dp.l2_distance(T=float) if self.measure == "zcdp" else dp.l1_distance(T=float)
        make = dp.m.make_gaussian if self.measure == "zcdp" else dp.m.make_laplace
        domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
        measurement = make(domain, metric, scale=scale)
        self._spend(float(measurement.map(float(sensitivity))), what, scale=scale)
        flat = [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]
        return np.asarray(measurement(flat), dtype=np.float64).reshape(np.shape(values))

    def select(self, scores: npt.NDArray[Any], sensitivity: float, scale: float, what: str) -> int:
        """The index of the highest score after Gumbel noise (the exponential mechanism,
        as OpenDP's report-noisy-max), scores of L∞ sensitivity ``sensitivity``."""
        dp = _dp()
        measure = (
            dp.zero_concentrated_divergence() if self.measure == "zcdp" else dp.max_divergence()
        )
        measurement = dp.m.make_noisy_max(
            dp.vector_domain(dp.atom_domain(T=float, nan=False)),
            dp.linf_distance(T=float),
            measure,
            scale=scale,
        )
        self._spend(float(measurement.map(float(sensitivity))), what, scale=scale)
        return int(measurement([float(s) for s in np.asarray(scores, dtype=np.float64)]))

    def noise_scale(self, loss: float, sensitivity: float = 1.0, *, integer: bool = True) -> float:
        """The scale at which :meth:`counts` (``integer``) or :meth:`sums` spends
        ``loss`` (ρ under zCDP, ε under pure DP) at ``sensitivity``: OpenDP's search
        over its own map, so the loss read back never exceeds it."""
        return _noise_scale(self.measure, float(loss), float(sensitivity), integer)

    def gaussian_scale(self, rho: float, sensitivity: float = 1.0) -> float:
        """The discrete Gaussian's scale for counts that spends ``rho``."""
        return self.noise_scale(rho, sensitivity)

    def selection_scale(self, loss: float, sensitivity: float) -> float:
        """The Gumbel scale of report-noisy-max that spends ``loss`` at ``sensitivity``."""
        dp = _dp()
        measure = (
            dp.zero_concentrated_divergence() if self.measure == "zcdp" else dp.max_divergence()
        )
        domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
        return float(
            dp.binary_search_param(
                lambda s: dp.m.make_noisy_max(domain, dp.linf_distance(T=float), measure, scale=s),
                d_in=float(sensitivity),
                d_out=loss,
            )
        )

    def figures(self, delta: float) -> dict[str, Any]:
        """The release's privacy: ρ (zcdp) and the (ε, δ) it converts to, or pure ε."""
        if self.measure == "zcdp":
            return {
                "rho": self.spent,
                "epsilon": epsilon_of_rho(self.spent, delta),
                "delta": delta,
                "accountant": "zCDP (OpenDP), converted to (ε, δ) by make_zCDP_to_approxDP",
                "composition": "ρ adds over measurements (adaptive zCDP composition)",
            }
        return {
            "epsilon": self.spent,
            "delta": 0.0,
            "accountant": "pure DP (OpenDP)",
            "composition": "ε adds over measurements (basic sequential composition)",
        }
