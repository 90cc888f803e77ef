"""Ingest: read the input in partitions, check it against the policy, digest and seal
a vault copy of it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar, cast

import polars as pl

from privacy._tee import HashingWriter
from privacy.crypto import KeyEncryptionProvider, SealedWriter, is_sealed
from privacy.hashing import ContentKey
from privacy.io import (
    SEALED_SUFFIX,
    atomic_path,
    plain_name,
    plaintext_blocks,
    read_input_batches,
)
from privacy.policy import Policy
from privacy.stages.record import StageRecord, Timer

__all__ = ["DEFAULT_PARTITION_ROWS", "VAULT_DIR", "ingest"]

DEFAULT_PARTITION_ROWS = 500_000  # rows per partition of a sanitize run
VAULT_DIR = "vault"

T = TypeVar("T")


def ingest(
    path: Path,
    policy: Policy,
    keys: KeyEncryptionProvider,
    vault_dir: Path,
    *,
    content: ContentKey,
    partition_rows: int | None = None,
    save: Callable[[int, pl.DataFrame], T],
) -> tuple[list[T], StageRecord]:
    """Read the input in partitions of ``partition_rows`` rows (all in one when
    ``None``), check each against the policy's schema and hand it to ``save`` (with its
    first row's offset) as it is read, so memory holds one partition; take the input's
    keyed digest under ``content`` (never a plain hash: raw content is guessable); and
    seal a vault copy of its plaintext (streaming, in bounded memory) into
    ``vault_dir``, bound to that digest. Returns what ``save`` returned, in order, and
    the stage's record (``params["input"]``: ``{"hmac_sha256", "key_id"}``)."""
    with Timer() as timer:
        saved: list[T] = []
        nulls: dict[str, int] = {}
        rows = width = 0
        for part in read_input_batches(path, policy, keys, batch_rows=partition_rows):
            for name, count in _nulls(part).items():
                nulls[name] = nulls.get(name, 0) + count
            saved.append(save(rows, part))
            rows += part.height
            width = part.width
            del part
        digest = content.record(path, keys)  # of the plaintext, if sealed
        vault = vault_dir / f"{plain_name(path).name}{SEALED_SUFFIX}"
        associated = {
            "artifact": "vault",
            "dataset": policy.name,
            "input_hmac_sha256": digest["hmac_sha256"],
            "input_key_id": digest["key_id"],
        }
        vault_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(vault_dir, 0o700)
        vault_sha256 = hashlib.sha256()  # of the vault file, taken as it is written
        with atomic_path(vault) as tmp, tmp.open("wb") as out:
            sink = cast(BinaryIO, HashingWriter(out, [vault_sha256]))
            with SealedWriter(sink, keys, associated) as writer:
                for block in plaintext_blocks(path, keys):
                    writer.write(block)
    return saved, StageRecord(
        "ingest",
        rows_in=rows,
        rows_out=rows,
        duration_s=timer.seconds,
        counts={"columns": width, "nulls": nulls, "partitions": len(saved)},
        params={
            "input": digest,
            "input_sealed": is_sealed(path),
            "format": policy.input.format,
            "vault": {
                "path": str(vault),
                "sha256": vault_sha256.hexdigest(),
                "kek_id": writer.header.kek_id,
            },
        },
    )


def _nulls(frame: pl.DataFrame) -> dict[str, int]:
    return {
        name: int(count)
        for name, count in zip(frame.columns, frame.null_count().row(0), strict=True)
    }
