"""Ingest: read the input in partitions, check it against the policy, digest and seal
a vault copy of it."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Generic, TypeVar, cast

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
    private_dir,
    read_input_batches,
)
from privacy.layout import VAULT_DIR
from privacy.policy import Policy
from privacy.sources import PostgresSource
from privacy.sources.objectstore import object_url
from privacy.stages.record import StageRecord, Timer

__all__ = [
    "DEFAULT_PARTITION_ROWS",
    "VAULT_DIR",
    "ingest",
    "ingest_database",
    "input_digest",
    "result_set_digest",
]

DEFAULT_PARTITION_ROWS = 500_000  # rows per partition of a sanitize run

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
        tally: _Tally[T] = _Tally(save)
        batches = read_input_batches(
            url or path, policy, keys, batch_rows=partition_rows, source=source
        )
        for part in batches:
            tally.add(part)
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
        with _vault_writer(vault, keys, associated) as (writer, vault_sha256):
            for block in blocks:
                writer.write(block)
    params = {
        "input": digest,
        "input_sealed": is_sealed(path) if url is None else None,
        "format": policy.input.format,
    }
    return tally.saved, tally.record(timer, params, vault, vault_sha256, writer)


class _Tally(Generic[T]):
    """What ingest counts of the partitions as they are read and saved."""

    def __init__(self, save: Callable[[int, pl.DataFrame], T]) -> None:
        self.save = save
        self.saved: list[T] = []
        self.nulls: dict[str, int] = {}
        self.rows = self.width = 0

    def add(self, part: pl.DataFrame) -> None:
        for name, count in _nulls(part).items():
            self.nulls[name] = self.nulls.get(name, 0) + count
        self.saved.append(self.save(self.rows, part))
        self.rows += part.height
        self.width = part.width

    def record(
        self, timer: Timer, params: dict[str, Any], vault: Path, sha256: Any, writer: SealedWriter
    ) -> StageRecord:
        return StageRecord(
            "ingest",
            rows_in=self.rows,
            rows_out=self.rows,
            duration_s=timer.seconds,
            counts={"columns": self.width, "nulls": self.nulls, "partitions": len(self.saved)},
            params={
                **params,
                "vault": {
                    "path": str(vault),
                    "sha256": sha256.hexdigest(),
                    "kek_id": writer.header.kek_id,
                },
            },
        )


@contextlib.contextmanager
def _vault_writer(
    vault: Path, keys: KeyEncryptionProvider, associated: dict[str, str]
) -> Iterator[tuple[SealedWriter, Any]]:
    """The vault copy's sealing writer, written atomically into a 0700 folder, and the
    SHA-256 of the sealed file as it is written. The vault folder lies in the output
    folder: a symbolic link in its place, or in the file's, is refused (OutputError),
    so the raw copy is never written where the folder's writer pointed it."""
    output = vault.parent.parent
    private_dir(vault.parent, root=output)
    os.chmod(vault.parent, 0o700)  # not a link: checked above
    sha256 = hashlib.sha256()
    with atomic_path(vault, root=output) as tmp, tmp.open("wb") as out:
        sink = cast(BinaryIO, HashingWriter(out, [sha256]))
        with SealedWriter(sink, keys, associated) as writer:
            yield writer, sha256


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


def input_digest(
    source: str | Path, policy: Policy, keys: KeyEncryptionProvider, content: ContentKey
) -> dict[str, str]:
    """The keyed digest ingest records for ``source`` as it is now (a file, sealed or
    not, an object ``s3://…``, or, for a ``postgres`` policy, the result set), taken
    the same way ingest takes it: what ``schedule.skip_unchanged`` compares before a
    run. One more read of the input."""
    if policy.input.kind == "postgres":
        return result_set_digest(
            PostgresSource.from_policy(policy.input), content, DEFAULT_PARTITION_ROWS
        )
    url = object_url(source)
    if url is not None:  # the object's plaintext
        plain = open_input(url, keys)
        assert isinstance(plain, bytes)
        return {"hmac_sha256": content.blocks_digest([plain]), "key_id": content.key_id}
    return content.record(Path(source), keys)  # of the plaintext, if sealed


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
        tally: _Tally[T] = _Tally(save)
        mac = content.mac()
        vault = vault_dir / f"{source.table or 'query'}.parquet{SEALED_SUFFIX}"
        # bound to the source (its digest is known only once every row has streamed)
        associated = {"artifact": "vault", "dataset": policy.name, "source": name}
        with _vault_writer(vault, keys, associated) as (writer, vault_sha256):
            parquet: Any = None
            for raw in source.batches(partition_rows):
                if not raw.height and not tally.rows:
                    raise InputError(f"{name}: the result set has no rows")
                _check_types(raw, policy, name)
                part = conform_frame(raw, policy, name, row_offset=tally.rows)
                mac.update(_ipc(raw))
                arrow = raw.to_arrow()
                if parquet is None:
                    parquet = pq.ParquetWriter(writer, arrow.schema, compression="zstd")
                parquet.write_table(arrow)
                tally.add(part)
                del part, raw, arrow
            if parquet is not None:
                parquet.close()
        if tally.rows == 0:
            raise InputError(f"{name}: the result set has no rows")
        digest = {"hmac_sha256": mac.hexdigest(), "key_id": content.key_id}
    params = {
        "input": digest,
        "input_sealed": False,
        "format": "postgres",
        "source": source.identity(),
    }
    return tally.saved, tally.record(timer, params, vault, vault_sha256, writer)
