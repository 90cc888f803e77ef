"""The sanitize stages: ingest, detect, transform, anonymize, gate, publish.

Each stage is a plain function over a polars frame and the policy that returns the new
frame (where it makes one) and a :class:`StageRecord`: counts, parameters and outcome,
never a value from the data. The Prefect flow strings them together; nothing here
knows about Prefect.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import polars as pl

from privacy import __version__, kanon
from privacy.crypto import KeyEncryptionProvider, KeyProvider, SealedWriter, is_sealed
from privacy.detect import TextScanner, classify_columns
from privacy.errors import PrivacyGuaranteeError
from privacy.hashing import ContentKey
from privacy.io import (
    SEALED_SUFFIX,
    atomic_path,
    atomic_write_json,
    plain_name,
    plaintext_blocks,
    read_input_batches,
    sha256_file,
)
from privacy.policy import Policy
from privacy.transform import apply_policy

__all__ = [
    "DATA_FILE",
    "DEFAULT_PARTITION_ROWS",
    "SEALED_DATA_FILE",
    "VAULT_DIR",
    "AUDIT_FILE",
    "MANIFEST_FILE",
    "Gate",
    "StageRecord",
    "anonymize",
    "count",
    "detect",
    "gate",
    "ingest",
    "merge_records",
    "plan_anonymization",
    "publish",
    "published_associated_data",
    "transform",
]

DEFAULT_PARTITION_ROWS = 500_000  # rows per partition of a sanitize run
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
_SEED = 0x5EED  # of the gate's value hashes (fixed: every partition hashes alike)


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


class _Timer:
    def __enter__(self) -> _Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = round(time.perf_counter() - self.start, 4)


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
    with _Timer() as timer:
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
        with (
            atomic_path(vault) as tmp,
            tmp.open("wb") as sink,
            SealedWriter(sink, keys, associated) as writer,
        ):
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


def count(frame: pl.DataFrame, policy: Policy, *, row_offset: int = 0) -> pl.DataFrame | None:
    """Records per combination of quasi-identifier (and sensitive) values of a
    transformed frame or partition: all the anonymize stage needs from it (``None``
    where the policy names no quasi-identifier)."""
    qis = policy.columns_with_role("quasi_identifier")
    if not qis:
        return None
    sensitive = policy.columns_with_role("sensitive")
    return kanon.count_records(
        frame, qis, sensitive[0] if len(sensitive) == 1 else None, row_offset=row_offset
    )


def plan_anonymization(
    counts: Sequence[pl.DataFrame] | None,
    policy: Policy,
    progress: Callable[[int, int], None] | None = None,
    *,
    rows: int,
) -> tuple[kanon.Rewrite | None, StageRecord]:
    """The anonymize stage's decision, from the counts of every partition (merged):
    the generalization search, suppression, and the re-identification risk before and
    after. ``None`` (nothing to rewrite) where there are no quasi-identifiers or rows."""
    with _Timer() as timer:
        qis = policy.columns_with_role("quasi_identifier")
        rewrite = None
        if not counts or not rows:
            records_out, summary = rows, {"quasi_identifiers": qis}
        else:
            merged = counts[0] if len(counts) == 1 else kanon.merge_counts(counts)
            merged = merged.with_columns(pl.col(pl.Categorical).cast(pl.String))
            rewrite, result = kanon.plan(merged, policy, progress=progress)
            records_out, summary = result.records_out, result.summary()
    privacy = policy.privacy
    return rewrite, StageRecord(
        "anonymize",
        rows_in=rows,
        rows_out=records_out,
        duration_s=timer.seconds,
        counts=summary,
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


def anonymize(
    frame: pl.DataFrame,
    policy: Policy,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pl.DataFrame, StageRecord]:
    """Make the quasi-identifiers k-anonymous (and l-diverse, t-close where the policy
    asks): :func:`count`, :func:`plan_anonymization`, and the rewrite of ``frame``."""
    started = time.perf_counter()
    counts = count(frame, policy)
    rewrite, record = plan_anonymization(
        None if counts is None else [counts], policy, progress, rows=frame.height
    )
    out = frame if rewrite is None else kanon.apply(frame, rewrite)
    record.duration_s = round(time.perf_counter() - started, 4)
    return out, record


def merge_records(stage: str, records: Sequence[Mapping[str, Any]]) -> StageRecord:
    """One record for a stage that ran per partition: rows summed, the transform's
    per-column counts summed, the shares of PII detection weighted by the rows each
    partition sampled; the slowest partition's time (the flow records the wall time)."""
    first = records[0]
    merged = StageRecord(
        stage,
        rows_in=sum(r["rows_in"] for r in records),
        rows_out=sum(r["rows_out"] for r in records),
        duration_s=max(r["duration_s"] for r in records),
        status=first["status"],
        counts=dict(first["counts"]),
        params=dict(first["params"]),
    )
    if stage == "detect":
        sample = first["params"]["sample_rows"]
        weights = [min(sample, r["rows_in"]) for r in records]
        found: dict[str, dict[str, float]] = {}
        for record, weight in zip(records, weights, strict=True):
            for column, entities in record["counts"]["pii_found"].items():
                for entity, share in entities.items():
                    cell = found.setdefault(column, {})
                    cell[entity] = cell.get(entity, 0.0) + share * weight
        total = sum(weights) or 1
        merged.counts["pii_found"] = {
            c: {e: round(v / total, 4) for e, v in entities.items()}
            for c, entities in found.items()
        }
    elif stage == "transform":
        stats: dict[str, dict[str, int]] = {}
        for record in records:
            for column, figures in record["counts"].items():
                if isinstance(figures, dict):
                    sums = stats.setdefault(column, {})
                    for name, value in figures.items():
                        sums[name] = sums.get(name, 0) + value
        merged.counts.update(stats)
    merged.counts["partitions"] = len(records)
    return merged


class Gate:
    """The gate: checks the output before anything is published, and fails closed.

    Fed the input and output of each partition in turn (:meth:`add`), it keeps only
    what the whole-data checks need (class counts, hashes of protected values and of
    output cells), so memory is bounded by a partition; :meth:`finish` judges.

    Refuses: a column the policy drops, or never declared; more rows lost than the
    suppression limit allows; an equivalence class of the output below k (or below l
    distinct sensitive values, for distinct l-diversity), re-counted here from the
    output rows, independently of the search; any cell of the output that equals,
    verbatim, a value of a column the policy drops, redacts, masks or pseudonymizes
    (compared by 64-bit hash: a collision can only fail a run, never pass a leak); and,
    with a ``scanner``, any personal data Presidio still finds in a text column (every
    cell of a scrubbed column; a sample of the others, where only pattern matches
    count) that the column does not acknowledge.
    """

    def __init__(
        self, policy: Policy, scanner: TextScanner | None = None, *, total_rows: int | None = None
    ) -> None:
        self.policy = policy
        self.scanner = scanner
        self.total_rows = total_rows
        self.rows_in = 0
        self.rows_out = 0
        self.started = time.perf_counter()
        self._classes: list[pl.DataFrame] = []
        self._protected: pl.DataFrame | None = None
        self._cells: pl.DataFrame | None = None
        self._text_out: list[str] = []
        self._residual: dict[str, dict[str, int]] = {}
        self._qis = policy.columns_with_role("quasi_identifier")
        self._sources = [
            n for n, s in policy.columns.items() if s.rule in _DIRECT_RULES and s.type == "string"
        ]

    def add(self, raw: pl.DataFrame, out: pl.DataFrame) -> Gate:
        """Take in one partition: its input rows and its output rows."""
        declared_out = [n for n, s in self.policy.columns.items() if s.rule != "drop"]
        unexpected = [c for c in out.columns if c not in declared_out]
        if unexpected:
            raise PrivacyGuaranteeError(
                f"gate: output column {', '.join(map(repr, unexpected))} is dropped or "
                "undeclared in the policy; nothing was published"
            )
        self.rows_in += raw.height
        self.rows_out += out.height
        classes = self._class_counts(out)
        if classes is not None:
            self._classes.append(classes)
        # distinct 64-bit hashes, tagged by column number: a few bytes per value, merged
        # with what earlier partitions left, so nothing is held twice
        self._protected = _distinct_hashes(raw, self._sources, self._protected, min_chars=3)
        self._text_out = [c for c, t in out.schema.items() if t == pl.String]
        self._cells = _distinct_hashes(out, self._text_out, self._cells)
        if self.scanner is not None:
            share = out.height / self.total_rows if self.total_rows else 1.0
            sample = max(1, math.ceil(GATE_SAMPLE_ROWS * min(share, 1.0)))
            found = _residual_pii(out, self.policy, self.scanner, sample)
            for column, entities in found.items():
                cell = self._residual.setdefault(column, {})
                for entity, n in entities.items():
                    cell[entity] = cell.get(entity, 0) + n
        return self

    def _class_counts(self, out: pl.DataFrame) -> pl.DataFrame | None:
        qis = [c for c in self._qis if c in out.columns]
        if not qis or not out.height:
            return None
        published = out.lazy()
        if self.policy.privacy.suppressed_records == "mask":
            starred = pl.all_horizontal([pl.col(c).cast(pl.String) == "*" for c in qis])
            published = published.filter(~starred)
        keys = [*qis, *self._distinct_column()]
        return published.group_by(keys).agg(pl.len().alias("size")).collect()

    def _distinct_column(self) -> list[str]:
        sensitive = self.policy.columns_with_role("sensitive")
        ld = self.policy.privacy.l_diversity
        if ld is not None and ld.variant == "distinct" and len(sensitive) == 1:
            return sensitive
        return []

    def finish(self) -> StageRecord:
        """Judge the whole output; raises :class:`PrivacyGuaranteeError` on any failure."""
        policy = self.policy
        lost = self.rows_in - self.rows_out
        if lost < 0 or lost > policy.privacy.max_suppression * self.rows_in:
            raise PrivacyGuaranteeError(
                f"gate: {lost} rows removed, over privacy.max_suppression; nothing was published"
            )
        self._recount_classes()
        leaks = self._verbatim_leaks()
        if leaks:
            where = ", ".join(f"{src!r} in {dst!r}" for src, dst in leaks)
            raise PrivacyGuaranteeError(
                f"gate: values of protected columns appear verbatim in the output ({where}); "
                "nothing was published"
            )
        for column, entities in self._residual.items():
            allowed = policy.columns[column].acknowledge_pii
            unexplained = {e: n for e, n in entities.items() if e not in allowed}
            if unexplained:
                entity, cells = max(unexplained.items(), key=lambda item: item[1])
                raise PrivacyGuaranteeError(
                    f"gate: residual PII in output column {column!r}: {entity} in {cells} "
                    f"checked cells; nothing was published (transform the column, or list "
                    f"{entity} under columns.{column}.acknowledge_pii if it is kept on purpose)"
                )
        checks = ["columns", "suppression", "k-anonymity-recount", "verbatim-identifiers"]
        if self.scanner is not None:
            checks.append("residual-pii")
        return StageRecord(
            "gate",
            rows_in=self.rows_out,
            rows_out=self.rows_out,
            duration_s=round(time.perf_counter() - self.started, 4),
            counts={"checks": len(checks), "verbatim_leaks": 0, "residual_pii": self._residual},
            params={"checks": checks},
        )

    def _recount_classes(self) -> None:
        if not self._classes:
            return
        qis = [c for c in self._qis if c in self._classes[0].columns]
        distinct = self._distinct_column()
        aggs = [pl.col("size").sum()]
        if distinct:
            aggs.append(pl.col(distinct[0]).n_unique().alias("distinct"))
        classes = pl.concat(self._classes).group_by(qis).agg(aggs)
        if not classes.height:
            return
        smallest = int(classes.get_column("size").min())  # type: ignore[arg-type]
        if smallest < self.policy.privacy.k:
            raise PrivacyGuaranteeError(
                f"gate: an equivalence class of the output has {smallest} records, below "
                f"privacy.k={self.policy.privacy.k}; nothing was published"
            )
        ld = self.policy.privacy.l_diversity
        if distinct and ld is not None:
            fewest = int(classes.get_column("distinct").min())  # type: ignore[arg-type]
            if fewest < ld.l:
                raise PrivacyGuaranteeError(
                    f"gate: an equivalence class of the output has {fewest} distinct values "
                    f"of {distinct[0]!r}, below privacy.l_diversity.l={ld.l:g}; nothing was "
                    "published"
                )

    def _verbatim_leaks(self) -> list[tuple[str, str]]:
        """(protected column, output column) pairs where a protected value appears as a
        cell: one hash join of the distinct hashes, not a scan per pair of columns."""
        if self._protected is None or self._cells is None:
            return []
        hits = (
            self._cells.rename({"column": "dst"})
            .join(self._protected.rename({"column": "source"}), on="h", how="inner")
            .select("source", "dst")
            .unique()
        )
        return sorted(
            (self._sources[source], self._text_out[dst]) for source, dst in hits.iter_rows()
        )


def _distinct_hashes(
    frame: pl.DataFrame,
    columns: Sequence[str],
    previous: pl.DataFrame | None,
    *,
    min_chars: int = 0,
) -> pl.DataFrame | None:
    """Distinct (64-bit hash, column number) pairs of the non-null values of ``columns``
    (of at least ``min_chars`` characters), merged with ``previous``."""
    if not columns:
        return previous
    parts = [
        frame.lazy()
        .select(pl.col(c).filter(pl.col(c).str.len_chars() >= min_chars).hash(_SEED).alias("h"))
        .unique()
        .with_columns(pl.lit(i, dtype=pl.UInt16).alias("column"))
        for i, c in enumerate(columns)
    ]
    if previous is not None:
        parts.append(previous.lazy())
    return pl.concat(parts).unique().collect()


def gate(
    raw: pl.DataFrame,
    out: pl.DataFrame,
    policy: Policy,
    scanner: TextScanner | None = None,
) -> StageRecord:
    """The :class:`Gate` over one whole frame and its output; fails closed."""
    return Gate(policy, scanner, total_rows=raw.height).add(raw, out).finish()


def _residual_pii(
    out: pl.DataFrame, policy: Policy, scanner: TextScanner, sample: int = GATE_SAMPLE_ROWS
) -> dict[str, dict[str, int]]:
    """Cells per entity that Presidio finds in each text column of the output."""
    found: dict[str, dict[str, int]] = {}
    for column, dtype in out.schema.items():
        if dtype != pl.String or policy.columns[column].rule in _BY_CONSTRUCTION:
            continue
        values = out.get_column(column)
        free_text = policy.columns[column].rule == "scrub"
        if not free_text and values.len() > sample:
            values = values.sample(sample, seed=0)
        counts: dict[str, int] = {}
        for spans in scanner.scan(values.to_list()):
            # In short structured cells (tokens, masked values, codes) the NER model is
            # guesswork; there only pattern matches count. Free text counts everything.
            for entity in {span.entity_type for span in spans if free_text or not span.from_ner}:
                counts[entity] = counts.get(entity, 0) + 1
        if counts:
            found[column] = counts
    return found


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
    with atomic_path(data_path) as tmp, tmp.open("wb") as sink:
        if sealed:
            bound = published_associated_data(policy, input_digest)
            with SealedWriter(sink, keys, bound) as writer:
                hashed = _HashingSink(writer)
                lazy.sink_parquet(cast(IO[bytes], hashed), compression=policy.outputs.compression)
            kek_id = writer.header.kek_id
        else:
            hashed = _HashingSink(sink)
            lazy.sink_parquet(cast(IO[bytes], hashed), compression=policy.outputs.compression)
    content_sha256 = hashed.digest.hexdigest()
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
            "sha256": sha256_file(data_path),
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


class _HashingSink(io.RawIOBase):
    """Passes writes through to ``sink`` and hashes them (the plaintext's SHA-256)."""

    def __init__(self, sink: Any) -> None:
        super().__init__()
        self._sink = sink
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.digest.update(data)
        self._sink.write(data)
        return memoryview(data).nbytes


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


def _nulls(frame: pl.DataFrame) -> dict[str, int]:
    return {
        name: int(count)
        for name, count in zip(frame.columns, frame.null_count().row(0), strict=True)
    }
