"""Hashing while streaming: one pass over the bytes gives the file and its digests.

:class:`HashingWriter` passes writes through to a sink and feeds each hash object (any
``update(bytes)``: ``hashlib``, ``hmac``) the bytes written; :class:`HashingReader` does
the same for the bytes read. Sealing then hashes the plaintext it reads and the
ciphertext it writes in the same pass, instead of reading both again afterwards.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["BackgroundHash", "HashingReader", "HashingWriter", "in_background"]


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


class BackgroundHash:
    """Feeds ``digest`` on a thread of its own, in order: ``hashlib`` releases the GIL
    on large updates, so hashing runs beside the encryption on another core. ``join()``
    (always, in a ``finally``) waits until every update is in; read ``digest`` after."""

    def __init__(self, digest: Any, depth: int = 4) -> None:
        import queue
        import threading

        self.digest = digest
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name="privpipe-hash", daemon=True)
        self._thread.start()

    def update(self, data: Any) -> None:
        # a caller may reuse its buffer once update returns: keep an immutable copy
        self._queue.put(data if isinstance(data, bytes) else bytes(data))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            self.digest.update(item)

    def join(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


@contextlib.contextmanager
def in_background(digests: Iterable[Any]) -> Iterator[list[BackgroundHash]]:
    """``digests`` fed on threads of their own for the block; all caught up after it."""
    feeders = [BackgroundHash(d) for d in digests]
    try:
        yield feeders
    finally:
        for feeder in feeders:
            feeder.join()
