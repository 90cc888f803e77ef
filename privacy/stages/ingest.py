"""Ingest: read the input in partitions, check it against the policy, digest and seal
a vault copy of it."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

import polars as pl

from privacy._tee import HashingWriter
from privacy.crypto import KeyEncryptionProvider, SealedWriter, is_sealed
from privacy.errors import InputError, SchemaError
from privacy.hashing import ContentKey
from privacy.io import (
    SEALED_SUFFIX,
    atomic_path,
    conform_frame,
    open_input,
    plain_name,
    plaintext_blocks,
    read_input_batches,
)
from privacy.policy import Policy
from privacy.sources import PostgresSource
from privacy.sources.objectstore import object_url
from privacy.stages.record import StageRecord, Timer

__all__ = [
    "DEFAULT_PARTITION_ROWS",
    "VAULT_DIR",
    "ingest",
    "ingest_database",
    "result_set_digest",
]

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
    url = object_url(path)  # an object (s3://): read once, into memory
    source = open_input(path, keys) if url is not None else None
    with Timer() as timer:
        saved: list[T] = []
        nulls: dict[str, int] = {}
        rows = width = 0
        batches = read_input_batches(
            url or path, policy, keys, batch_rows=partition_rows, source=source
        )
        for part in batches:
            for name, count in _nulls(part).items():
                nulls[name] = nulls.get(name, 0) + count
            saved.append(save(rows, part))
            rows += part.height
            width = part.width
            del part
        if isinstance(source, bytes):
            digest = {"hmac_sha256": content.blocks_digest([source]), "key_id": content.key_id}
            blocks: Iterable[bytes] = [source]
        else:
            digest = content.record(path, keys)  # of the plaintext, if sealed
            blocks = plaintext_blocks(path, keys)
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
                for block in blocks:
                    writer.write(block)
    return saved, StageRecord(
        "ingest",
        rows_in=rows,
        rows_out=rows,
        duration_s=timer.seconds,
        counts={"columns": width, "nulls": nulls, "partitions": len(saved)},
        params={
            "input": digest,
            "input_sealed": is_sealed(path) if url is None else None,
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


# A database column's type against the policy's: a text column may hold any declared
# type (cast and checked value by value, as a file's are); a typed one must match.
_COMPATIBLE: dict[str, tuple[type[pl.DataType], ...]] = {
    "integer": (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32),
    "float": (pl.Float32, pl.Float64, pl.Decimal, pl.Int16, pl.Int32, pl.Int64),
    "boolean": (pl.Boolean,),
    "date": (pl.Date,),
    "datetime": (pl.Datetime, pl.Date),
}


def _check_types(frame: pl.DataFrame, policy: Policy, name: str) -> None:
    for column, spec in policy.columns.items():
        if column not in frame.columns or spec.type == "string":
            continue
        dtype = frame.schema[column]
        if dtype == pl.String or isinstance(dtype, _COMPATIBLE[spec.type]):
            continue
        raise SchemaError(
            f"{name}: column {column!r} is {dtype} in the database, but the policy "
            f"declares it {spec.type} (change columns.{column}.type, or cast it in "
            "input.query)"
        )


def _ipc(frame: pl.DataFrame) -> bytes:
    """A partition's bytes for the result set's keyed digest (Arrow IPC, uncompressed:
    the same rows give the same bytes)."""
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="uncompressed")
    return buffer.getvalue()


def result_set_digest(
    source: PostgresSource, content: ContentKey, partition_rows: int | None
) -> dict[str, str]:
    """The keyed digest :func:`ingest_database` records for the rows ``source`` holds
    now, read the same way (``skip_unchanged`` compares it before a scheduled run)."""
    mac = content.mac()
    for raw in source.batches(partition_rows):
        mac.update(_ipc(raw))
    return {"hmac_sha256": mac.hexdigest(), "key_id": content.key_id}


def ingest_database(
    source: PostgresSource,
    policy: Policy,
    keys: KeyEncryptionProvider,
    vault_dir: Path,
    *,
    content: ContentKey,
    partition_rows: int | None = None,
    save: Callable[[int, pl.DataFrame], T],
) -> tuple[list[T], StageRecord]:
    """:func:`ingest` for a database source: the result set, read partition by
    partition from one snapshot, checked against the policy as a file's rows are and
    handed to ``save``; its keyed digest taken over the partitions' Arrow IPC bytes
    (stable for the same rows in the same order and partition size); and the vault
    copy, the result set as Parquet, sealed as it streams."""
    import pyarrow.parquet as pq

    name = source.describe()
    with Timer() as timer:
        saved: list[T] = []
        nulls: dict[str, int] = {}
        rows = width = 0
        mac = content.mac()
        vault = vault_dir / f"{source.table or 'query'}.parquet{SEALED_SUFFIX}"
        vault_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(vault_dir, 0o700)
        vault_sha256 = hashlib.sha256()
        # bound to the source (its digest is known only once every row has streamed)
        associated = {"artifact": "vault", "dataset": policy.name, "source": name}
        with atomic_path(vault) as tmp, tmp.open("wb") as out:
            sink = cast(BinaryIO, HashingWriter(out, [vault_sha256]))
            with SealedWriter(sink, keys, associated) as writer:
                parquet: Any = None
                for raw in source.batches(partition_rows):
                    if rows == 0 and not raw.height and not saved:
                        raise InputError(f"{name}: the result set has no rows")
                    _check_types(raw, policy, name)
                    part = conform_frame(raw, policy, name, row_offset=rows)
                    mac.update(_ipc(raw))
                    arrow = raw.to_arrow()
                    if parquet is None:
                        parquet = pq.ParquetWriter(writer, arrow.schema, compression="zstd")
                    parquet.write_table(arrow)
                    for column, count in _nulls(part).items():
                        nulls[column] = nulls.get(column, 0) + count
                    saved.append(save(rows, part))
                    rows += part.height
                    width = part.width
                    del part, raw, arrow
                if parquet is not None:
                    parquet.close()
        if rows == 0:
            raise InputError(f"{name}: the result set has no rows")
        digest = {"hmac_sha256": mac.hexdigest(), "key_id": content.key_id}
    return saved, StageRecord(
        "ingest",
        rows_in=rows,
        rows_out=rows,
        duration_s=timer.seconds,
        counts={"columns": width, "nulls": nulls, "partitions": len(saved)},
        params={
            "input": digest,
            "input_sealed": False,
            "format": "postgres",
            "source": source.identity(),
            "vault": {
                "path": str(vault),
                "sha256": vault_sha256.hexdigest(),
                "kek_id": writer.header.kek_id,
            },
        },
    )
