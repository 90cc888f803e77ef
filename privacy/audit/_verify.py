"""Verifying and reading an audit trail.

The verifier walks the trail once, in bounded memory, and stops at the first line that
is wrong, naming it:

* a line whose bytes do not hash to its ``hash``: the record was edited;
* a ``seq`` that is not the line number: a record was deleted, duplicated or moved;
* a ``prev`` that is not the previous line's hash: the chain was cut or spliced;
* a checkpoint whose signature does not verify under the trusted key, or whose length
  and head do not match the chain: the trail was re-signed or forged;
* records after the last checkpoint: the tail was cut (or a run crashed mid-way);
* fewer records than the signed ``<trail>.head`` says: the tail was cut at a
  checkpoint boundary;
* with a witness (``privacy.integrity._witness``): a trail shorter than, or different
  from, any head the witness recorded for it, a missing ``.head`` for a trail the
  witness knows, and an empty trail the witness knows: cut, rolled back or replaced;
* with a head pinned out of band (``expect_length`` / ``expect_head``): a trail that
  does not hold it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from privacy.errors import AuditVerificationError, WitnessError
from privacy.integrity import (
    GENESIS,
    Witness,
    checkpoint_message,
    line_hash,
    shown,
    signing_key_id,
    subject_of,
)

__all__ = ["AuditVerificationError", "TrailSummary", "read_trail", "verify_trail"]


_LINE_TAIL = len(b',"hash":"') + 64 + len(b'"}\n')


@dataclass
class TrailSummary:
    records: int = 0
    steps: int = 0
    checkpoints: int = 0
    failed_steps: int = 0
    runs: set[str] = field(default_factory=set)
    head: str = GENESIS
    signer: str = ""
    witness: str | None = None  # the witness consulted, if any
    witnessed: int = 0  # the longest history the witness recorded of this trail
    pinned: int | None = None  # the record pinned with expect_length / expect_head
    supersedes: dict[str, Any] | None = None  # the first record's note of a trail it replaced

    def superseded(self) -> str:
        """The note, as a sentence ('' when the trail superseded none)."""
        note = self.supersedes
        if not note:
            return ""
        return (
            f"it supersedes a trail that was gone from {note.get('path')} (the witness "
            f"recorded {note.get('records')} records, head {str(note.get('head'))[:16]}…, "
            f"the last at {note.get('witnessed_at')})"
        )


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        yield from enumerate(handle, start=1)


def _origin(path: Path) -> str | None:
    """The hash of the trail's first line (its identity in the witness); None if empty."""
    with path.open("rb") as handle:
        first = handle.readline()
    return line_hash(first) if first.endswith(b"\n") else None


def verify_trail(
    path: str | Path,
    public_key: bytes,
    *,
    witness: str | Path | Witness | None = None,
    expect_length: int | None = None,
    expect_head: str | None = None,
    collect: list[dict[str, Any]] | None = None,
) -> TrailSummary:
    """Check every hash, link and signature; raise AuditVerificationError at the first
    bad line. ``public_key`` is the trusted Ed25519 key of the signer.

    ``collect``: a list that receives every step record as the walk verifies it: the
    very records checked, for a reader that must not read the file a second time (it
    could be replaced in between). Read it only when the call returns.

    ``witness`` (a witness file, usually the one beside the signer's keyring) adds its
    recorded heads of this trail as pins the trail must hold. ``expect_length`` and
    ``expect_head`` pin a head taken out of band: record ``expect_length`` must exist
    and (with ``expect_head``, a full hash or a prefix of at least 16 hex digits) hash
    to it; ``expect_head`` alone must be the hash of some record."""
    path = Path(path)
    expect_head = _check_request(path, expect_head)
    trusted = Ed25519PublicKey.from_public_bytes(public_key)
    trusted_id = signing_key_id(public_key)
    summary = TrailSummary(signer=trusted_id)
    pins, witnessed_subject = _witness_pins(path, public_key, witness, summary)
    if expect_length is not None:
        summary.pinned = expect_length
        if expect_head is not None:
            pins.setdefault(expect_length, []).append((expect_head, "--expect-head"))
    try:  # checked now so the walk can compare; reported after the walk's own findings
        head, head_error = _load_head(path, trusted, trusted_id), None
    except AuditVerificationError as exc:
        head, head_error = None, exc
    found_head = _walk(
        path, trusted, trusted_id, summary, pins, head, expect_head, expect_length, collect
    )
    if head_error is not None:
        raise head_error
    _check_ends(path, summary, head, witnessed_subject, expect_length)
    if not found_head:
        raise AuditVerificationError(f"{path}: --expect-head: no record hashes to {expect_head}")
    return summary


def _check_request(path: Path, expect_head: str | None) -> str | None:
    """Refuse a trail that is a link or is missing, and an ``expect_head`` too short to
    pin anything; the head in lower case."""
    if path.is_symlink():  # the trail it points to is another trail, witnessed elsewhere
        raise AuditVerificationError(f"{path}: is a symbolic link, not a trail file")
    if not path.is_file():
        raise AuditVerificationError(f"{path}: audit trail not found")
    if expect_head is None:
        return None
    expect_head = expect_head.lower()
    if len(expect_head) < 16 or any(c not in "0123456789abcdef" for c in expect_head):
        raise AuditVerificationError(
            f"--expect-head {expect_head!r}: give the head's hash (at least 16 hex digits)"
        )
    return expect_head


Pins = dict[int, list[tuple[str, str]]]  # record -> [(hash, who recorded it)]


def _witness_pins(
    path: Path, public_key: bytes, witness: str | Path | Witness | None, summary: TrailSummary
) -> tuple[Pins, bool]:
    """Every head the witness recorded at this path or of this trail, as pins the walk
    must hold (a trail put in another's place fails the other's heads: none overwrites
    another); and whether the witness knows this trail."""
    pins: Pins = {}
    witnessed_subject = False
    if witness is None:
        return pins, witnessed_subject
    wit = witness if isinstance(witness, Witness) else Witness(witness)
    summary.witness = str(wit.path)
    try:
        sightings = wit.sightings(public_key, path, _origin(path))
    except WitnessError as exc:
        raise AuditVerificationError(str(exc)) from None
    here = subject_of(path)
    for seen in sightings:
        pins.setdefault(seen.length, []).append((seen.head, f"the witness recorded at {seen.time}"))
        summary.witnessed = max(summary.witnessed, seen.length)
        witnessed_subject = witnessed_subject or seen.subject == here or bool(seen.length)
    return pins, witnessed_subject


# Long on purpose: the one loop every verification runs over every line, kept whole so
# its locals stay fast (audit_throughput benchmark).
def _walk(
    path: Path,
    trusted: Ed25519PublicKey,
    trusted_id: str,
    summary: TrailSummary,
    pins: Pins,
    head: dict[str, Any] | None,
    expect_head: str | None,
    expect_length: int | None,
    collect: list[dict[str, Any]] | None,
) -> bool:
    """Read the trail once, checking each line's sequence, hash, link, pins and (for a
    checkpoint) signature, and counting into ``summary``; a tail no checkpoint signs is
    refused. Whether a record hashes to ``expect_head`` (True when nothing is asked)."""

    def fail(line: int, what: str) -> AuditVerificationError:
        return AuditVerificationError(f"{path}: line {line}: {what}")

    prev = GENESIS
    last_checkpoint_line = 0
    head_length = int(head["length"]) if head else -1
    steps = failed = records = 0
    runs = summary.runs
    sha256 = hashlib.sha256
    found_head = expect_head is None or expect_length is not None
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw[-1:] != b"\n":
                raise fail(number, "incomplete last line (truncated while writing?)")
            try:
                record = orjson.loads(raw)
                seq = record["seq"]
                stated = record["hash"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise fail(number, "not an audit record (malformed line)") from None
            digest = sha256(memoryview(raw)[: len(raw) - _LINE_TAIL])
            digest.update(b"}")
            computed = digest.hexdigest()
            if seq != number:
                raise fail(
                    number,
                    f"out of sequence: expected record {number}, found record {seq} "
                    f"(records deleted, duplicated or reordered)",
                )
            if stated != computed:
                raise fail(number, "record edited: its content does not match its hash")
            if record.get("prev") != prev:
                raise fail(number, "chain broken: prev is not the hash of the line before")
            if number == head_length + 1 and prev != head["head"]:  # type: ignore[index]
                raise fail(number, "the signed head does not match the chain here")
            for pinned, why in pins.get(number, ()):
                if not computed.startswith(pinned):
                    raise fail(
                        number,
                        f"not the history {why}: record {number} hashes to "
                        f"{computed[:16]}…, not {pinned[:16]}… (replaced or rolled back)",
                    )
            if not found_head and computed.startswith(expect_head):  # type: ignore[arg-type]
                found_head = True
            if record.get("type") == "checkpoint":
                _check_checkpoint(record, number, prev, trusted, trusted_id, fail)
                summary.checkpoints += 1
                last_checkpoint_line = number
            else:
                steps += 1
                if number == 1 and isinstance(record.get("supersedes"), dict):
                    summary.supersedes = record["supersedes"]
                if collect is not None and record.get("type") == "step":
                    collect.append(record)
                if record.get("outcome") != "ok":
                    failed += 1
                run_id = record.get("run_id")
                if run_id:
                    runs.add(run_id)
            prev = computed
            records = number
    summary.steps, summary.failed_steps, summary.records = steps, failed, records
    summary.head = prev
    if summary.records and last_checkpoint_line != summary.records:
        unsigned = summary.records - last_checkpoint_line
        raise fail(
            summary.records,
            f"truncated tail: the last {unsigned} records are not covered by a signed "
            f"checkpoint (after line {last_checkpoint_line})",
        )
    return found_head


def _check_ends(
    path: Path,
    summary: TrailSummary,
    head: dict[str, Any] | None,
    witnessed_subject: bool,
    expect_length: int | None,
) -> None:
    """The trail must be at least as long as its signed head, the witness and
    ``expect_length`` say it was, and keep the head the witness knows it has."""
    head_length = int(head["length"]) if head else -1
    if head is not None and head_length + 1 > summary.records:
        raise AuditVerificationError(
            f"{path}: line {summary.records}: truncated tail: the signed head covers "
            f"{head_length + 1} records, the trail holds {summary.records}"
        )
    if summary.witnessed > summary.records:
        raise AuditVerificationError(
            f"{path}: the witness {summary.witness} recorded {summary.witnessed} records of "
            f"this trail; it holds {summary.records} (cut, emptied or rolled back)"
        )
    if witnessed_subject and summary.witnessed and head is None:
        head_path = path.with_name(path.name + ".head")
        raise AuditVerificationError(
            f"{head_path}: missing, but the witness {summary.witness} recorded this trail "
            f"({summary.witnessed} records): the signed head was deleted"
        )
    if expect_length is not None and expect_length > summary.records:
        raise AuditVerificationError(
            f"{path}: --expect-length {expect_length}: the trail holds {summary.records} "
            "records (cut or rolled back)"
        )


def _check_checkpoint(
    record: dict[str, Any],
    number: int,
    prev: str,
    trusted: Ed25519PublicKey,
    trusted_id: str,
    fail: Any,
) -> None:
    if record.get("length") != number - 1 or record.get("head") != prev:
        raise fail(number, "checkpoint does not match the chain before it")
    if record.get("signer") != trusted_id:
        raise fail(
            number, f"bad signature: signed by {shown(record.get('signer'))}, not {trusted_id}"
        )
    try:
        message = checkpoint_message(number - 1, prev, trusted_id, str(record["time"]))
        trusted.verify(bytes.fromhex(str(record["signature"])), message)
    except (InvalidSignature, ValueError, KeyError):
        raise fail(number, "bad signature: the checkpoint signature does not verify") from None


def _load_head(path: Path, trusted: Ed25519PublicKey, trusted_id: str) -> dict[str, Any] | None:
    """The signed ``<trail>.head``, verified; None where there is none."""
    head_path = path.with_name(path.name + ".head")
    if not head_path.exists():
        return None
    try:
        head = orjson.loads(head_path.read_bytes())
        length = int(head["length"])
        message = checkpoint_message(
            length, str(head["head"]), str(head["signer"]), str(head["time"])
        )
        if head["signer"] != trusted_id or int(head["seq"]) != length + 1:
            raise InvalidSignature
        trusted.verify(bytes.fromhex(str(head["signature"])), message)
    except OSError as exc:
        raise AuditVerificationError(f"{head_path}: unreadable ({exc.strerror})") from None
    except (InvalidSignature, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise AuditVerificationError(f"{head_path}: bad signature on the signed head") from None
    return dict(head)


def read_trail(path: str | Path, *, run_id: str | None = None) -> list[dict[str, Any]]:
    """The trail's step records (not checkpoints), optionally of one run; unverified."""
    out = []
    for _, raw in _lines(Path(path)):
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if record.get("type") == "step" and (run_id is None or record.get("run_id") == run_id):
            out.append(record)
    return out
