"""The gate: the one place that decides what may be published. It fails closed."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import polars as pl

from privacy.detect import TextScanner, holds_text
from privacy.errors import PrivacyGuaranteeError
from privacy.policy import Policy
from privacy.stages.record import StageRecord

__all__ = ["GATE_SAMPLE_ROWS", "Gate", "gate"]

GATE_SAMPLE_ROWS = 2000  # rows of each structured text column the gate re-scans
_DIRECT_RULES = ("drop", "redact", "mask", "pseudonymize")
# Rules whose output cannot hold what they replaced (keyed tokens, a constant, mask
# characters): the residual scan would only find false positives in them (a hex token
# matching a licence-number pattern, say).
_SEED = 0x5EED  # of the gate's value hashes (fixed: every partition hashes alike)


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
        # quasi-identifiers that hold text: the search rewrites them to labels made of
        # their input values, which the residual scan reads as those values (at finish)
        self._qi_text = [c for c in self._qis if holds_text(policy.columns[c])]
        self._qi_raw: dict[str, set[str]] = {c: set() for c in self._qi_text}
        self._qi_out: dict[str, set[str]] = {c: set() for c in self._qi_text}

    def add(self, raw: pl.DataFrame | pl.LazyFrame, out: pl.DataFrame) -> Gate:
        """Take in one partition: its input rows and its output rows. A lazy ``raw``
        is read for its row count and the direct identifiers' columns only (what the
        gate compares the output against), not whole."""
        declared_out = [n for n, s in self.policy.columns.items() if s.rule != "drop"]
        unexpected = [c for c in out.columns if c not in declared_out]
        if unexpected:
            raise PrivacyGuaranteeError(
                f"gate: output column {', '.join(map(repr, unexpected))} is dropped or "
                "undeclared in the policy; nothing was published",
                guarantee="columns",
                required="declared, not dropped",
                achieved=f"{len(unexpected)} other",
            )
        if isinstance(raw, pl.LazyFrame):
            rows = int(raw.select(pl.len()).collect().item())
            raw = raw.select(*self._sources, *self._qi_text).collect()
        else:
            rows = raw.height
        for column in self._qi_text:
            self._qi_raw[column].update(
                raw.get_column(column).cast(pl.String).drop_nulls().unique().to_list()
            )
            if column in out.columns:
                values = out.get_column(column).cast(pl.String).drop_nulls().unique()
                self._qi_out[column].update(values.to_list())
        self.rows_in += rows
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
            found = _residual_pii(out.drop(self._qi_text), self.policy, self.scanner, sample)
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
                f"gate: {lost} rows removed, over privacy.max_suppression; nothing was published",
                guarantee="suppression",
                required=policy.privacy.max_suppression,
                achieved=round(lost / self.rows_in, 6) if self.rows_in else float(lost),
            )
        self._recount_classes()
        if self.scanner is not None:
            self._scan_quasi_identifiers()
        leaks = self._verbatim_leaks()
        if leaks:
            where = ", ".join(f"{src!r} in {dst!r}" for src, dst in leaks)
            raise PrivacyGuaranteeError(
                f"gate: values of protected columns appear verbatim in the output ({where}); "
                "nothing was published",
                guarantee="verbatim-identifiers",
                required=0,
                achieved=len(leaks),
            )
        for column, entities in self._residual.items():
            allowed = policy.columns[column].acknowledge_pii
            unexplained = {e: n for e, n in entities.items() if e not in allowed}
            if unexplained:
                entity, cells = max(unexplained.items(), key=lambda item: item[1])
                raise PrivacyGuaranteeError(
                    f"gate: residual PII in output column {column!r}: {entity} in {cells} "
                    f"checked cells; nothing was published (transform the column, or list "
                    f"{entity} under columns.{column}.acknowledge_pii if it is kept on purpose)",
                    guarantee="residual-pii",
                    required=0,
                    achieved=sum(unexplained.values()),
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
                f"privacy.k={self.policy.privacy.k}; nothing was published",
                guarantee="k",
                required=self.policy.privacy.k,
                achieved=smallest,
            )
        ld = self.policy.privacy.l_diversity
        if distinct and ld is not None:
            fewest = int(classes.get_column("distinct").min())  # type: ignore[arg-type]
            if fewest < ld.l:
                raise PrivacyGuaranteeError(
                    f"gate: an equivalence class of the output has {fewest} distinct values "
                    f"of {distinct[0]!r}, below privacy.l_diversity.l={ld.l:g}; nothing was "
                    "published",
                    guarantee="l",
                    required=ld.l,
                    achieved=fewest,
                )

    def _scan_quasi_identifiers(self) -> None:
        """The residual scan of the quasi-identifiers that hold text, over their distinct
        published values, each read as the input values it is made of: a Mondrian range
        ``02720-02864`` as ``02720`` and ``02864``, a set ``{Mexico|Poland}`` as its
        members, so that a label the search joined from two ZIP codes is not taken for a
        phone number. A value not made of input values (a hierarchy's label, ``*``, or
        anything else) is scanned as it stands. Counts are of distinct values."""
        assert self.scanner is not None
        for column in self._qi_text:
            raw = self._qi_raw[column]
            values = sorted(
                {m for v in self._qi_out[column] for m in _label_members(v, raw) if m != "*"}
            )
            if len(values) > GATE_SAMPLE_ROWS:
                values = pl.Series(values).sample(GATE_SAMPLE_ROWS, seed=0).to_list()
            counts: dict[str, int] = {}
            for spans in self.scanner.scan(values):
                for entity in {span.entity_type for span in spans if not span.from_ner}:
                    counts[entity] = counts.get(entity, 0) + 1
            if counts:
                cell = self._residual.setdefault(column, {})
                for entity, n in counts.items():
                    cell[entity] = cell.get(entity, 0) + n

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


def _label_members(value: str, raw: set[str]) -> list[str]:
    """The input values a published quasi-identifier value is made of: itself where it
    is an input value; the members of a set label ``{a|b}`` or the ends of a range label
    ``lo-hi`` where each is an input value; otherwise the value itself."""
    if value in raw:
        return [value]
    if value.startswith("{") and value.endswith("}"):
        members = value[1:-1].split("|")
        if all(m in raw for m in members):
            return members
    at = value.find("-")
    while at > 0:
        low, high = value[:at], value[at + 1 :]
        if low in raw and high in raw:
            return [low, high]
        at = value.find("-", at + 1)
    return [value]


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
    """Cells per entity that Presidio finds in each text column of the output. A column
    the policy types as a number, date or boolean is no text column: its cells are
    typed values or their hierarchy's labels ("20-29"), and the detect stage does not
    scan it either; so a policy without text loads no Presidio or spaCy model."""
    found: dict[str, dict[str, int]] = {}
    for column, dtype in out.schema.items():
        if dtype != pl.String or not holds_text(policy.columns[column]):
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
