"""The privacy budget ledger: charges add up, an overspend is refused without changing
anything, and concurrent jobs cannot together pass the budget."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from privacy.dp import BudgetLedger
from privacy.errors import BudgetExhausted


def test_charges_add_up_and_an_overspend_is_refused_leaving_the_ledger_as_it_was(
    tmp_path: Path,
) -> None:
    ledger = BudgetLedger(tmp_path / "ledger.json")
    ledger.charge("adult", epsilon=1.5, delta=1e-5, budget=3.0, run_id="a")
    ledger.charge("adult", epsilon=1.0, delta=1e-5, budget=3.0, run_id="b")
    assert ledger.spent("adult") == 2.5
    before = (tmp_path / "ledger.json").read_bytes()
    with pytest.raises(BudgetExhausted) as refused:
        ledger.charge("adult", epsilon=1.0, delta=1e-5, budget=3.0, run_id="c")
    assert str(refused.value) == (
        "privacy budget exhausted for dataset adult: spent 2.5 of 3.0, requested 1.0"
    )
    assert (tmp_path / "ledger.json").read_bytes() == before
    assert [r["run_id"] for r in ledger.entry("adult")["runs"]] == ["a", "b"]  # type: ignore[index]
    assert (tmp_path / "ledger.json").stat().st_mode & 0o777 == 0o600


def test_data_sets_have_separate_budgets(tmp_path: Path) -> None:
    ledger = BudgetLedger(tmp_path / "ledger.json")
    ledger.charge("adult", epsilon=3.0, delta=1e-5, budget=3.0, run_id="a")
    ledger.charge("people", epsilon=3.0, delta=1e-5, budget=3.0, run_id="b")
    assert ledger.spent("adult") == ledger.spent("people") == 3.0


def _charge(path: str, start: multiprocessing.synchronize.Barrier, run: str, results) -> None:  # type: ignore[name-defined,no-untyped-def]
    start.wait()
    try:
        BudgetLedger(Path(path)).charge("adult", epsilon=2.0, delta=1e-5, budget=3.0, run_id=run)
        results.put(("charged", run))
    except BudgetExhausted:
        results.put(("refused", run))


def test_two_concurrent_jobs_cannot_together_exceed_the_budget(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = context.Queue()
    path = str(tmp_path / "ledger.json")
    jobs = [context.Process(target=_charge, args=(path, start, r, results)) for r in "xy"]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(60)
    outcomes = sorted(results.get(timeout=5)[0] for _ in jobs)
    assert outcomes == ["charged", "refused"]
    assert BudgetLedger(Path(path)).spent("adult") == 2.0
