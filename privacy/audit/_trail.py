"""Appending to an audit trail: hash-chained JSON lines with signed checkpoints.

One trail is one file of JSON lines. Each line is ``{"seq": N, "prev": "…", …fields…,
"hash": "…"}``: ``seq`` is its line number, ``prev`` the previous line's hash, and
``hash`` the SHA-256 of the line's own bytes up to the ``,"hash"`` member (with ``}``
closing them). The hash covers exact bytes, so no canonical re-serialization is needed
to check it: a record is serialized once, when appended, and linked at flush.

A ``checkpoint`` record signs (Ed25519) the chain length and
head hash; one closes every flush that ends a run, and one is cut every
``checkpoint_every`` records. The latest checkpoint is also written to ``<trail>.head``
so that a cut at a checkpoint boundary is caught too.

Concurrency: records are buffered in memory and linked only at flush time, under an
exclusive ``flock`` on the trail, after reading the current head from the file's tail.
Concurrent runs therefore interleave whole flushes and never fork the chain. One fsync
per flush (batched), not per record.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from privacy import __version__
from privacy._atomic import atomic_path, private_dir
from privacy.actor import actor
from privacy.crypto import Signer
from privacy.errors import ScopeError

__all__ = [
    "GENESIS",
    "AuditTrail",
    "actor",
    "checkpoint_message",
    "line_hash",
    "serialize",
]

GENESIS = "0" * 64
_HASH_TAIL = len(b',"hash":"') + 64 + len(b'"}')


_second: list[Any] = [None, ""]


def _now() -> str:
    """UTC time with microseconds, ISO 8601 (the formatted second is cached)."""
    now = time.time()
    second = int(now)
    if second != _second[0]:
        stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second[0], _second[1] = second, stamp
    return f"{_second[1]}.{int((now - second) * 1e6):06d}Z"


def _link(body: bytes, seq: int, prev: str) -> tuple[bytes, str]:
    """(the line, its hash) for a serialized record body ``{...}`` without seq/prev/hash."""
    out = bytearray()
    digest = _link_into(out, body, seq, prev.encode())[0]
    return bytes(out), digest.decode()


def _link_into(out: bytearray, body: bytes, seq: int, prev: bytes) -> tuple[bytes, int]:
    """Append the linked line to ``out``; returns (its hash as hex bytes, seq)."""
    prefix = b'{"seq":%d,"prev":"%b",' % (seq, prev)
    rest = memoryview(body)[1:]  # the body without its "{", not copied
    digest = hashlib.sha256(prefix)
    digest.update(rest)
    hexed = digest.hexdigest().encode()
    out += prefix
    out += rest[:-1]
    out += b',"hash":"'
    out += hexed
    out += b'"}\n'
    return hexed, seq


def serialize(record: Mapping[str, Any]) -> tuple[bytes, str]:
    """(the line, its hash) for a record holding ``seq`` and ``prev`` but no ``hash``."""
    rest = {k: v for k, v in record.items() if k not in ("seq", "prev")}
    return _link(orjson.dumps(rest), int(record["seq"]), str(record["prev"]))


def line_hash(line: bytes) -> str:
    """The hash a trail line should state: SHA-256 of its bytes before ``,"hash":…``,
    closed with ``}``."""
    end = len(line) - _HASH_TAIL - (1 if line.endswith(b"\n") else 0)
    digest = hashlib.sha256(memoryview(line)[:end])
    digest.update(b"}")
    return digest.hexdigest()


def checkpoint_message(length: int, head: str, signer: str, when: str) -> bytes:
    """The bytes a checkpoint signs."""
    return orjson.dumps(
        {
            "format": "privpipe-audit/v1",
            "head": head,
            "length": length,
            "signer": signer,
            "time": when,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def _read_head(handle: Any) -> tuple[int, str]:
    """(seq, hash) of the last complete line of an open trail; (0, GENESIS) when empty."""
    end = handle.seek(0, os.SEEK_END)
    if end == 0:
        return 0, GENESIS
    block = 1 << 16
    start = max(0, end - block)
    while True:
        handle.seek(start)
        tail = handle.read(end - start)
        lines = tail.rstrip(b"\n").rsplit(b"\n", 1)
        if len(lines) == 2 or start == 0:
            last = lines[-1]
            break
        start = max(0, start - block)
    record = orjson.loads(last)
    return int(record["seq"]), str(record["hash"])


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
    ) -> None:
        self.path = Path(path)
        self.signer = signer
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
        self.last_checkpoint: dict[str, Any] | None = None
        self._check_signer()

    def _check_signer(self) -> None:
        """Only the pipeline's audit key (the ``audit`` scope) may extend a trail that
        another key signed: a keyring without that scope signs its own trails only."""
        scopes = getattr(self.signer, "scopes", None)
        if scopes is None or "audit" in scopes:
            return
        head_path = self.path.with_name(self.path.name + ".head")
        try:
            signer = orjson.loads(head_path.read_bytes()).get("signer")
        except (FileNotFoundError, orjson.JSONDecodeError, AttributeError):
            return
        if signer and signer != self.signer.signing_key_id:
            raise ScopeError(
                f"{self.path}: signed by {signer}; signing it needs the 'audit' scope "
                "(the pipeline's audit signing key), which this keyring does not hold",
                scope="audit",
                keyring=str(getattr(self.signer, "path", "")),
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
            **self._base,
            "time": _now(),
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
        self._pending.append(orjson.dumps(record))  # serialized now: later edits can't leak in
        if len(self._pending) >= self.flush_every:
            self.flush()

    def flush(self, *, checkpoint: bool = False) -> None:
        """Link and write the queued records under the trail's lock, then fsync once.

        ``checkpoint`` closes the flush with a signed checkpoint."""
        if not self._pending and not checkpoint:
            return
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                seq, head = _read_head(handle)
                prev = head.encode()
                out = bytearray()
                every, since = self.checkpoint_every, self._since_checkpoint
                for body in self._pending:
                    seq += 1
                    prev = _link_into(out, body, seq, prev)[0]
                    since += 1
                    if since >= every:
                        seq, prev = self._checkpoint(out, seq, prev)
                        since = 0
                self._since_checkpoint = since
                if checkpoint and self._since_checkpoint:
                    seq, prev = self._checkpoint(out, seq, prev)
                handle.write(out)
                handle.flush()
                os.fsync(handle.fileno())
                self._pending.clear()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        if checkpoint and self.last_checkpoint is not None:
            self._write_head()

    def close(self) -> None:
        """Write what is queued and sign the chain head."""
        self.flush(checkpoint=True)

    def _checkpoint(self, out: bytearray, seq: int, prev_bytes: bytes) -> tuple[int, bytes]:
        prev = prev_bytes.decode()
        when = _now()
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
        digest = _link_into(out, orjson.dumps(record), seq + 1, prev_bytes)[0]
        self._since_checkpoint = 0
        self.last_checkpoint = {**record, "seq": seq + 1, "prev": prev, "hash": digest.decode()}
        return seq + 1, digest

    def _write_head(self) -> None:
        """Replace ``<trail>.head`` with the latest checkpoint, if it is newer."""
        assert self.last_checkpoint is not None
        head_path = self.path.with_name(self.path.name + ".head")
        try:
            current = orjson.loads(head_path.read_bytes())
            if int(current.get("seq", 0)) >= int(self.last_checkpoint["seq"]):
                return  # a concurrent run already recorded a later head
        except (FileNotFoundError, orjson.JSONDecodeError, ValueError, TypeError):
            pass
        with atomic_path(head_path) as tmp:
            tmp.write_bytes(orjson.dumps(self.last_checkpoint))
