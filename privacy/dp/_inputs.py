"""What DP training reads: the published data or the sealed training view of a sanitize
output, opened in memory, checked against its manifest, with its identity for the
budget ledger (the raw input's keyed digest where it is bound into the file)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

from privacy import layout
from privacy.crypto import is_sealed, read_header, unseal_bytes
from privacy.dp._ledger import DataIdentity
from privacy.errors import InputError, IntegrityError
from privacy.policy import Policy

__all__ = ["load_published", "load_training_view"]


def load_published(data: Path, policy: Policy, keys: Any) -> tuple[Any, str, DataIdentity]:
    """The sanitized frame, its file's SHA-256 and its identity for the ledger, from a
    sanitize output folder (its manifest names the data file) or a data file; a sealed
    one is opened in memory and must be the output of this policy.

    The raw input's keyed digest (the ledger's strongest identity) of a sealed file is
    the one publish bound into its associated data, authenticated with it: deleting or
    editing the manifest cannot shed it. A manifest beside the file must describe that
    file (its ``output.sha256``) and, where the file is sealed, carry the same input
    digest: either mismatch is refused. A plain output (``outputs.seal: false``, or a
    sealed file from before the digest was bound) has no such binding: its raw identity
    is only as good as its manifest, and without one only the sanitized digest is known."""
    import polars as pl

    manifest_path = data / layout.MANIFEST_FILE if data.is_dir() else None
    if manifest_path is not None:
        if not manifest_path.is_file():
            raise InputError(f"{data}: no {layout.MANIFEST_FILE}: not a sanitize output")
        data = data / json.loads(manifest_path.read_text())["output"]["path"]
    if not data.is_file():
        raise InputError(f"{data}: input file not found")
    blob = data.read_bytes()  # once: the bytes hashed are the bytes opened
    digest = hashlib.sha256(blob).hexdigest()
    bound: tuple[str | None, str | None] | None = None
    if is_sealed(data):
        plain = unseal_bytes(
            blob, keys, expected=layout.published_associated_data(policy), name=str(data)
        )
        found = read_header(io.BytesIO(blob), str(data)).associated_data  # now authenticated
        if "input_hmac_sha256" in found:
            bound = (found["input_hmac_sha256"], found.get("input_key_id"))
    else:
        plain = blob
    try:
        frame = pl.read_parquet(io.BytesIO(plain))
    except pl.exceptions.PolarsError:
        raise InputError(f"{data}: not a readable Parquet file") from None
    label = policy.training.dataset or policy.name
    raw = bound or (None, None)
    beside = manifest_path or data.with_name(layout.MANIFEST_FILE)
    manifest = _manifest_of(beside, data) if beside.is_file() else None
    if manifest is not None:
        if manifest.get("output", {}).get("sha256") != digest:
            raise InputError(
                f"{beside}: output.sha256 is not the SHA-256 of {data.name}: the manifest "
                "does not describe this data (edited, or the data replaced)"
            )
        given = manifest.get("input") or {}
        listed = (given.get("hmac_sha256"), given.get("key_id"))
        if bound is not None and listed != bound:
            raise IntegrityError(
                f"{beside}: input digest is not the one its sealed {data.name} is bound "
                "to: the manifest was edited, or belongs to another run of other raw data"
            )
        raw = listed
    return frame, digest, DataIdentity(hashlib.sha256(plain).hexdigest(), *raw, label)


def load_training_view(data: Path, policy: Policy, ring: Any) -> tuple[Any, str, DataIdentity]:
    """The training view of a sanitize output folder (``training.input: deidentified``),
    as :func:`load_published` returns the published data: opened in memory under the
    policy's ``vault`` scope, checked against the manifest's digest, bound to this policy;
    its identity for the ledger is the raw input's keyed digest, authenticated with the
    file, so the budget charged is the raw data set's whichever input trains."""
    import polars as pl

    how = (
        "training.input is deidentified (the default with dp: true): train on the sanitize "
        "output folder of this policy, which holds its sealed training view, or set "
        "training.input: published"
    )
    if not data.is_dir():
        raise InputError(f"{data}: not a sanitize output folder; {how}")
    manifest_path = data / layout.MANIFEST_FILE
    if not manifest_path.is_file():
        raise InputError(f"{data}: no {layout.MANIFEST_FILE}: not a sanitize output; {how}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        raise InputError(f"{manifest_path}: not a sanitize manifest") from None
    view = manifest.get("training_view") if isinstance(manifest, dict) else None
    if not isinstance(view, dict) or not isinstance(view.get("path"), str):
        raise InputError(
            f"{data}: no training view (sanitized by a policy that does not train on the "
            "deidentified data): run sanitize again with this policy, or set "
            "training.input: published"
        )
    path = data / view["path"]
    if path.parent != data / layout.VAULT_DIR or not path.is_file():
        raise InputError(f"{path}: the training view the manifest names is missing")
    keys = ring.for_scope(policy.keys.seal.vault)  # the custodian's: refused without it
    blob = path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != view.get("sha256"):
        raise IntegrityError(
            f"{manifest_path}: training_view.sha256 is not the SHA-256 of {path.name} "
            "(the view was replaced, or the manifest edited)"
        )
    plain = unseal_bytes(
        blob, keys, expected=layout.training_view_associated_data(policy), name=str(path)
    )
    found = read_header(io.BytesIO(blob), str(path)).associated_data  # authenticated now
    frame = pl.read_parquet(io.BytesIO(plain))
    label = policy.training.dataset or policy.name
    identity = DataIdentity(
        hashlib.sha256(plain).hexdigest(),
        found.get("input_hmac_sha256"),
        found.get("input_key_id"),
        label,
    )
    return frame, digest, identity


def _manifest_of(path: Path, data: Path) -> dict[str, Any] | None:
    """The manifest at ``path`` if it names ``data`` as its output, else None."""
    try:
        manifest = json.loads(path.read_text())
        named = manifest["output"]["path"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{path}: not a sanitize manifest") from None
    return dict(manifest) if named == data.name else None
