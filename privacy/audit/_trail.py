"""Appending to an audit trail: hash-chained JSON lines with signed checkpoints.

One trail is one file of JSON lines. Each line is ``{"seq": N, "prev": "…", …fields…,
"hash": "…"}``: ``seq`` is its line number, ``prev`` the previous line's hash, and
``hash`` the SHA-256 of the line's own bytes up to the ``,"hash"`` member (with ``}``
closing them). The hash covers exact bytes, so no canonical re-serialization is needed
to check it: a record is serialized once, when appended, and linked at flush.

A ``checkpoint`` record signs (Ed25519) the chain length and head hash; one closes
every flush, and one is cut every ``checkpoint_every`` records. So a trail as privpipe
leaves it always ends in a signed checkpoint. The latest checkpoint is also written to
``<trail>.head`` and recorded in the keyring's witness (``privacy.integrity._witness``),
outside the trail's folder, so that a cut at a checkpoint boundary, a rollback to an
older copy and an emptied or replaced trail are all caught.

Appends verify before they sign. Record hashes are unkeyed: anyone who can write the
file can append a well-chained record. So before linking, the writer checks that the
trail's last line is a checkpoint whose hash, link and signature verify under the
writer's own key, and that the trail still holds the history the witness recorded for
it. A trail that ends otherwise (records no signature covers, a torn last line, a
checkpoint by another key) is refused, naming the trail and the line, and nothing is
appended: signing on top of it would put the pipeline's signature under whatever was
added. ``privpipe audit repair`` cuts such a tail back to the last valid checkpoint,
keeps the cut bytes beside the trail and records the repair.

Concurrency: records are buffered in memory and linked only at flush time, under an
exclusive ``flock`` on the trail, after reading and checking the current head from the
file's tail. Concurrent runs therefore interleave whole flushes and never fork the
chain. One fsync per flush (batched), not per record.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from privacy import __version__
from privacy._atomic import atomic_path, private_dir, refuse_link
from privacy.actor import actor
from privacy.errors import AppendRefused, ScopeError
from privacy.integrity import (
    GENESIS,
    Sighting,
    Signer,
    Witness,
    checkpoint_message,
    line_hash,
    link_into,
    serialize,
    shown,
    utc_now,
)

__all__ = [
    "GENESIS",
    "AppendRefused",
    "AuditTrail",
    "actor",
    "checkpoint_message",
    "line_hash",
    "serialize",
]

_BLOCK = 1 << 16


def _line_ending_at(handle: Any, end: int) -> bytes:
    """The line of an open file whose newline is the byte before ``end`` (with it)."""
    start = max(0, end - _BLOCK)
    while True:
        handle.seek(start)
        chunk: bytes = handle.read(end - start)
        cut = chunk.rfind(b"\n", 0, len(chunk) - 1)
        if cut >= 0 or start == 0:
            return chunk[cut + 1 :]
        start = max(0, start - _BLOCK)


def _first_line(handle: Any) -> bytes:
    handle.seek(0)
    return bytes(handle.readline())


class AuditTrail:
    """Appends records to one trail file. Use as a context manager, or call ``close``.

    ``context`` holds fields shared by every record of a run (run id, policy); each
    ``append`` adds the step's own. Nothing here inspects values: callers pass counts,
    names, hashes and parameters, never data.
    """

    def __init__(
        self,
        path: str | Path,
        signer: Signer,
        *,
        context: Mapping[str, Any] | None = None,
        checkpoint_every: int = 10_000,
        flush_every: int = 10_000,
        witness: Witness | bool | None = True,
        check: bool = True,
    ) -> None:
        """``witness``: True (the default) records every signed head in the witness
        beside the signer's keyring; a :class:`Witness` to use that one; None or False
        for none (the witness's own tests). ``check`` (the default) refuses a trail
        this writer may not extend now, before the caller does any work (see
        :meth:`check`); ``repair`` is what a trail refused so needs."""
        self.path = Path(path)
        self.signer = signer
        self.witness: Witness | None = (
            Witness.for_signer(signer) if witness is True else witness or None
        )
        self.context = dict(context or {})
        self.checkpoint_every = checkpoint_every
        self.flush_every = flush_every
        self._pending: list[bytes] = []
        self._since_checkpoint = 0
        self._base: dict[str, Any] = {
            "type": "step",
            "actor": actor(),
            "tool": f"privpipe {__version__}",
            **self.context,
        }
        # serialized once: each record is this prefix and its own fields' JSON, the same
        # bytes as serializing the whole record (orjson keeps the keys' order)
        self._base_json = orjson.dumps(self._base)[:-1] + b"," if self._base else b"{"
        self.last_checkpoint: dict[str, Any] | None = None
        self._check_signer()
        if check:
            self.check()  # refused before the caller does any work, not at its first flush

    def _check_signer(self) -> None:
        """Only the pipeline's audit key (the ``audit`` scope) may extend a trail that
        another key signed: a keyring without that scope signs its own trails only."""
        scopes = self.signer.signing_scopes
        if scopes is None or "audit" in scopes:
            return
        head_path = self.path.with_name(self.path.name + ".head")
        try:
            signer = orjson.loads(head_path.read_bytes()).get("signer")
        except (OSError, orjson.JSONDecodeError, AttributeError):
            return
        if signer and signer != self.signer.signing_key_id:
            raise ScopeError(
                f"{self.path}: signed by {shown(signer)}; signing it needs the 'audit' scope "
                "(the pipeline's audit signing key), which this keyring does not hold",
                scope="audit",
                keyring=str(self.signer.signing_home or ""),
            )

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(
        self,
        step: str,
        *,
        outcome: str = "ok",
        error: str | None = None,
        duration_s: float | None = None,
        inputs: Mapping[str, str] | None = None,
        outputs: Mapping[str, str] | None = None,
        counts: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        """Serialize one step's record now; it is linked and written at the next flush."""
        record = {
            "time": utc_now(),
            "step": step,
            "outcome": outcome,
            "error": error,
            "duration_s": duration_s,
            "inputs": inputs if inputs is not None else {},
            "outputs": outputs if outputs is not None else {},
            "counts": counts if counts is not None else {},
            "params": params if params is not None else {},
        }
        if fields:
            record.update(fields)
            if not fields.keys().isdisjoint(self._base):  # a field that replaces a base one
                whole = {**self._base}
                whole.update(record)
                self._pending.append(orjson.dumps(whole))
                return self._flush_if_due()
        # serialized now: later edits of what the caller passed can't leak in
        self._pending.append(self._base_json + orjson.dumps(record)[1:])
        self._flush_if_due()

    def _flush_if_due(self) -> None:
        if len(self._pending) >= self.flush_every:
            self.flush()

    def check(self) -> None:
        """Check, without writing, that this writer may extend the trail: what
        :meth:`flush` checks under the lock before it appends. Raises
        :class:`AppendRefused` (exit 3) naming the trail and the line. A trail that is
        not there may be started, even where the witness knows one: the new trail
        supersedes it, on the record (:meth:`flush`)."""
        handle = self._open(create=False)
        if handle is None:
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            try:
                self._verified_tail(handle)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _open(self, *, create: bool) -> Any:
        """The trail open for appending (None if missing and not ``create``). A symlink
        in the trail's place is refused: the trail it points to is another trail."""
        flags = os.O_RDWR | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags | (os.O_CREAT if create else 0), 0o600)
        except FileNotFoundError:
            if create:
                raise
            return None
        except OSError as exc:
            if self.path.is_symlink():
                raise self._refuse(None, "is a symbolic link, not a trail file") from None
            raise self._refuse(None, f"cannot be opened ({exc.strerror})") from None
        return os.fdopen(fd, "a+b")

    def _known_here(self) -> Sighting | None:
        """The last trail the witness recorded at this path (with records), if any."""
        if self.witness is None:
            return None
        at_path, _ = self.witness.latest(self.signer.signing_public_key, self.path, None)
        return at_path if at_path is not None and at_path.length else None

    def _refuse_emptied(self) -> None:
        """An empty trail file where the witness knows a trail was emptied, not lost:
        refused (a trail that is gone is superseded instead, on the record)."""
        known = self._known_here()
        if known is not None:
            raise self._refuse(
                None,
                f"the trail is empty, but the witness {self.witness.path} recorded "  # type: ignore[union-attr]
                f"{known.length} records of it at {known.time} (emptied?): restore it, "
                "write to another folder, or let it go on the record with "
                f"`privpipe audit retire {self.path} --reason TEXT`",
            )

    def _supersede(self, known: Sighting) -> None:
        """Start a new trail where the witness knows one that is gone: a signed
        ``retire`` entry in the witness names the old trail (its first record, length
        and head; those still bind it wherever it turns up), and the new trail's first
        record carries the same note (``supersedes``), for verify and the report."""
        note = {
            "path": known.subject,
            "records": known.length,
            "head": known.head,
            "origin": known.origin,
            "witnessed_at": known.time,
        }
        run = self.context.get("run_id")
        self.witness.record(  # type: ignore[union-attr]
            kind="retire",
            subject=self.path,
            origin=known.origin,
            length=known.length,
            head=known.head,
            reason=f"superseded: the trail was gone when run {run} started a new one here",
        )
        first = orjson.loads(self._pending[0])
        first["supersedes"] = note
        self._pending[0] = orjson.dumps(first)

    def flush(self, *, checkpoint: bool = False) -> None:
        """Link and write the queued records under the trail's lock, close them with a
        signed checkpoint, then fsync once, write ``<trail>.head`` and record the head in
        the witness.

        Raises :class:`AppendRefused` (nothing written) when the trail's tail does not
        verify under this writer's key or disagrees with the witness. ``checkpoint`` is
        kept for callers; every flush that writes ends in a checkpoint."""
        del checkpoint
        if not self._pending:
            return
        private_dir(self.path.parent)
        handle = self._open(create=False)
        fresh, known = handle is None, None
        if fresh:  # gone: a new trail, superseding the one the witness knew here
            known = self._known_here()
            handle = self._open(create=True)
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                seq, prev, origin, end = self._verified_tail(handle, created=fresh)
                if seq == 0 and known is not None:
                    self._supersede(known)
                out = bytearray()
                every, since = self.checkpoint_every, self._since_checkpoint
                for body in self._pending:
                    seq += 1
                    prev = link_into(out, body, seq, prev)[0]
                    if origin is None:
                        origin = prev.decode()
                    since += 1
                    if since >= every:
                        seq, prev = self._checkpoint(out, seq, prev)
                        since = 0
                if since:
                    seq, prev = self._checkpoint(out, seq, prev)
                handle.write(out)
                handle.flush()
                os.fsync(handle.fileno())
                self._pending.clear()
                self._write_head()
                if self.witness is not None:
                    self.witness.record(
                        kind="trail",
                        subject=self.path,
                        origin=origin or "",
                        length=seq,
                        head=prev.decode(),
                        offset=end + len(out),
                    )
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _refuse(self, line: int | None, what: str) -> AppendRefused:
        where = f"{self.path}: line {line}" if line else str(self.path)
        return AppendRefused(f"{where}: {what}; nothing appended")

    def _witnessed(self, handle: Any, seq: int, end: int) -> tuple[int, int, str]:
        """(offset, records, head) of the latest point the witness recorded of this
        trail that the file still holds (0, 0, GENESIS when it knows none), after
        checking the last head recorded at this path (another trail put here is
        caught) and the last one of this trail wherever it was (a cut is caught)."""
        if self.witness is None:
            return 0, 0, GENESIS
        origin = line_hash(_first_line(handle))
        at_path, of_trail = self.witness.latest(self.signer.signing_public_key, self.path, origin)
        start = (0, 0, GENESIS)
        for seen in (at_path, of_trail):
            if seen is not None:
                self._check_sighting(handle, seen, seq, end)
                if seen.offset > start[0]:
                    start = (seen.offset, seen.length, seen.head)
        return start

    def _verified_tail(
        self, handle: Any, *, created: bool = False
    ) -> tuple[int, bytes, str | None, int]:
        """(seq, head hash, origin, size) of the open trail after checking it: the
        first line is the trail the witness knows, the trail still holds what the
        witness last recorded of it, every line since then hashes and links, and the
        last line is a checkpoint that verifies under this writer's own key. Origin is
        the first line's hash (None for an empty trail). An empty file this writer did
        not just create is refused where the witness knows a trail at the path."""
        end = handle.seek(0, os.SEEK_END)
        if end == 0:
            if not created:
                self._refuse_emptied()
            return 0, GENESIS.encode(), None, 0
        last = _line_ending_at(handle, end)
        torn_at = None
        if not last.endswith(b"\n") and end > len(last):
            try:
                torn_at = int(orjson.loads(_line_ending_at(handle, end - len(last)))["seq"]) + 1
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                torn_at = None
        seq, checkpoint = self._check_last(last, torn_at)
        first = _first_line(handle)
        origin = line_hash(first)
        try:
            if orjson.loads(first).get("hash") != origin:
                raise ValueError
        except (orjson.JSONDecodeError, ValueError, AttributeError):
            raise self._refuse(1, "the first record does not match its hash") from None
        offset, number, head = self._witnessed(handle, seq, end)
        self._check_chain(handle, offset, number, head, end)
        return seq, str(checkpoint["hash"]).encode(), origin, end

    def _check_chain(self, handle: Any, offset: int, number: int, head: str, end: int) -> None:
        """Re-hash and re-link every line from ``offset`` (just past record ``number``,
        whose hash is ``head``) to ``end``: refused at the first that does not."""
        self._chain_prefix(handle, offset, number, head, end, strict=True)

    def _check_last(self, last: bytes, torn_at: int | None = None) -> tuple[int, dict[str, Any]]:
        """The trail's last line, checked as a checkpoint of this writer's key."""
        if not last.endswith(b"\n"):
            raise self._refuse(
                torn_at,
                "the last line is incomplete (a write was cut off, or the file was edited); "
                f"cut it back to the last signed checkpoint with `privpipe audit repair "
                f"{self.path}`",
            )
        try:
            record = orjson.loads(last)
            seq = int(record["seq"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise self._refuse(None, "the last line is not an audit record") from None
        if record.get("type") != "checkpoint":
            raise self._refuse(
                seq,
                "records after the last signed checkpoint, which no signature covers "
                "(appended by hand, or a run that crashed); see `privpipe audit repair "
                f"{self.path}`",
            )
        if line_hash(last) != record.get("hash"):
            raise self._refuse(seq, "the last checkpoint does not match its hash")
        if record.get("length") != seq - 1 or record.get("head") != record.get("prev"):
            raise self._refuse(seq, "the last checkpoint does not match the chain before it")
        own = self.signer.signing_key_id
        if record.get("signer") != own:
            raise self._refuse(
                seq, f"the last checkpoint is signed by {shown(record.get('signer'))}, not by {own}"
            )
        try:
            message = checkpoint_message(seq - 1, str(record["head"]), own, str(record["time"]))
            Ed25519PublicKey.from_public_bytes(self.signer.signing_public_key).verify(
                bytes.fromhex(str(record["signature"])), message
            )
        except (InvalidSignature, ValueError, KeyError):
            raise self._refuse(
                seq, f"the last checkpoint's signature does not verify under {own}"
            ) from None
        return seq, record

    def _check_sighting(self, handle: Any, seen: Sighting, seq: int, end: int) -> None:
        """The trail still holds the head the witness recorded (``seen``)."""
        if seen.length > seq:
            raise self._refuse(
                seq,
                f"the witness recorded {seen.length} records of this trail at "
                f"{seen.time}; it holds {seq} (cut or rolled back)",
            )
        try:
            line = _line_ending_at(handle, seen.offset) if seen.offset <= end else b""
            matches = orjson.loads(line).get("seq") == seen.length and line_hash(line) == seen.head
        except (orjson.JSONDecodeError, AttributeError):
            matches = False
        if not matches:
            raise self._refuse(
                seen.length,
                f"not the history the witness recorded at {seen.time} (replaced or edited)",
            )

    def repair(self) -> dict[str, Any]:
        """Cut whatever follows the last checkpoint that verifies under this writer's
        key and that the chain from the witness's last recorded head reaches (a torn
        line, records no signature covers, records spliced in), keep the cut bytes in
        ``<trail>.cut-<time>`` (0600) for whoever investigates, and record the repair as
        a signed step. Returns what was cut. Raises :class:`AppendRefused` when no such
        checkpoint is found, or when the trail no longer holds what the witness
        recorded (a cut below it is never made)."""
        handle = self._open(create=False)
        if handle is None:
            raise self._refuse(None, "audit trail not found")
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                end = handle.seek(0, os.SEEK_END)
                seq = self._records_before(handle, end)
                offset, number, head = self._witnessed(handle, seq, end)
                keep = self._chain_prefix(handle, offset, number, head, end)
                if keep == 0:
                    raise self._refuse(
                        None, f"no checkpoint signed by {self.signer.signing_key_id} to cut back to"
                    )
                if keep == end:
                    return {"cut_bytes": 0, "cut_lines": 0}
                handle.seek(keep)
                cut = handle.read()
                saved = self.path.with_name(
                    f"{self.path.name}.cut-{utc_now().replace(':', '').replace('.', '-')}"
                )
                with atomic_path(saved) as tmp:
                    tmp.write_bytes(cut)
                handle.truncate(keep)
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        lines = cut.count(b"\n") + (0 if cut.endswith(b"\n") else 1)
        cut_record = {
            "cut_bytes": len(cut),
            "cut_lines": lines,
            "cut_sha256": hashlib.sha256(cut).hexdigest(),
            "saved_to": str(saved),
        }
        self.append(
            "audit-repair",
            counts={"cut_bytes": len(cut), "cut_lines": lines},
            params={"cut_sha256": cut_record["cut_sha256"], "saved_to": saved.name},
        )
        self.flush()
        return cut_record

    @staticmethod
    def _records_before(handle: Any, end: int) -> int:
        """How many whole lines the file holds up to ``end``."""
        handle.seek(0)
        return sum(1 for line in handle if line.endswith(b"\n"))

    def _chain_prefix(
        self, handle: Any, offset: int, number: int, head: str, end: int, *, strict: bool = False
    ) -> int:
        """Walk the lines from ``offset`` (just past record ``number``, whose hash is
        ``head``) to ``end``, each re-hashed and re-linked; returns the offset just past
        the last checkpoint of this writer's key that verifies (``offset`` when none
        does). The walk stops at the first bad line, or (``strict``) refuses it."""
        handle.seek(offset)
        position, prev, good = offset, head, offset
        while position < end:
            line = handle.readline()
            number += 1
            try:
                record = orjson.loads(line)
                ok = (
                    line.endswith(b"\n")
                    and record.get("seq") == number
                    and record.get("prev") == prev
                    and line_hash(line) == record.get("hash")
                )
            except (orjson.JSONDecodeError, AttributeError):
                ok = False
            if not ok:
                if strict:
                    raise self._refuse(
                        number,
                        "does not hash or link to the line before it (records spliced in, "
                        f"edited or removed); see `privpipe audit repair {self.path}`",
                    )
                break
            position += len(line)
            prev = str(record["hash"])
            if record.get("type") == "checkpoint":
                try:
                    self._check_last(line)
                    good = position
                except AppendRefused:
                    pass
        return good

    def close(self) -> None:
        """Write what is queued and sign the chain head."""
        self.flush()

    def _checkpoint(self, out: bytearray, seq: int, prev_bytes: bytes) -> tuple[int, bytes]:
        prev = prev_bytes.decode()
        when = utc_now()
        signer = self.signer.signing_key_id
        signature = self.signer.sign(checkpoint_message(seq, prev, signer, when))
        record = {
            "type": "checkpoint",
            "time": when,
            "length": seq,
            "head": prev,
            "signer": signer,
            "signature": signature.hex(),
        }
        digest = link_into(out, orjson.dumps(record), seq + 1, prev_bytes)[0]
        self._since_checkpoint = 0
        self.last_checkpoint = {**record, "seq": seq + 1, "prev": prev, "hash": digest.decode()}
        return seq + 1, digest

    def _write_head(self) -> None:
        """Replace ``<trail>.head`` with the latest checkpoint, if it is newer."""
        if self.last_checkpoint is None:
            return
        head_path = self.path.with_name(self.path.name + ".head")
        refuse_link(head_path)  # nor read through one: a linked head could stop the write
        try:
            current = orjson.loads(head_path.read_bytes())
            if int(current.get("seq", 0)) >= int(self.last_checkpoint["seq"]):
                return  # a concurrent run already recorded a later head
        except (OSError, orjson.JSONDecodeError, ValueError, TypeError, AttributeError):
            pass
        with atomic_path(head_path) as tmp:
            tmp.write_bytes(orjson.dumps(self.last_checkpoint))
