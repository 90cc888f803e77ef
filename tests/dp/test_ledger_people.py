"""The budget follows the people, not the file (issue 30, item 4).

The insider's attack: the same people, their rows shuffled and written as another
format (or a part of them), trained on again with the same ledger. Keyed on a byte
digest, each copy was a fresh data set with a fresh budget. Keyed on the people (the
policy's ``privacy.person_key``) and on the records, every copy is charged to the data
set its people were charged to, and refused past the budget. The ledger holds keyed
64-bit hashes only: no raw value, and none that can be recomputed without the key."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from privacy.crypto import Keyring
from privacy.dp import BudgetLedger, DataIdentity, train_model
from privacy.errors import BudgetExhausted
from privacy.policy import Policy, policy_from_dict
from privacy.synth import synthesize
from tests._keys import FAST_SCRYPT, PASSPHRASE

DEMO = Path(__file__).resolve().parents[2] / "policies" / "demo.yaml"


@pytest.fixture(scope="module")
def people() -> pl.DataFrame:
    return synthesize(1500, seed=21)


def _policy(person_key: str | None = "person_id", **training: Any) -> Policy:
    data = yaml.safe_load(DEMO.read_text())
    data["training"] = {**data["training"], "epochs": 1, "batch_size": 512, **training}
    data["training"].update(epsilon=1.0, budget=1.5)
    if person_key:
        data["privacy"]["person_key"] = person_key
    return policy_from_dict(data)


def _as_csv(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame written as CSV and read back: other bytes, other dtypes (dates as
    text, integers as Int64)."""
    buffer = io.BytesIO()
    frame.write_csv(buffer)
    return pl.read_csv(buffer.getvalue(), try_parse_dates=True)


def _copies(people: pl.DataFrame) -> dict[str, pl.DataFrame]:
    shuffled = people.sample(fraction=1.0, shuffle=True, seed=3)
    return {
        "shuffled": shuffled,
        "shuffled, as CSV": _as_csv(shuffled),
        "a fifth of them": people.tail(people.height // 5),
    }


@pytest.mark.slow
@pytest.mark.parametrize("person_key", ["person_id", None])
def test_attack_the_same_people_in_another_file_get_no_fresh_budget(
    tmp_path: Path, ring: Keyring, people: pl.DataFrame, person_key: str | None
) -> None:
    """By people where the policy names them, else by records: each copy has a digest
    of its own and is still refused, leaving the ledger as it was; other people are
    not caught by it."""
    policy = _policy(person_key)
    path = tmp_path / "ledger.jsonl"
    ledger = BudgetLedger(path, ring)
    train_model(people, policy, run_id="first", ledger=ledger)
    before = path.read_bytes()
    for name, copy in _copies(people).items():
        if person_key is None and name == "a fifth of them":
            continue  # records: most of the smaller set must be known (see below)
        assert DataIdentity.of_frame(copy).digests() != DataIdentity.of_frame(people).digests()
        with pytest.raises(BudgetExhausted, match=r"spent 1\.0 of 1\.5, requested 1\.0"):
            train_model(copy, policy, run_id=f"again: {name}", ledger=ledger)
        assert path.read_bytes() == before, name
    others = synthesize(1500, seed=22).with_columns(  # other people: ids of their own
        pl.col("person_id").str.replace("^P", "Q")
    )
    train_model(others, policy, run_id="others", ledger=ledger)  # a fresh budget: not them
    assert len(ledger.datasets()) == 2


def test_a_fifth_of_the_records_is_known_by_its_records(
    tmp_path: Path, ring: Keyring, people: pl.DataFrame
) -> None:
    """Without a person key, a subset is matched by its records: every row of the
    smaller set is in the larger one's sketch range."""
    policy = _policy(None)
    ledger = BudgetLedger(tmp_path / "ledger.jsonl", ring)
    whole = ledger.identify(DataIdentity.of_frame(people), people, policy)
    part_frame = people.tail(people.height // 5).sample(fraction=1.0, shuffle=True, seed=1)
    part = ledger.identify(DataIdentity.of_frame(part_frame), part_frame, policy)
    assert whole.records is not None and part.records is not None
    assert part.records.matches(whole.records) and whole.records.matches(part.records)
    strangers = synthesize(300, seed=99)
    other = ledger.identify(DataIdentity.of_frame(strangers), strangers, policy)
    assert other.records is not None and not other.records.matches(whole.records)


def test_the_ledger_holds_no_raw_value_and_no_unkeyed_hash(
    tmp_path: Path, ring: Keyring, people: pl.DataFrame
) -> None:
    """What an identity stores: keyed hashes, under a key only the ledger's keyring
    derives; a second keyring knows the same people by other hashes."""
    import hashlib

    policy = _policy()
    path = tmp_path / "ledger.jsonl"
    ledger = BudgetLedger(path, ring)
    identity = ledger.identify(DataIdentity.of_frame(people), people, policy)
    ledger.charge(identity, epsilon=1.0, delta=1e-5, budget=1.5, run_id="r")
    data = path.read_bytes()
    for value in people.get_column("person_id").head(50).to_list():
        assert str(value).encode() not in data
        plain = hashlib.blake2b(str(value).encode(), digest_size=8).digest()
        assert plain.hex().encode() not in data
    other_ring = Keyring.create(tmp_path / "k2" / "ring.json", PASSPHRASE, scrypt_n=FAST_SCRYPT)
    stranger = BudgetLedger(tmp_path / "other.jsonl", other_ring)
    again = stranger.identify(DataIdentity.of_frame(people), people, policy)
    assert identity.people is not None and again.people is not None
    assert not identity.people.matches(again.people)  # another key: other hashes
