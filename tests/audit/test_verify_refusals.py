"""Refusals of ``verify_trail`` that no other test reaches first: each trail here is
wrong in one way only that one check sees, and the test names that check's message."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from privacy.audit import AuditTrail, AuditVerificationError, verify_trail
from privacy.crypto import Keyring
from privacy.integrity import serialize


def _run(path: Path, ring: Keyring, run: str, steps: int = 3) -> None:
    with AuditTrail(path, ring, context={"run_id": run}) as trail:
        for i in range(steps):
            trail.append(f"step{i}", counts={"rows_in": i})


@pytest.fixture
def trail(tmp_path: Path, keyring: Keyring) -> Path:
    """Two runs of three steps, each ending in a checkpoint: 8 lines, head at line 8."""
    path = tmp_path / "a" / "audit.jsonl"
    _run(path, keyring, "run-0")
    _run(path, keyring, "run-1")
    return path


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _rehash(line: bytes, **changes: object) -> bytes:
    record = orjson.loads(line)
    record.pop("hash")
    record.update(changes)
    return serialize(record)[0]


def _expect(path: Path, ring: Keyring, pattern: str) -> None:
    with pytest.raises(AuditVerificationError, match=pattern) as info:
        verify_trail(path, ring.signing_public_key)
    assert info.value.exit_code == 3


def test_the_fixture_trail_verifies(trail: Path, keyring: Keyring) -> None:
    summary = verify_trail(trail, keyring.signing_public_key)
    assert (summary.records, summary.checkpoints, summary.steps) == (8, 2, 6)


@pytest.mark.parametrize(
    "line",
    [b"not json\n", b"[1, 2]\n", b'{"seq": 3, "prev": "x"}\n', b'"a string"\n'],
    ids=["not-json", "a-list", "no-hash", "a-string"],
)
def test_a_line_that_is_not_a_record_is_named_as_such(
    trail: Path, keyring: Keyring, line: bytes
) -> None:
    """In the middle of the trail (not first, not last): without this check the walk
    would go on with the previous line's fields and report something else."""
    lines = _lines(trail)
    lines[2] = line
    trail.write_bytes(b"".join(lines))
    _expect(trail, keyring, r"audit\.jsonl: line 3: not an audit record \(malformed line\)$")


def test_a_duplicated_record_is_out_of_sequence(trail: Path, keyring: Keyring) -> None:
    lines = _lines(trail)
    lines.insert(2, lines[1])
    trail.write_bytes(b"".join(lines))
    _expect(
        trail,
        keyring,
        r"line 3: out of sequence: expected record 3, found record 2 "
        r"\(records deleted, duplicated or reordered\)$",
    )


def test_another_trail_of_the_same_signer_beside_this_ones_head(
    tmp_path: Path, trail: Path, keyring: Keyring
) -> None:
    """A second genuine trail of the same key and length, put beside the first one's
    signed head: every line and checkpoint of it verifies; only the head, which signs
    the first trail's record 7, tells them apart."""
    other = tmp_path / "b" / "audit.jsonl"
    _run(other, keyring, "run-x")
    _run(other, keyring, "run-y")
    assert verify_trail(other, keyring.signing_public_key).records == 8
    other.with_name("audit.jsonl.head").write_bytes(
        trail.with_name("audit.jsonl.head").read_bytes()
    )
    _expect(other, keyring, r"line 8: the signed head does not match the chain here$")


@pytest.mark.parametrize("change", [{"length": 3}, {"head": "ab" * 32}], ids=["length", "head"])
def test_a_checkpoint_that_claims_another_chain(
    trail: Path, keyring: Keyring, change: dict[str, object]
) -> None:
    """The last checkpoint re-hashed with a wrong ``length`` or ``head``: its signature
    is over the real chain (which the verifier recomputes), so only the comparison of
    its fields with the chain catches it."""
    lines = _lines(trail)
    assert orjson.loads(lines[-1])["type"] == "checkpoint"
    lines[-1] = _rehash(lines[-1], **change)
    trail.write_bytes(b"".join(lines))
    _expect(trail, keyring, r"line 8: checkpoint does not match the chain before it$")
