"""The privacy budget ledger: charges add up, an overspend is refused without changing
anything, concurrent jobs cannot together pass the budget, and the ledger is a signed,
witnessed trail keyed on the data."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from privacy.audit import read_trail, verify_trail
from privacy.crypto import Keyring
from privacy.dp import BudgetLedger, DataIdentity
from privacy.errors import BudgetExhausted, PolicyError
from privacy.integrity import witness_path
from tests._keys import PASSPHRASE

ADULT = DataIdentity("a" * 64, "b" * 64, "key-1", label="adult")
PEOPLE = DataIdentity("c" * 64, label="people")


def test_charges_add_up_and_an_overspend_is_refused_leaving_the_ledger_as_it_was(
    tmp_path: Path, ring: Keyring
) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = BudgetLedger(path, ring)
    ledger.charge(ADULT, epsilon=1.5, delta=1e-5, budget=3.0, run_id="a")
    ledger.charge(ADULT, epsilon=1.0, delta=1e-5, budget=3.0, run_id="b")
    assert ledger.spent(ADULT) == ledger.spent("adult") == ledger.spent(ADULT.dataset_id) == 2.5
    before = path.read_bytes()
    with pytest.raises(BudgetExhausted) as refused:
        ledger.charge(ADULT, epsilon=1.0, delta=1e-5, budget=3.0, run_id="c")
    assert str(refused.value) == (
        f"privacy budget exhausted for data set {ADULT.dataset_id} (adult): spent 2.5 of 3.0, "
        "requested 1.0"
    )
    assert path.read_bytes() == before
    assert [r["run_id"] for r in ledger.entry("adult")["runs"]] == ["a", "b"]  # type: ignore[index]
    assert path.stat().st_mode & 0o777 == 0o600
    summary = verify_trail(path, ring.signing_public_key, witness=witness_path(ring.path))
    assert summary.witnessed == summary.records  # every head is in the witness
    steps = [r["step"] for r in read_trail(path)]
    assert steps == ["dataset", "charge", "charge"]


def test_a_first_charge_over_the_budget_is_refused_and_records_nothing(
    tmp_path: Path, ring: Keyring
) -> None:
    path = tmp_path / "ledger.jsonl"
    with pytest.raises(BudgetExhausted, match=r"spent 0\.0 of 1\.0, requested 2\.0"):
        BudgetLedger(path, ring).charge(PEOPLE, epsilon=2.0, delta=1e-5, budget=1.0, run_id="a")
    assert not path.exists() or read_trail(path) == []


def test_data_sets_have_separate_budgets(tmp_path: Path, ring: Keyring) -> None:
    ledger = BudgetLedger(tmp_path / "ledger.jsonl", ring)
    ledger.charge(ADULT, epsilon=3.0, delta=1e-5, budget=3.0, run_id="a")
    ledger.charge(PEOPLE, epsilon=3.0, delta=1e-5, budget=3.0, run_id="b")
    assert ledger.spent(ADULT) == ledger.spent(PEOPLE) == 3.0
    assert {d["label"] for d in ledger.datasets()} == {"adult", "people"}


def test_data_matching_a_known_data_set_by_either_digest_is_that_data_set(
    tmp_path: Path, ring: Keyring
) -> None:
    """The same raw input sanitized anew, or the same sanitized data without its
    manifest: the same people, the same budget."""
    ledger = BudgetLedger(tmp_path / "ledger.jsonl", ring)
    ledger.charge(ADULT, epsilon=1.0, delta=1e-5, budget=3.0, run_id="a")
    resanitized = DataIdentity("d" * 64, ADULT.input_hmac_sha256, "key-1", label="other")
    bare = DataIdentity(ADULT.sanitized_sha256, label="bare")
    ledger.charge(resanitized, epsilon=1.0, delta=1e-5, budget=3.0, run_id="b")
    ledger.charge(bare, epsilon=1.0, delta=1e-5, budget=3.0, run_id="c")
    assert len(ledger.datasets()) == 1 and ledger.spent(ADULT) == 3.0
    # the re-sanitized output's own digest is now known too
    with pytest.raises(BudgetExhausted):
        ledger.charge(DataIdentity("d" * 64), epsilon=0.5, delta=1e-5, budget=3.0, run_id="d")


def test_a_budget_other_than_the_first_charges_is_refused_naming_the_command(
    tmp_path: Path, ring: Keyring
) -> None:
    ledger = BudgetLedger(tmp_path / "ledger.jsonl", ring)
    ledger.charge(ADULT, epsilon=1.0, delta=1e-5, budget=3.0, run_id="a")
    with pytest.raises(PolicyError) as refused:
        ledger.charge(ADULT, epsilon=1.0, delta=1e-5, budget=2.0, run_id="b")
    message = str(refused.value)
    assert "fixed the budget of data set" in message and "\n" not in message
    assert f"`privpipe budget set {ADULT.dataset_id} 2.0 --reason TEXT`" in message


def test_setting_a_budget_is_recorded_with_its_reason_and_needs_the_custodian(
    tmp_path: Path, ring: Keyring
) -> None:
    from privacy.errors import ScopeError

    path = tmp_path / "ledger.jsonl"
    ledger = BudgetLedger(path, ring)
    ledger.charge(ADULT, epsilon=3.0, delta=1e-5, budget=3.0, run_id="a")
    changed = ledger.set_budget("adult", 5.0, reason="board approval 2026-12")
    assert changed["previous"] == 3.0 and changed["budget"] == 5.0
    ledger.charge(ADULT, epsilon=2.0, delta=1e-5, budget=5.0, run_id="b")
    assert ledger.spent(ADULT) == 5.0
    record = [r for r in read_trail(path) if r["step"] == "budget-set"][-1]
    assert record["params"]["reason"] == "board approval 2026-12" and record["actor"]["user"]
    analyst = ring.export(tmp_path / "analyst.json", PASSPHRASE, ["published"])
    before = path.read_bytes()
    with pytest.raises(ScopeError, match="'vault' scope"):
        BudgetLedger(path, analyst).set_budget("adult", 50.0, reason="mine now")
    no_pseudonym = ring.export(tmp_path / "vault-only.json", PASSPHRASE, ["vault", "audit"])
    with pytest.raises(ScopeError, match="'pseudonym' scope"):
        BudgetLedger(path, no_pseudonym).set_budget("adult", 50.0, reason="mine now")
    assert path.read_bytes() == before
    with pytest.raises(PolicyError, match="no data set 'nope'"):
        ledger.set_budget("nope", 1.0, reason="x")
    with pytest.raises(PolicyError, match="--reason"):
        ledger.set_budget("adult", 1.0, reason=" ")


def test_an_old_json_ledger_is_refused_saying_how_to_carry_it_over(
    tmp_path: Path, ring: Keyring
) -> None:
    old = tmp_path / "ledger.json"
    old.write_text('{"version": 1, "datasets": {"adult": {"budget": 3.0}}}\n')
    for path in (old, tmp_path / "ledger.jsonl"):  # the old file, or beside the new default
        with pytest.raises(PolicyError, match=r"version-1 budget ledger .*`privpipe budget set"):
            BudgetLedger(path, ring).charge(ADULT, epsilon=1.0, delta=1e-5, budget=3, run_id="a")
    old.rename(tmp_path / "ledger.json.v1")
    BudgetLedger(old, ring).charge(ADULT, epsilon=1.0, delta=1e-5, budget=3.0, run_id="a")


def _charge(path: str, ring: str, start, run: str, results) -> None:  # type: ignore[no-untyped-def]
    keys = Keyring.open(Path(ring), PASSPHRASE)
    start.wait()
    try:
        BudgetLedger(Path(path), keys).charge(
            ADULT, epsilon=2.0, delta=1e-5, budget=3.0, run_id=run
        )
        results.put(("charged", run))
    except BudgetExhausted:
        results.put(("refused", run))


def test_two_concurrent_jobs_cannot_together_exceed_the_budget(
    tmp_path: Path, ring: Keyring
) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = context.Queue()
    path = str(tmp_path / "ledger.jsonl")
    jobs = [
        context.Process(target=_charge, args=(path, str(ring.path), start, r, results))
        for r in "xy"
    ]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(60)
    outcomes = sorted(results.get(timeout=5)[0] for _ in jobs)
    assert outcomes == ["charged", "refused"]
    assert BudgetLedger(Path(path), ring).spent(ADULT) == 2.0


def test_reading_needs_only_the_public_key_and_changing_needs_the_keyring(
    tmp_path: Path, ring: Keyring
) -> None:
    from privacy.errors import KeyAccessError

    path = tmp_path / "ledger.jsonl"
    BudgetLedger(path, ring).charge(ADULT, epsilon=1.0, delta=1e-5, budget=3.0, run_id="a")
    reader = BudgetLedger(
        path,
        public_key=ring.signing_public_key,
        witness=ring.path.with_name(ring.path.name + ".witness"),
    )
    assert reader.spent(ADULT) == 1.0
    with pytest.raises(KeyAccessError, match="changing the ledger needs the keyring"):
        reader.charge(ADULT, epsilon=1.0, delta=1e-5, budget=3.0, run_id="b")
    with pytest.raises(KeyAccessError, match="needs a keyring or a public key"):
        BudgetLedger(path)


def test_what_a_charge_or_a_budget_must_be(tmp_path: Path, ring: Keyring) -> None:
    ledger = BudgetLedger(tmp_path / "ledger.jsonl", ring)
    with pytest.raises(PolicyError, match="not positive"):
        ledger.charge(ADULT, epsilon=0.0, delta=1e-5, budget=3.0, run_id="a")
    ledger.charge(ADULT, epsilon=1.0, delta=1e-5, budget=3.0, run_id="a")
    with pytest.raises(PolicyError, match=r"EPS: -1\.0 is not a positive number"):
        ledger.set_budget("adult", -1.0, reason="x")
    twin = DataIdentity("e" * 64, label="adult")  # another data set under the same label
    ledger.charge(twin, epsilon=1.0, delta=1e-5, budget=3.0, run_id="b")
    with pytest.raises(PolicyError, match="label 'adult' names 2 data sets"):
        ledger.spent("adult")
    assert ledger.spent(twin.dataset_id) == 1.0


def test_a_signed_record_that_is_not_a_ledger_record_is_refused(
    tmp_path: Path, ring: Keyring
) -> None:
    from privacy.audit import AuditTrail
    from privacy.dp import LedgerIntegrityError

    path = tmp_path / "ledger.jsonl"
    BudgetLedger(path, ring).charge(ADULT, epsilon=1.0, delta=1e-5, budget=3.0, run_id="a")
    with AuditTrail(path, ring) as trail:
        trail.append("charge", params={"epsilon": 1.0})  # no data sets, no δ
    with pytest.raises(LedgerIntegrityError, match="line 4: not a ledger record"):
        BudgetLedger(path, ring).spent(ADULT)
