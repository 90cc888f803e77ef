"""The sanitize stages: ingest, detect, transform, anonymize, gate, publish.

Each stage is a plain function over a polars frame and the policy that returns the new
frame (where it makes one) and a :class:`StageRecord`: counts, parameters and outcome,
never a value from the data. The Prefect flow strings them together; nothing here
knows about Prefect.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from privacy import __version__, kanon
from privacy.crypto import KeyEncryptionProvider, KeyProvider, SealedWriter, is_sealed
from privacy.detect import TextScanner, classify_columns
from privacy.errors import PolicyError, PrivacyGuaranteeError
from privacy.io import (
    SEALED_SUFFIX,
    atomic_path,
    atomic_write_json,
    plain_name,
    plaintext_blocks,
    read_input,
    sha256_file,
)
from privacy.policy import Policy
from privacy.transform import apply_policy

__all__ = [
    "DATA_FILE",
    "SEALED_DATA_FILE",
    "VAULT_DIR",
    "AUDIT_FILE",
    "MANIFEST_FILE",
    "StageRecord",
    "anonymize",
    "check_supported",
    "detect",
    "gate",
    "ingest",
    "publish",
    "published_associated_data",
    "transform",
]

MIN_PII_SHARE = 0.05  # of sampled cells: below this, a finding in a kept column is noise
GATE_SAMPLE_ROWS = 2000  # rows of each structured text column the gate re-scans
DATA_FILE = "data.parquet"
SEALED_DATA_FILE = "data.parquet.sealed"
VAULT_DIR = "vault"
AUDIT_FILE = "audit.jsonl"
MANIFEST_FILE = "manifest.json"
_DIRECT_RULES = ("drop", "redact", "mask", "pseudonymize")
# Rules whose output cannot hold what they replaced (keyed tokens, a constant, mask
# characters): the residual scan would only find false positives in them (a hex token
# matching a licence-number pattern, say).
_BY_CONSTRUCTION = ("pseudonymize", "redact", "mask")


@dataclass
class StageRecord:
    """What one stage did. Safe to log, persist and audit: no value from the data."""

    stage: str
    rows_in: int
    rows_out: int
    duration_s: float = 0.0
    status: str = "ok"
    counts: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_supported(policy: Policy) -> None:
    """Refuse settings whose promise this version cannot keep yet, rather than ignore them.

    (Training settings are recorded and not yet acted on; a reversible pseudonym would
    promise a control that does not exist yet.)
    """
    label = str(policy.source) if policy.source else "<policy>"
    for name, spec in policy.columns.items():
        if getattr(spec, "reversible", False):
            raise PolicyError(
                f"{label}: columns.{name}.reversible: re-identification is not available yet"
            )


class _Timer:
    def __enter__(self) -> _Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = round(time.perf_counter() - self.start, 4)


def ingest(
    path: Path, policy: Policy, keys: KeyEncryptionProvider, vault_dir: Path
) -> tuple[pl.DataFrame, StageRecord]:
    """Read the input, check it against the policy's schema, hash it, and seal a vault
    copy of its plaintext (streaming, in bounded memory) into ``vault_dir``."""
    with _Timer() as timer:
        frame = read_input(path, policy, keys)
        digest = sha256_file(path)
        vault = vault_dir / f"{plain_name(path).name}{SEALED_SUFFIX}"
        associated = {"artifact": "vault", "dataset": policy.name, "input_sha256": digest}
        vault_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(vault_dir, 0o700)
        with (
            atomic_path(vault) as tmp,
            tmp.open("wb") as sink,
            SealedWriter(sink, keys, associated) as writer,
        ):
            for block in plaintext_blocks(path, keys):
                writer.write(block)
    return frame, StageRecord(
        "ingest",
        rows_in=frame.height,
        rows_out=frame.height,
        duration_s=timer.seconds,
        counts={"columns": frame.width, "nulls": _nulls(frame)},
        params={
            "input_sha256": digest,
            "input_sealed": is_sealed(path),
            "format": policy.input.format,
            "vault": {
                "path": str(vault),
                "sha256": sha256_file(vault),
                "kek_id": writer.header.kek_id,
            },
        },
    )


def detect(frame: pl.DataFrame, policy: Policy, scanner: TextScanner) -> StageRecord:
    """Audit the declared policy against the data: a column the policy publishes as is
    (``keep``) in which Presidio finds personal data fails the run closed, unless the
    column's ``acknowledge_pii`` lists that entity. Judged on a sample of rows."""
    with _Timer() as timer:
        kept = [n for n, spec in policy.columns.items() if spec.rule == "keep"]
        findings = classify_columns(
            frame.select(kept), scanner, sample=policy.detection.sample_rows
        )
        found = {f.column: f.entities for f in findings if f.entities}
        problems = [
            (f.column, entity, share)
            for f in findings
            for entity, share in f.entities.items()
            if share >= MIN_PII_SHARE and entity not in policy.columns[f.column].acknowledge_pii
        ]
        if problems:
            column, entity, share = problems[0]
            raise PrivacyGuaranteeError(
                f"detect: column {column!r} is declared keep but holds {entity} (in "
                f"{share:.0%} of sampled cells): transform it, or list {entity} under "
                f"columns.{column}.acknowledge_pii"
            )
    return StageRecord(
        "detect",
        rows_in=frame.height,
        rows_out=frame.height,
        duration_s=timer.seconds,
        counts={"columns_audited": len(kept), "pii_found": found},
        params={
            "sample_rows": policy.detection.sample_rows,
            "score_threshold": policy.detection.score_threshold,
        },
    )


def transform(
    frame: pl.DataFrame,
    policy: Policy,
    keys: KeyProvider | None,
    scanner: TextScanner | None = None,
) -> tuple[pl.DataFrame, StageRecord]:
    """Apply every column rule (``scanner``: Presidio spans for ``scrub``)."""
    with _Timer() as timer:
        out, result = apply_policy(frame, policy, keys, scanner)
    return out, StageRecord(
        "transform",
        rows_in=frame.height,
        rows_out=out.height,
        duration_s=timer.seconds,
        counts={"columns_out": out.width, "dropped": len(result.dropped), **result.stats},
        params={"rules": result.rules, "rule_params": result.params, "key_id": result.key_id},
    )


def anonymize(
    frame: pl.DataFrame,
    policy: Policy,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pl.DataFrame, StageRecord]:
    """Make the quasi-identifiers k-anonymous (and l-diverse, t-close where the policy
    asks): the generalization search, suppression, an independent re-count of the
    output, and the re-identification risk before and after."""
    with _Timer() as timer:
        qis = policy.columns_with_role("quasi_identifier")
        if not qis or not frame.height:
            out, counts = frame, {"quasi_identifiers": qis}
        else:
            out, result = kanon.anonymize(frame, policy, progress=progress)
            counts = result.summary()
    privacy = policy.privacy
    return out, StageRecord(
        "anonymize",
        rows_in=frame.height,
        rows_out=out.height,
        duration_s=timer.seconds,
        counts=counts,
        params={
            "k": privacy.k,
            "l_diversity": privacy.l_diversity.model_dump() if privacy.l_diversity else None,
            "t_closeness": privacy.t_closeness.model_dump() if privacy.t_closeness else None,
            "max_suppression": privacy.max_suppression,
            "suppressed_records": privacy.suppressed_records,
            "algorithm": privacy.algorithm,
            "metric": privacy.metric,
        },
    )


def gate(
    raw: pl.DataFrame,
    out: pl.DataFrame,
    policy: Policy,
    scanner: TextScanner | None = None,
) -> StageRecord:
    """Check the output before anything is published; fail closed.

    Refuses: a column the policy drops, or never declared; more rows lost than the
    suppression limit allows; any cell of the output that equals, verbatim, a value of a
    column the policy drops, redacts, masks or pseudonymizes; and, with a ``scanner``,
    any personal data Presidio still finds in a text column (every cell of a scrubbed
    column; a sample of the others, where only pattern matches count) that the column
    does not acknowledge.
    """
    with _Timer() as timer:
        declared_out = [n for n, s in policy.columns.items() if s.rule != "drop"]
        unexpected = [c for c in out.columns if c not in declared_out]
        if unexpected:
            raise PrivacyGuaranteeError(
                f"gate: output column {', '.join(map(repr, unexpected))} is dropped or "
                "undeclared in the policy; nothing was published"
            )
        lost = raw.height - out.height
        if lost < 0 or lost > policy.privacy.max_suppression * raw.height:
            raise PrivacyGuaranteeError(
                f"gate: {lost} rows removed, over privacy.max_suppression; nothing was published"
            )
        _recount_classes(out, policy)
        leaks = _verbatim_leaks(raw, out, policy)
        if leaks:
            where = ", ".join(f"{src!r} in {dst!r}" for src, dst in leaks)
            raise PrivacyGuaranteeError(
                f"gate: values of protected columns appear verbatim in the output ({where}); "
                "nothing was published"
            )
        residual = _residual_pii(out, policy, scanner) if scanner is not None else {}
        for column, entities in residual.items():
            allowed = policy.columns[column].acknowledge_pii
            unexplained = {e: n for e, n in entities.items() if e not in allowed}
            if unexplained:
                entity, cells = max(unexplained.items(), key=lambda item: item[1])
                raise PrivacyGuaranteeError(
                    f"gate: residual PII in output column {column!r}: {entity} in {cells} "
                    "checked cells; nothing was published"
                )
    checks = ["columns", "suppression", "k-anonymity-recount", "verbatim-identifiers"]
    if scanner is not None:
        checks.append("residual-pii")
    return StageRecord(
        "gate",
        rows_in=out.height,
        rows_out=out.height,
        duration_s=timer.seconds,
        counts={"checks": len(checks), "verbatim_leaks": 0, "residual_pii": residual},
        params={"checks": checks},
    )


def _recount_classes(out: pl.DataFrame, policy: Policy) -> None:
    """Re-count the output's equivalence classes from scratch (a polars group-by of the
    published quasi-identifiers, independent of the search) and refuse a class smaller
    than k, or with fewer than l distinct sensitive values under distinct l-diversity."""
    qis = [c for c in policy.columns_with_role("quasi_identifier") if c in out.columns]
    if not qis or not out.height:
        return
    published = out.lazy()
    if policy.privacy.suppressed_records == "mask":
        starred = pl.all_horizontal([pl.col(c).cast(pl.String) == "*" for c in qis])
        published = published.filter(~starred)
    sensitive = policy.columns_with_role("sensitive")
    aggs = [pl.len().alias("size")]
    ld = policy.privacy.l_diversity
    if ld is not None and ld.variant == "distinct" and len(sensitive) == 1:
        aggs.append(pl.col(sensitive[0]).n_unique().alias("distinct"))
    classes = published.group_by(qis).agg(aggs).collect()
    if not classes.height:
        return
    smallest = int(classes.get_column("size").min())  # type: ignore[arg-type]
    if smallest < policy.privacy.k:
        raise PrivacyGuaranteeError(
            f"gate: an equivalence class of the output has {smallest} records, below "
            f"privacy.k={policy.privacy.k}; nothing was published"
        )
    if "distinct" in classes.columns and ld is not None:
        fewest = int(classes.get_column("distinct").min())  # type: ignore[arg-type]
        if fewest < ld.l:
            raise PrivacyGuaranteeError(
                f"gate: an equivalence class of the output has {fewest} distinct values of "
                f"{sensitive[0]!r}, below privacy.l_diversity.l={ld.l:g}; nothing was published"
            )


def _residual_pii(
    out: pl.DataFrame, policy: Policy, scanner: TextScanner
) -> dict[str, dict[str, int]]:
    """Cells per entity that Presidio finds in each text column of the output."""
    found: dict[str, dict[str, int]] = {}
    for column, dtype in out.schema.items():
        if dtype != pl.String or policy.columns[column].rule in _BY_CONSTRUCTION:
            continue
        values = out.get_column(column)
        free_text = policy.columns[column].rule == "scrub"
        if not free_text and values.len() > GATE_SAMPLE_ROWS:
            values = values.sample(GATE_SAMPLE_ROWS, seed=0)
        counts: dict[str, int] = {}
        for spans in scanner.scan(values.to_list()):
            # In short structured cells (tokens, masked values, codes) the NER model is
            # guesswork; there only pattern matches count. Free text counts everything.
            for entity in {span.entity_type for span in spans if free_text or not span.from_ner}:
                counts[entity] = counts.get(entity, 0) + 1
        if counts:
            found[column] = counts
    return found


def _verbatim_leaks(raw: pl.DataFrame, out: pl.DataFrame, policy: Policy) -> list[tuple[str, str]]:
    """(protected column, output column) pairs where a protected value appears as a cell.

    One hash join of every output column's distinct values against the distinct
    protected values, not a scan per pair of columns.
    """
    protected = [
        n for n, s in policy.columns.items() if s.rule in _DIRECT_RULES and s.type == "string"
    ]
    text_out = [c for c, t in out.schema.items() if t == pl.String]
    if not protected or not text_out:
        return []
    values = (
        pl.concat(
            [
                raw.lazy().select(pl.col(c).alias("value"), pl.lit(c).alias("source"))
                for c in protected
            ]
        )
        .filter(pl.col("value").str.len_chars() >= 3)
        .unique()
    )
    cells = pl.concat(
        [
            out.lazy().select(pl.col(dst).unique().alias("value"), pl.lit(dst).alias("dst"))
            for dst in text_out
        ]
    )
    hits = cells.join(values, on="value", how="inner").select("source", "dst").unique()
    return sorted(hits.collect().iter_rows())


def publish(
    frame: pl.DataFrame,
    policy: Policy,
    out_dir: Path,
    *,
    keys: KeyEncryptionProvider,
    input_path: Path,
    input_sha256: str,
    run_id: str,
    stages: list[dict[str, Any]],
    audit_trail: Path | None = None,
) -> dict[str, Any]:
    """Write the sanitized data (sealed unless the policy says otherwise) and its
    manifest, each atomically; returns the manifest."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression=policy.outputs.compression)
    content_sha256 = hashlib.sha256(buffer.getbuffer()).hexdigest()
    sealed = policy.outputs.seal
    data_path = out_dir / (SEALED_DATA_FILE if sealed else DATA_FILE)
    kek_id = None
    with atomic_path(data_path) as tmp, tmp.open("wb") as sink:
        if sealed:
            with SealedWriter(sink, keys, published_associated_data(policy)) as writer:
                writer.write(buffer.getbuffer())
            kek_id = writer.header.kek_id
        else:
            sink.write(buffer.getbuffer())
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
        "input": {"path": str(input_path), "sha256": input_sha256, "rows": stages[0]["rows_in"]},
        "vault": {
            "path": str(Path(vault["path"]).relative_to(out_dir)),
            "sha256": vault["sha256"],
            "kek_id": vault["kek_id"],
        },
        "output": {
            "path": data_path.name,
            "sha256": sha256_file(data_path),
            "content_sha256": content_sha256,
            "rows": frame.height,
            "columns": frame.columns,
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


def published_associated_data(policy: Policy) -> dict[str, str]:
    """What a published sealed file is bound to: opening it as another data set's output,
    or under another policy, fails."""
    return {"artifact": "published", "dataset": policy.name, "policy_sha256": policy.hash}


def _nulls(frame: pl.DataFrame) -> dict[str, int]:
    return {
        name: int(count)
        for name, count in zip(frame.columns, frame.null_count().row(0), strict=True)
    }
