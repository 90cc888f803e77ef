"""Publish: write the sanitized data (sealed unless the policy says otherwise) and its
manifest, each atomically. Called only after the gate has passed."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import polars as pl

from privacy import __version__
from privacy._tee import HashingWriter
from privacy.crypto import KeyEncryptionProvider, SealedWriter
from privacy.io import atomic_path, atomic_write_json
from privacy.layout import (
    AUDIT_FILE,
    DATA_FILE,
    MANIFEST_FILE,
    SEALED_DATA_FILE,
    TRAINING_VIEW_FILE,
    VAULT_DIR,
    published_associated_data,
    training_view_associated_data,
)
from privacy.policy import Policy
from privacy.sources import PostgresTable
from privacy.sources.objectstore import upload_artifacts

__all__ = [
    "Release",
    "object_store_prefix",
    "release",
    "AUDIT_FILE",
    "DATA_FILE",
    "MANIFEST_FILE",
    "Published",
    "SEALED_DATA_FILE",
    "TRAINING_VIEW_FILE",
    "publish",
    "published_associated_data",
    "training_view_associated_data",
    "write_training_view",
]


def publish(
    frame: pl.DataFrame | pl.LazyFrame,
    policy: Policy,
    out_dir: Path,
    *,
    keys: KeyEncryptionProvider,
    input_path: str | Path,
    input_digest: Mapping[str, str],
    run_id: str,
    stages: list[dict[str, Any]],
    audit_trail: Path | None = None,
    training_view: Mapping[str, Any] | None = None,
    database: Mapping[str, Any] | None = None,
    object_store: str | None = None,
) -> Published:
    """Write the sanitized data (sealed unless the policy says otherwise) and its
    manifest, each atomically; returns the manifest and the files written (:class:`Published`).

    ``input_digest`` is the raw input's keyed digest (``{"hmac_sha256", "key_id"}``,
    from :func:`ingest`), written to the manifest and, for a sealed output, bound into
    its associated data (:func:`published_associated_data`); the output's digests stay
    plain SHA-256, for a reviewer to recompute.

    ``frame`` may be lazy (the partitions of a run, scanned one after another): the
    Parquet file is streamed through the sealing writer, never held whole in memory.
    ``training_view``: what :func:`write_training_view` wrote, for the manifest."""
    lazy = frame.lazy()
    data_path, whole_sha256, content_sha256, kek_id = _write_data(
        lazy, policy, out_dir, keys, input_digest
    )
    sealed = policy.outputs.seal
    rows = int(lazy.select(pl.len()).collect().item())
    columns = lazy.collect_schema().names()
    vault = stages[0]["params"]["vault"]
    manifest = _manifest(policy, run_id, input_path, input_digest, stages, out_dir, audit_trail)
    manifest["output"] = {
        "path": data_path.name,
        "sha256": whole_sha256,
        "content_sha256": content_sha256,
        "rows": rows,
        "columns": columns,
        "sealed": sealed,
        "kek_id": kek_id,
    }
    manifest["columns"] = _column_settings(policy)
    manifest["stages"] = stages
    manifest["audit"] = {"trail": str(audit_trail) if audit_trail else None}
    if training_view is not None:
        manifest["training_view"] = dict(training_view)
    if object_store is not None and policy.outputs.object_store is not None:
        manifest["output"]["object_store"] = object_store  # the s3:// folder of its copy
    if database is not None:  # the table the rows were also published into
        manifest["output"]["database"] = dict(database)
    files = {data_path.name: whole_sha256, MANIFEST_FILE: ""}
    files[manifest["vault"]["path"]] = vault["sha256"]
    if training_view is not None:
        files[str(training_view["path"])] = str(training_view["sha256"])
    files[MANIFEST_FILE] = atomic_write_json(out_dir / MANIFEST_FILE, manifest, root=out_dir)
    return Published(manifest, files)


def _write_data(
    lazy: pl.LazyFrame,
    policy: Policy,
    out_dir: Path,
    keys: KeyEncryptionProvider,
    input_digest: Mapping[str, str],
) -> tuple[Path, str, str, str | None]:
    """Stream the Parquet file into place, sealed (bound to the policy and the raw
    input's digest) unless the policy says otherwise: (its path, the file's SHA-256, the
    Parquet bytes' SHA-256, the KEK it is sealed under)."""
    data_path = out_dir / (SEALED_DATA_FILE if policy.outputs.seal else DATA_FILE)
    if policy.outputs.seal:
        bound = published_associated_data(policy, input_digest)
        whole_sha256, content_sha256, kek_id = _sink_sealed(
            lazy, data_path, keys, bound, policy.outputs.compression, root=out_dir
        )
        return data_path, whole_sha256, content_sha256, kek_id
    content, whole = hashlib.sha256(), hashlib.sha256()  # the Parquet bytes, the file's
    with atomic_path(data_path, root=out_dir) as tmp, tmp.open("wb") as out:
        hashed = HashingWriter(out, [whole, content])
        lazy.sink_parquet(cast(IO[bytes], hashed), compression=policy.outputs.compression)
    return data_path, whole.hexdigest(), content.hexdigest(), None


def _manifest(
    policy: Policy,
    run_id: str,
    input_path: str | Path,
    input_digest: Mapping[str, str],
    stages: list[dict[str, Any]],
    out_dir: Path,
    audit_trail: Path | None,
) -> dict[str, Any]:
    """The manifest's head: the tool, the run, the policy, the input and its vault copy."""
    vault = stages[0]["params"]["vault"]
    return {
        "tool": {"name": "privpipe", "version": __version__},
        "run_id": run_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "policy": {**policy.identity(), "path": str(policy.source) if policy.source else None},
        "input": {
            "path": str(input_path),
            "hmac_sha256": input_digest["hmac_sha256"],
            "key_id": input_digest["key_id"],
            "rows": stages[0]["rows_in"],
            # a database source: host, port, database, table or query hash, snapshot
            **(
                {"source": stages[0]["params"]["source"]} if "source" in stages[0]["params"] else {}
            ),
        },
        "vault": {
            "path": str(Path(vault["path"]).relative_to(out_dir)),
            "sha256": vault["sha256"],
            "kek_id": vault["kek_id"],
        },
    }


def _column_settings(policy: Policy) -> dict[str, Any]:
    """What the report reads of each column: its rule, role and type, the entity types
    the gate lets stay, and how a quasi-identifier generalizes (settings, never values)."""
    return {
        name: {
            "rule": spec.rule,
            "role": spec.role,
            "type": spec.type,
            "acknowledge_pii": list(spec.acknowledge_pii),
            "hierarchy": spec.hierarchy.model_dump() if spec.hierarchy else None,
        }
        for name, spec in policy.columns.items()
    }


def object_store_prefix(policy: Policy, out_dir: str | Path) -> str | None:
    """Where a run's published artifacts go in the object store: the policy's
    ``outputs.object_store`` and the run folder's name; None when it names none."""
    if policy.outputs.object_store is None:
        return None
    return f"{str(policy.outputs.object_store).rstrip('/')}/{Path(out_dir).name}"


@dataclass
class Release:
    """What :func:`release` did: the files (:class:`Published`), the training view, the
    database table's commit and the objects uploaded (each None or empty if not asked)."""

    published: Published
    training_view: dict[str, Any] | None
    database: dict[str, Any] | None
    object_store: list[str]


def release(
    parts: Callable[[], Iterable[pl.LazyFrame]],
    view_parts: Iterable[pl.LazyFrame] | None,
    policy: Policy,
    out_dir: Path,
    *,
    keys_for: Callable[[str], KeyEncryptionProvider],
    input_path: str | Path,
    input_digest: Mapping[str, str],
    run_id: str,
    stages: list[dict[str, Any]],
    audit_trail: Path | None = None,
) -> Release:
    """Everything a sanitize run publishes once its gate passed, in the order that keeps
    it all-or-nothing: the training view (``view_parts``, sealed under the vault scope),
    then the files inside one database transaction (``outputs.database``: the table
    commits only once the files are written, and a failure rolls it back), then the
    sealed data and the manifest uploaded (``outputs.object_store``). ``parts`` gives
    the gated partitions, lazily, each time it is called; ``keys_for(scope)`` the key
    of a scope."""
    view = None
    if view_parts is not None:
        view = write_training_view(
            pl.concat(list(view_parts)),
            policy,
            out_dir,
            keys=keys_for(policy.keys.seal.vault),
            input_digest=input_digest,
        )
    store = object_store_prefix(policy, out_dir)
    database = None
    transaction = contextlib.ExitStack()
    if policy.outputs.database is not None:
        spec = policy.outputs.database
        table = PostgresTable(spec.uri_env, spec.table, spec.mode)
        database = transaction.enter_context(table.staged(p.collect() for p in parts()))
    with transaction:  # files written, then the table's commit
        published = publish(
            pl.concat(list(parts())),
            policy,
            out_dir,
            keys=keys_for(policy.keys.seal.published),
            input_path=input_path,  # a file path, or a database source's description
            input_digest=input_digest,
            run_id=run_id,
            stages=stages,
            audit_trail=audit_trail,
            training_view=view,
            database=database,
            object_store=store,
        )
    uploaded: list[str] = []
    if store is not None:  # the sealed data as it is, streamed
        uploaded = upload_artifacts(
            out_dir, [published.manifest["output"]["path"], MANIFEST_FILE], store
        )
    return Release(published, view, database, uploaded)


@dataclass(frozen=True)
class Published:
    """What :func:`publish` wrote: the manifest, and each file it wrote or that the run
    left beside it (the sealed data, the manifest, the vault copy, the training view)
    by its path under the output folder, with the SHA-256 of the bytes written: what
    the signed publish record carries as ``outputs.files``."""

    manifest: dict[str, Any]
    files: dict[str, str]


def _sink_sealed(
    lazy: pl.LazyFrame,
    path: Path,
    keys: KeyEncryptionProvider,
    bound: Mapping[str, str],
    compression: Any,
    *,
    root: Path,
) -> tuple[str, str, str]:
    """Stream ``lazy`` as Parquet through a sealing writer into ``path`` (atomically,
    following no link below the output folder ``root``); returns (the file's SHA-256,
    the Parquet bytes' SHA-256, the KEK id)."""
    content, whole = hashlib.sha256(), hashlib.sha256()
    with atomic_path(path, root=root) as tmp, tmp.open("wb") as out:
        sink = HashingWriter(out, [whole])
        with SealedWriter(cast(BinaryIO, sink), keys, bound) as writer:
            lazy.sink_parquet(
                cast(IO[bytes], HashingWriter(writer, [content])), compression=compression
            )
    return whole.hexdigest(), content.hexdigest(), writer.header.kek_id


def write_training_view(
    frame: pl.DataFrame | pl.LazyFrame,
    policy: Policy,
    out_dir: Path,
    *,
    keys: KeyEncryptionProvider,
    input_digest: Mapping[str, str],
) -> dict[str, Any]:
    """Seal the training view (``training.input: deidentified``) into the output's vault
    folder; returns what the manifest records of it.

    The view is the transform stage's output before generalization: direct identifiers
    removed, masked or pseudonymized, the quasi-identifiers as they were. It is not
    k-anonymous, so it is sealed under the policy's ``vault`` scope (the custodian's),
    never published, and bound to this policy and the raw input's keyed digest: DP
    training reads it (the ledger charges the raw data set's budget), an analyst's
    keyring cannot open it. Call it only after the gate has passed."""
    lazy = frame.lazy()
    rows = int(lazy.select(pl.len()).collect().item())
    path = out_dir / VAULT_DIR / TRAINING_VIEW_FILE
    bound = training_view_associated_data(policy, input_digest)
    whole, content, kek_id = _sink_sealed(
        lazy, path, keys, bound, policy.outputs.compression, root=out_dir
    )
    return {
        "path": str(path.relative_to(out_dir)),
        "sha256": whole,
        "content_sha256": content,
        "rows": rows,
        "kek_id": kek_id,
        "scope": policy.keys.seal.vault,
    }
