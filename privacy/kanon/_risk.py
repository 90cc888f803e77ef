"""Re-identification risk from equivalence class sizes.

Under the prosecutor model the attacker knows the target is in the data: a record in a
class of size |E| is re-identified with probability 1/|E|. Under the marketer model the
attacker tries to re-identify as many records as possible: the expected share is the
number of classes over the number of records (when the data set is the whole
population, as here, that equals the average prosecutor risk; both are reported, as
ARX does, so a reviewer can compare them with other tools).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["risk_figures"]


def risk_figures(sizes: npt.NDArray[np.int64], threshold: float) -> dict[str, Any]:
    """Prosecutor (highest, average), marketer, and the share of records whose
    prosecutor risk exceeds ``threshold``, for classes of the given sizes."""
    sizes = np.asarray(sizes, dtype=np.int64)
    sizes = sizes[sizes > 0]
    records = int(sizes.sum())
    if records == 0:
        return {
            "records": 0,
            "classes": 0,
            "prosecutor_highest": 0.0,
            "prosecutor_average": 0.0,
            "marketer": 0.0,
            "records_above_threshold": 0.0,
            "threshold": threshold,
        }
    risky = sizes[1.0 / sizes > threshold].sum()
    return {
        "records": records,
        "classes": len(sizes),
        "prosecutor_highest": round(1.0 / int(sizes.min()), 6),
        "prosecutor_average": round(len(sizes) / records, 6),
        "marketer": round(len(sizes) / records, 6),
        "records_above_threshold": round(int(risky) / records, 6),
        "threshold": threshold,
    }
