"""The hash chain under every signed, append-only file privpipe writes.

A trail line is ``{"seq": N, "prev": "…", …fields…, "hash": "…"}``: ``seq`` is its line
number, ``prev`` the previous line's hash (:data:`GENESIS` before the first), and
``hash`` the SHA-256 of the line's own bytes up to the ``,"hash"`` member, closed with
``}``. The hash covers exact bytes, so checking it needs no canonical re-serialization.
A checkpoint signs :func:`checkpoint_message`; the witness signs :func:`canonical_json`
of its entries. Nothing here holds a key or touches a file.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "GENESIS",
    "canonical_json",
    "checkpoint_message",
    "line_hash",
    "link",
    "link_into",
    "serialize",
    "shown",
    "utc_now",
]

GENESIS = "0" * 64
_HASH_TAIL = len(b',"hash":"') + 64 + len(b'"}')


_second: list[Any] = [None, ""]


def shown(value: Any, limit: int = 40) -> str:
    """A value read from a file, fit for a one-line message: escaped (no control
    characters, no line breaks an attacker could use to forge output) and shortened."""
    text = ascii(str(value))[1:-1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def utc_now() -> str:
    """UTC time with microseconds, ISO 8601 (the formatted second is cached)."""
    now = time.time()
    second = int(now)
    if second != _second[0]:
        stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second[0], _second[1] = second, stamp
    return f"{_second[1]}.{int((now - second) * 1e6):06d}Z"


def link(body: bytes, seq: int, prev: str) -> tuple[bytes, str]:
    """(the line, its hash) for a serialized record body ``{...}`` without seq/prev/hash."""
    out = bytearray()
    digest = link_into(out, body, seq, prev.encode())[0]
    return bytes(out), digest.decode()


def link_into(out: bytearray, body: bytes, seq: int, prev: bytes) -> tuple[bytes, int]:
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
    return link(orjson.dumps(rest), int(record["seq"]), str(record["prev"]))


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


def canonical_json(entry: Mapping[str, Any], *, without: tuple[str, ...] = ()) -> bytes:
    """Sorted-key, compact JSON of ``entry`` less the keys in ``without``: the bytes a
    witness entry's hash and signature cover."""
    body = {k: v for k, v in entry.items() if k not in without}
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
