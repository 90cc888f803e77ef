"""Publish: write the sanitized data (sealed unless the policy says otherwise) and its
manifest, each atomically. Called only after the gate has passed."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

import polars as pl

from privacy import __version__
from privacy._tee import HashingWriter
from privacy.crypto import KeyEncryptionProvider, SealedWriter
from privacy.io import atomic_path, atomic_write_json
from privacy.policy import Policy

__all__ = [
    "AUDIT_FILE",
    "DATA_FILE",
    "MANIFEST_FILE",
    "SEALED_DATA_FILE",
    "publish",
    "published_associated_data",
]

DATA_FILE = "data.parquet"
SEALED_DATA_FILE = "data.parquet.sealed"
AUDIT_FILE = "audit.jsonl"
MANIFEST_FILE = "manifest.json"


def publish(
    frame: pl.DataFrame | pl.LazyFrame,
    policy: Policy,
    out_dir: Path,
    *,
    keys: KeyEncryptionProvider,
    input_path: Path,
    input_digest: Mapping[str, str],
    run_id: str,
    stages: list[dict[str, Any]],
    audit_trail: Path | None = None,
) -> dict[str, Any]:
    """Write the sanitized data (sealed unless the policy says otherwise) and its
    manifest, each atomically; returns the manifest.

    ``input_digest`` is the raw input's keyed digest (``{"hmac_sha256", "key_id"}``,
    from :func:`ingest`), written to the manifest and, for a sealed output, bound into
    its associated data (:func:`published_associated_data`); the output's digests stay
    plain SHA-256, for a reviewer to recompute.

    ``frame`` may be lazy (the partitions of a run, scanned one after another): the
    Parquet file is streamed through the sealing writer, never held whole in memory."""
    lazy = frame.lazy()
    rows = int(lazy.select(pl.len()).collect().item())
    columns = lazy.collect_schema().names()
    sealed = policy.outputs.seal
    data_path = out_dir / (SEALED_DATA_FILE if sealed else DATA_FILE)
    kek_id = None
    content, whole = hashlib.sha256(), hashlib.sha256()  # the Parquet bytes, and the file's
    with atomic_path(data_path) as tmp, tmp.open("wb") as out:
        sink = HashingWriter(out, [whole])
        if sealed:
            bound = published_associated_data(policy, input_digest)
            with SealedWriter(cast(BinaryIO, sink), keys, bound) as writer:
                hashed = HashingWriter(writer, [content])
                lazy.sink_parquet(cast(IO[bytes], hashed), compression=policy.outputs.compression)
            kek_id = writer.header.kek_id
        else:
            hashed = HashingWriter(sink, [content])
            lazy.sink_parquet(cast(IO[bytes], hashed), compression=policy.outputs.compression)
    content_sha256 = content.hexdigest()
    vault = stages[0]["params"]["vault"]
    manifest = {
        "tool": {"name": "privpipe", "version": __version__},
        "run_id": run_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "policy": {
            "name": policy.name,
            "sha256": policy.hash,
            "path": str(policy.source) if policy.source else None,
        },
        "input": {
            "path": str(input_path),
            "hmac_sha256": input_digest["hmac_sha256"],
            "key_id": input_digest["key_id"],
            "rows": stages[0]["rows_in"],
        },
        "vault": {
            "path": str(Path(vault["path"]).relative_to(out_dir)),
            "sha256": vault["sha256"],
            "kek_id": vault["kek_id"],
        },
        "output": {
            "path": data_path.name,
            "sha256": whole.hexdigest(),
            "content_sha256": content_sha256,
            "rows": rows,
            "columns": columns,
            "sealed": sealed,
            "kek_id": kek_id,
        },
        "columns": {
            name: {"rule": spec.rule, "role": spec.role, "type": spec.type}
            for name, spec in policy.columns.items()
        },
        "stages": stages,
        "audit": {"trail": str(audit_trail) if audit_trail else None},
    }
    atomic_write_json(out_dir / MANIFEST_FILE, manifest)
    return manifest


def published_associated_data(
    policy: Policy, input_digest: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What a published sealed file is bound to: opening it as another data set's output,
    or under another policy, fails. :func:`publish` adds the raw input's keyed digest
    (``input_hmac_sha256``, ``input_key_id``; ``input_digest`` from :func:`ingest`): the
    budget ledger's identity of the raw data, authenticated with the file, so deleting or
    editing the manifest beside it cannot shed it. Without ``input_digest`` this is what
    a reader expects (a header's extra fields pass the check)."""
    bound = {"artifact": "published", "dataset": policy.name, "policy_sha256": policy.hash}
    if input_digest is not None:
        bound["input_hmac_sha256"] = str(input_digest["hmac_sha256"])
        bound["input_key_id"] = str(input_digest["key_id"])
    return bound
