"""Hashing while streaming: the digests equal those of the bytes, whatever the caller
does with its buffer after handing it over."""

from __future__ import annotations

import hashlib
import io
import os
import threading

import pytest

from privacy._tee import HashingReader, HashingWriter, in_background


def test_reader_and_writer_digests_equal_the_bytes_digest() -> None:
    data = os.urandom(3 << 20)
    read, written = hashlib.sha256(), hashlib.sha256()
    reader = HashingReader(io.BytesIO(data), [read])
    sink = io.BytesIO()
    writer = HashingWriter(sink, [written])
    while block := reader.read(1 << 20):
        writer.write(block)
    assert sink.getvalue() == data
    assert read.hexdigest() == written.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_background_digest_keeps_order_and_copies_a_reused_buffer() -> None:
    blocks = [os.urandom(100_000) for _ in range(20)]
    digest = hashlib.sha256()
    buffer = bytearray(100_000)
    with in_background([digest]) as (feed,):
        for block in blocks:
            buffer[:] = block
            feed.update(memoryview(buffer))  # the caller reuses the buffer at once
    assert digest.hexdigest() == hashlib.sha256(b"".join(blocks)).hexdigest()


def test_the_background_threads_end_when_the_block_fails() -> None:
    before = threading.active_count()
    with pytest.raises(RuntimeError), in_background([hashlib.sha256(), hashlib.sha256()]) as feeds:
        feeds[0].update(b"x" * 4096)
        raise RuntimeError("stop")
    assert threading.active_count() == before
