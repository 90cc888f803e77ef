"""The audit trail: it verifies when intact, and every kind of tampering is named."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import orjson
import pytest

from privacy.audit import AuditTrail, AuditVerificationError, read_trail, verify_trail
from privacy.crypto import Keyring
from privacy.integrity import serialize
from tests._keys import FAST_SCRYPT, PASSPHRASE


def _write(path: Path, ring: Keyring, runs: int = 2, steps: int = 5) -> None:
    for run in range(runs):
        context = {"run_id": f"run-{run}", "policy": {"id": "p", "sha256": "ab" * 32}}
        with AuditTrail(path, ring, context=context) as trail:
            for i in range(steps):
                trail.append(f"step{i}", counts={"rows_in": 10 * i}, duration_s=0.01)


@pytest.fixture
def trail(tmp_path: Path, keyring: Keyring) -> Path:
    path = tmp_path / "audit.jsonl"
    _write(path, keyring)
    return path


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _rehash(line: bytes, **changes: object) -> bytes:
    record = orjson.loads(line)
    record.pop("hash")
    record.update(changes)
    return serialize(record)[0]


def _expect(path: Path, keyring: Keyring, pattern: str) -> None:
    with pytest.raises(AuditVerificationError, match=pattern) as info:
        verify_trail(path, keyring.signing_public_key)
    assert info.value.exit_code == 3


def test_an_intact_trail_verifies(trail: Path, keyring: Keyring) -> None:
    summary = verify_trail(trail, keyring.signing_public_key)
    assert summary.steps == 10 and summary.checkpoints == 2 and summary.runs == {"run-0", "run-1"}
    assert summary.records == len(_lines(trail))
    assert trail.stat().st_mode & 0o777 == 0o600
    assert [r["step"] for r in read_trail(trail, run_id="run-1")] == [f"step{i}" for i in range(5)]


def test_every_record_carries_the_required_fields(trail: Path) -> None:
    record = orjson.loads(_lines(trail)[0])
    for key in (
        "time",
        "run_id",
        "step",
        "actor",
        "tool",
        "policy",
        "inputs",
        "outputs",
        "counts",
        "params",
        "outcome",
        "error",
        "duration_s",
        "seq",
        "prev",
        "hash",
    ):
        assert key in record, key
    assert set(record["actor"]) == {"user", "host"} and record["time"].endswith("Z")


def test_edited_record(trail: Path, keyring: Keyring) -> None:
    lines = _lines(trail)
    lines[2] = lines[2].replace(b'"rows_in":20', b'"rows_in":21')
    trail.write_bytes(b"".join(lines))
    _expect(trail, keyring, r"line 3: record edited")


def test_edited_record_with_its_hash_recomputed(trail: Path, keyring: Keyring) -> None:
    lines = _lines(trail)
    lines[2] = _rehash(lines[2], counts={"rows_in": 21})
    trail.write_bytes(b"".join(lines))
    _expect(trail, keyring, r"line 4: chain broken")


def test_whole_chain_recomputed_without_the_key(trail: Path, keyring: Keyring) -> None:
    lines = _lines(trail)
    prev = orjson.loads(lines[1])["hash"]
    out = lines[:2]
    for i, line in enumerate(lines[2:], start=3):
        changes: dict[str, object] = {"prev": prev}
        if i == 3:
            changes["counts"] = {"rows_in": 999}
        if orjson.loads(line)["type"] == "checkpoint":
            changes["head"] = prev
        new = _rehash(line, **changes)
        prev = orjson.loads(new)["hash"]
        out.append(new)
    trail.write_bytes(b"".join(out))
    _expect(trail, keyring, r"line 6: bad signature: the checkpoint signature does not verify")


def test_re_signed_with_another_key(tmp_path: Path, trail: Path, keyring: Keyring) -> None:
    forger = Keyring.create(tmp_path / "forger.json", PASSPHRASE, scrypt_n=FAST_SCRYPT)
    forged = tmp_path / "forged.jsonl"
    _write(forged, forger)
    _expect(forged, keyring, r"line 6: bad signature: signed by sig-\w+, not sig-\w+")


def test_deleted_record(trail: Path, keyring: Keyring) -> None:
    lines = _lines(trail)
    del lines[3]
    trail.write_bytes(b"".join(lines))
    _expect(trail, keyring, r"line 4: out of sequence: expected record 4, found record 5")


def test_reordered_records(trail: Path, keyring: Keyring) -> None:
    lines = _lines(trail)
    lines[1], lines[2] = lines[2], lines[1]
    trail.write_bytes(b"".join(lines))
    _expect(trail, keyring, r"line 2: out of sequence: expected record 2, found record 3")


def test_truncated_tail(trail: Path, keyring: Keyring) -> None:
    lines = _lines(trail)
    trail.write_bytes(b"".join(lines[:-3]))  # the last checkpoint and two records
    _expect(trail, keyring, r"line 9: truncated tail: the last 3 records are not covered")


def test_tail_cut_at_a_checkpoint_is_caught_by_the_signed_head(
    trail: Path, keyring: Keyring
) -> None:
    lines = _lines(trail)
    trail.write_bytes(b"".join(lines[:6]))  # exactly the first run, which ends signed
    _expect(trail, keyring, r"line 6: truncated tail: the signed head covers 12 records")


def test_forged_head_file(trail: Path, keyring: Keyring) -> None:
    head = trail.with_name("audit.jsonl.head")
    record = orjson.loads(head.read_bytes())
    record["seq"] = 6
    head.write_bytes(orjson.dumps(record))
    _expect(trail, keyring, r"bad signature on the signed head")


def test_half_written_last_line(trail: Path, keyring: Keyring) -> None:
    trail.write_bytes(trail.read_bytes()[:-10])
    _expect(trail, keyring, r"line 12: incomplete last line")


def _writer(args: tuple[str, str, int]) -> None:
    path, ring_path, worker = args
    ring = Keyring.open(ring_path, PASSPHRASE)
    with AuditTrail(path, ring, context={"run_id": f"w{worker}"}, flush_every=7) as trail:
        for i in range(60):
            trail.append("step", counts={"i": i})


def test_concurrent_runs_never_fork_the_chain(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "shared.jsonl"
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_writer, [(str(path), str(keyring.path), w) for w in range(4)])
    summary = verify_trail(path, keyring.signing_public_key)
    assert summary.steps == 240 and summary.runs == {"w0", "w1", "w2", "w3"}


def test_checkpoint_every_n_records(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "a.jsonl"
    with AuditTrail(path, keyring, checkpoint_every=10, flush_every=100) as trail:
        for _ in range(35):
            trail.append("s")
    summary = verify_trail(path, keyring.signing_public_key)
    assert summary.steps == 35 and summary.checkpoints == 4


def test_every_flush_ends_signed(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "a.jsonl"
    with AuditTrail(path, keyring, flush_every=4) as trail:
        for _ in range(10):
            trail.append("s")
    lines = [orjson.loads(line) for line in _lines(path)]
    assert [r["type"] for r in lines].count("checkpoint") == 3  # flushes of 4, 4 and 2
    assert lines[-1]["type"] == "checkpoint" and lines[4]["type"] == "checkpoint"


def test_a_record_is_the_whole_records_json_once_a_field_replaces_a_base_one_too(
    tmp_path: Path, keyring: Keyring
) -> None:
    """The base (type, actor, tool, context) is serialized once per writer: each line
    must still be one JSON object whose keys appear once, in the record's order."""
    import json

    path = tmp_path / "trail.jsonl"
    context = {"run_id": "r-1", "flow": "f", "policy": {"id": "p", "sha256": "ab" * 32}}
    with AuditTrail(path, keyring, context=context) as trail:
        trail.append("plain", counts={"rows": 3})
        trail.append("override", type="access", flow="other", extra=[1, 2])
    steps = []
    for line in path.read_bytes().splitlines():
        pairs = json.loads(line, object_pairs_hook=lambda kv: kv)  # every key, in order
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), keys
        record = orjson.loads(line)
        if record.get("step") in ("plain", "override"):
            steps.append((keys, record))
    (plain_keys, plain), (override_keys, override) = steps
    assert plain_keys[:7] == ["seq", "prev", "type", "actor", "tool", "run_id", "flow"]
    assert plain["type"] == "step" and plain["counts"] == {"rows": 3}
    assert override_keys[:4] == ["seq", "prev", "type", "actor"]
    assert override["type"] == "access" and override["flow"] == "other"
    assert override["extra"] == [1, 2]
    verify_trail(path, keyring.signing_public_key)
