"""The privacy budget ledger: ε spent per data set, persistent, safe under concurrent jobs.

Composition: privpipe charges every differentially private training run on a data set
its (ε, δ) and adds them up (basic sequential composition: k runs at (ε_i, δ_i) are
together (Σε_i, Σδ_i)-DP). That is an upper bound; tighter composition (e.g. of the PRV
accountants' privacy loss distributions across runs) would spend less, and is not
claimed. A run is charged before it trains, under an exclusive lock, with the ledger
rewritten atomically; a run that would pass the data set's budget is refused and leaves
the ledger as it was. A charged run that then fails keeps its charge: the noise it drew
may already have touched the data, so the spend is counted (conservatively).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from privacy._atomic import private_dir
from privacy.errors import BudgetExhausted, IntegrityError
from privacy.io import atomic_write_bytes

__all__ = ["BudgetLedger", "default_ledger_path"]

LEDGER_ENV = "PRIVPIPE_LEDGER"
_EPS = 1e-9


def _num(value: float) -> str:
    return repr(round(float(value), 9))


def default_ledger_path() -> Path:
    """``$PRIVPIPE_LEDGER``, else ``~/.privpipe/ledger.json``."""
    value = os.environ.get(LEDGER_ENV)
    return Path(value) if value else Path.home() / ".privpipe" / "ledger.json"


class BudgetLedger:
    """A JSON file of data sets: budget, ε and δ spent, and every charged run."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        private_dir(self.path.parent)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self._read()
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"version": 1, "datasets": {}}
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError):
            raise IntegrityError(f"{self.path}: the privacy budget ledger is unreadable") from None
        if not isinstance(data.get("datasets"), dict):
            raise IntegrityError(f"{self.path}: not a privacy budget ledger")
        return data

    def _write(self, data: dict[str, Any]) -> None:
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        atomic_write_bytes(self.path, text.encode())  # 0600

    def spent(self, dataset: str) -> float:
        entry = self._read()["datasets"].get(dataset)
        return float(entry["epsilon_spent"]) if entry else 0.0

    def entry(self, dataset: str) -> dict[str, Any] | None:
        entry: dict[str, Any] | None = self._read()["datasets"].get(dataset)
        return entry

    def charge(
        self, dataset: str, *, epsilon: float, delta: float, budget: float, run_id: str
    ) -> dict[str, Any]:
        """Charge one run, or raise :class:`BudgetExhausted` changing nothing."""
        with self._locked() as data:
            entry = data["datasets"].setdefault(
                dataset, {"budget": budget, "epsilon_spent": 0.0, "delta_spent": 0.0, "runs": []}
            )
            entry["budget"] = budget  # the policy in force decides the budget
            spent = float(entry["epsilon_spent"])
            if spent + epsilon > budget + _EPS:
                raise BudgetExhausted(
                    f"privacy budget exhausted for dataset {dataset}: spent {_num(spent)} of "
                    f"{_num(budget)}, requested {_num(epsilon)}"
                )
            entry["epsilon_spent"] = round(spent + epsilon, 12)
            entry["delta_spent"] = float(entry["delta_spent"]) + delta
            entry["runs"].append(
                {
                    "run_id": run_id,
                    "epsilon": epsilon,
                    "delta": delta,
                    "charged": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
            self._write(data)
            return dict(entry)
