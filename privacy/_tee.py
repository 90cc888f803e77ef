"""Hashing while streaming: one pass over the bytes gives the file and its digests.

:class:`HashingWriter` passes writes through to a sink and feeds each hash object (any
``update(bytes)``: ``hashlib``, ``hmac``) the bytes written; :class:`HashingReader` does
the same for the bytes read. Sealing then hashes the plaintext it reads and the
ciphertext it writes in the same pass, instead of reading both again afterwards.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

__all__ = ["HashingReader", "HashingWriter"]


class HashingWriter(io.RawIOBase):
    """Writes through to ``sink``; every hash in ``hashes`` sees the bytes written."""

    def __init__(self, sink: Any, hashes: Iterable[Any]) -> None:
        super().__init__()
        self._sink = sink
        self._hashes = list(hashes)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        for digest in self._hashes:
            digest.update(data)
        self._sink.write(data)
        return memoryview(data).nbytes

    def flush(self) -> None:
        flush = getattr(self._sink, "flush", None)  # a SealedWriter has nothing to flush
        if flush is not None:
            flush()


class HashingReader(io.RawIOBase):
    """Reads from ``source``; every hash in ``hashes`` sees the bytes read."""

    def __init__(self, source: Any, hashes: Iterable[Any]) -> None:
        super().__init__()
        self._source = source
        self._hashes = list(hashes)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._source.read(size)
        for digest in self._hashes:
            digest.update(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer)[: len(data)] = data
        return len(data)
