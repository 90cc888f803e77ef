"""Appending to an audit trail: hash-chained JSON lines with signed checkpoints.

One trail is one file of JSON lines. Each record carries ``seq`` (its line number),
``prev`` (the previous line's hash) and ``hash``: the SHA-256 of the record's canonical
JSON (sorted keys, no ``hash`` field), which is exactly the line's bytes before the
trailing ``,"hash":"…"}``. A ``checkpoint`` record signs (Ed25519) the chain length and
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
import getpass
import hashlib
import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from privacy import __version__
from privacy._atomic import atomic_path
from privacy.crypto import Signer

__all__ = [
    "GENESIS",
    "AuditTrail",
    "actor",
    "checkpoint_message",
    "record_hash",
    "serialize",
]

GENESIS = "0" * 64
_HASH_TAIL = len(b',"hash":"') + 64 + len(b'"}')


def actor() -> dict[str, str]:
    """Who runs this process: the OS user and host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"user": user, "host": socket.gethostname()}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def serialize(record: Mapping[str, Any]) -> tuple[bytes, str]:
    """(the line, its hash) for a record without ``hash``."""
    body = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(body).hexdigest()
    return body[:-1] + b',"hash":"' + digest.encode() + b'"}\n', digest


def record_hash(line: bytes) -> tuple[bytes, str, str]:
    """(canonical body, stated hash, computed hash) of one line of a trail."""
    line = line.rstrip(b"\n")
    stated = line[-_HASH_TAIL + len(b',"hash":"') : -2].decode("ascii", "replace")
    body = line[:-_HASH_TAIL] + b"}"
    return body, stated, hashlib.sha256(body).hexdigest()


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
        self._pending: list[dict[str, Any]] = []
        self._since_checkpoint = 0
        self._actor = actor()
        self.last_checkpoint: dict[str, Any] | None = None

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
        """Queue one step's record; it is linked and written at the next flush."""
        record: dict[str, Any] = {
            "type": "step",
            "time": _now(),
            "step": step,
            "actor": self._actor,
            "tool": f"privpipe {__version__}",
            **self.context,
            "outcome": outcome,
            "error": error,
            "duration_s": duration_s,
            "inputs": dict(inputs or {}),
            "outputs": dict(outputs or {}),
            "counts": dict(counts or {}),
            "params": dict(params or {}),
            **fields,
        }
        self._pending.append(record)
        if len(self._pending) >= self.flush_every:
            self.flush()

    def flush(self, *, checkpoint: bool = False) -> None:
        """Link and write the queued records under the trail's lock, then fsync once.

        ``checkpoint`` closes the flush with a signed checkpoint."""
        if not self._pending and not checkpoint:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                seq, prev = _read_head(handle)
                out = bytearray()
                for record in self._pending:
                    seq += 1
                    line, prev = serialize({**record, "seq": seq, "prev": prev})
                    out += line
                    self._since_checkpoint += 1
                    if self._since_checkpoint >= self.checkpoint_every:
                        seq, prev = self._checkpoint(out, seq, prev)
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

    def _checkpoint(self, out: bytearray, seq: int, prev: str) -> tuple[int, str]:
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
        line, digest = serialize({**record, "seq": seq + 1, "prev": prev})
        out += line
        self._since_checkpoint = 0
        self.last_checkpoint = {**record, "seq": seq + 1, "hash": digest}
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
            tmp.write_bytes(orjson.dumps(self.last_checkpoint, option=orjson.OPT_SORT_KEYS))
