"""k-anonymity for a data set under a policy: search, apply, re-count, and risk.

:func:`anonymize` is what the sanitize flow's ``anonymize`` stage runs: it counts the
records per combination of quasi-identifier values, builds each quasi-identifier's
hierarchy, finds the generalization (optimal full-domain search, or Mondrian), rewrites
the quasi-identifiers of the frame, suppresses the classes that fail a privacy model
(removed, or kept with every quasi-identifier ``*``), and reports k, l, t achieved (by
an independent re-count of the output), the metrics, the chosen node and the risk before
and after. Nothing it reports holds a value from the data.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from privacy.errors import PolicyError, PrivacyGuaranteeError
from privacy.kanon._counts import COUNT, as_text, count_records, merge_counts
from privacy.kanon._hierarchy import (
    TOP,
    CodedHierarchy,
    build_hierarchy,
    read_arx_hierarchy,
)
from privacy.kanon._lattice import Lattice
from privacy.kanon._models import (
    DistinctLDiversity,
    EntropyLDiversity,
    KAnonymity,
    PrivacyModel,
    RecursiveCLDiversity,
    TCloseness,
    class_entropy,
)
from privacy.kanon._mondrian import mondrian
from privacy.kanon._risk import risk_figures
from privacy.policy import FileHierarchy, Policy

__all__ = [
    "KAnonResult",
    "Rewrite",
    "Setup",
    "anonymize",
    "apply",
    "assess_risk",
    "plan",
    "prepare",
]

Progress = Callable[[int, int], None]


@dataclass
class Setup:
    """Everything the search needs, built from the counts and the policy."""

    quasi_identifiers: list[str]
    sensitive: str | None
    counts: pl.DataFrame
    hierarchies: list[CodedHierarchy]
    sensitive_hierarchy: CodedHierarchy | None
    sensitive_domain: list[str] | None
    models: list[PrivacyModel]


@dataclass
class KAnonResult:
    """What the anonymize stage did, safe to record: figures, levels, never values."""

    algorithm: str
    metric: str
    quasi_identifiers: list[str]
    node: dict[str, int] | None
    records_in: int
    records_out: int
    suppressed: int
    suppressed_records: str
    classes: int
    achieved: dict[str, float | None]
    metrics: dict[str, float | None]
    risk_before: dict[str, Any]
    risk_after: dict[str, Any]
    search: dict[str, float] = field(default_factory=dict)
    class_sizes: list[dict[str, Any]] = field(default_factory=list)
    # per quasi-identifier: distinct values before and after, share of cells at the top
    information: dict[str, dict[str, float]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "metric": self.metric,
            "quasi_identifiers": self.quasi_identifiers,
            "node": self.node,
            "records_in": self.records_in,
            "records_out": self.records_out,
            "suppressed": self.suppressed,
            "suppressed_records": self.suppressed_records,
            "classes": self.classes,
            **self.achieved,
            **self.metrics,
            "risk_before": self.risk_before,
            "risk_after": self.risk_after,
            "class_sizes": self.class_sizes,
            "information": self.information,
            "search": self.search,
        }


# --------------------------------------------------------------------------- setup


def _sensitive_column(policy: Policy) -> str | None:
    sensitive = policy.columns_with_role("sensitive")
    return sensitive[0] if len(sensitive) == 1 else None


def _hierarchy(policy: Policy, column: str, values: Sequence[str]) -> CodedHierarchy:
    spec = policy.columns[column]
    hierarchy = spec.hierarchy
    if isinstance(hierarchy, FileHierarchy):
        return read_arx_hierarchy(policy.resolve_path(hierarchy.path), column, hierarchy.separator)
    if spec.type in ("integer", "float") and hierarchy is not None:
        return build_hierarchy(
            column, [float(v) for v in values], hierarchy, integer=spec.type == "integer"
        )
    if spec.type in ("date", "datetime") and hierarchy is not None:
        return build_hierarchy(column, [date.fromisoformat(v) for v in values], hierarchy)
    return build_hierarchy(column, list(values), hierarchy)


def prepare(counts: pl.DataFrame, policy: Policy) -> Setup:
    """Hierarchies and privacy models for ``counts`` (from :func:`count_records` over
    the policy's quasi-identifiers and its sensitive column)."""
    qis = policy.columns_with_role("quasi_identifier")
    sensitive = _sensitive_column(policy)
    hierarchies = [
        _hierarchy(policy, c, counts.get_column(c).drop_nulls().unique().to_list()) for c in qis
    ]
    privacy = policy.privacy
    models: list[PrivacyModel] = [KAnonymity(privacy.k)]
    sensitive_hierarchy = None
    sensitive_domain = None
    if sensitive is not None and sensitive in counts.columns:
        values = counts.get_column(sensitive).drop_nulls().unique().to_list()
        spec = policy.columns[sensitive]
        if spec.hierarchy is not None:
            sensitive_hierarchy = _hierarchy(policy, sensitive, values)
            sensitive_domain = list(sensitive_hierarchy.domain)
        elif spec.type in ("integer", "float"):
            sensitive_domain = sorted(values, key=float)
        else:
            sensitive_domain = sorted(values)
    if privacy.l_diversity is not None:
        ld = privacy.l_diversity
        if ld.variant == "distinct":
            models.append(DistinctLDiversity(ld.l))
        elif ld.variant == "entropy":
            models.append(EntropyLDiversity(ld.l))
        else:
            assert ld.c is not None  # the policy requires it
            models.append(RecursiveCLDiversity(ld.c, ld.l))
    if privacy.t_closeness is not None:
        assert sensitive is not None and sensitive_domain is not None
        tc = privacy.t_closeness
        distance = tc.distance
        if distance == "auto":
            if sensitive_hierarchy is not None:
                distance = "hierarchical"
            elif policy.columns[sensitive].type in ("integer", "float"):
                distance = "ordered"
            else:
                distance = "equal"
        if distance == "hierarchical" and sensitive_hierarchy is None:
            raise PolicyError(
                f"privacy.t_closeness.distance: hierarchical needs a hierarchy on column "
                f"{sensitive!r}"
            )
        overall = (
            counts.group_by(sensitive)
            .agg(pl.col(COUNT).sum())
            .join(pl.DataFrame({sensitive: sensitive_domain}), on=sensitive, how="right")
            .get_column(COUNT)
            .fill_null(0)
            .to_numpy()
            .astype(np.int64)
        )
        models.append(TCloseness(tc.t, overall, distance, sensitive_hierarchy))
    return Setup(qis, sensitive, counts, hierarchies, sensitive_hierarchy, sensitive_domain, models)


def lattice(setup: Setup, policy: Policy, metric: str | None = None) -> Lattice:
    return Lattice(
        setup.counts,
        setup.hierarchies,
        setup.models,
        max_suppression=policy.privacy.max_suppression,
        sensitive=setup.sensitive if setup.sensitive in setup.counts.columns else None,
        sensitive_domain=setup.sensitive_domain,
        metric=metric or _metric_name(policy),
    )


def _metric_name(policy: Policy) -> str:
    return policy.privacy.metric


# --------------------------------------------------------------------------- apply


def _generalized(
    frame: pl.DataFrame, column: str, domain: Sequence[str], labels: Sequence[str]
) -> pl.Expr:
    dtype = frame.schema[column]
    return as_text(pl.col(column), dtype).replace_strict(
        list(domain), list(labels), return_dtype=pl.String
    )


@dataclass
class Rewrite:
    """How to rewrite a frame's quasi-identifiers: the chosen generalization (a value ->
    label map per column, or Mondrian's table of labels per combination) and the labels
    of the classes to suppress. It holds values of the data: keep it sealed at rest.

    Planned once from the merged counts, applied to each partition on its own, so the
    partitions of one data set are rewritten exactly as the whole would be."""

    quasi_identifiers: list[str]
    failing: pl.DataFrame
    suppressed_records: str
    maps: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    table: pl.DataFrame | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "quasi_identifiers": self.quasi_identifiers,
            "failing": self.failing.to_dict(as_series=False),
            "suppressed_records": self.suppressed_records,
            "maps": {c: [list(d), list(lab)] for c, (d, lab) in self.maps.items()},
            "table": None if self.table is None else self.table.to_dict(as_series=False),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rewrite:
        def frame(columns: dict[str, list[Any]]) -> pl.DataFrame:
            return pl.DataFrame(columns, schema={c: pl.String for c in columns})

        return cls(
            quasi_identifiers=list(data["quasi_identifiers"]),
            failing=frame(data["failing"]),
            suppressed_records=data["suppressed_records"],
            maps={c: (d, lab) for c, (d, lab) in data["maps"].items()},
            table=None if data["table"] is None else frame(data["table"]),
        )


def anonymize(
    frame: pl.DataFrame,
    policy: Policy,
    *,
    counts: pl.DataFrame | None = None,
    progress: Progress | None = None,
) -> tuple[pl.DataFrame, KAnonResult]:
    """``frame`` with its quasi-identifiers generalized and the failing classes
    suppressed, as the policy says; and what was done (:func:`plan` on the counts of
    ``frame``, then :func:`apply`)."""
    if counts is None:
        counts = count_records(
            frame, policy.columns_with_role("quasi_identifier"), _sensitive_column(policy)
        )
    rewrite, result = plan(counts, policy, progress=progress)
    return apply(frame, rewrite), result


# Long: the search, the classes and the result in one place; issue 33 (Mondrian on
# integer codes, counts keyed by distinct combinations) rewrites it, so it is not split here.
def plan(
    counts: pl.DataFrame, policy: Policy, *, progress: Progress | None = None
) -> tuple[Rewrite, KAnonResult]:
    """Decide the anonymization from the record counts alone (from :func:`count_records`
    over the quasi-identifiers and the sensitive column; per partition and merged with
    :func:`merge_counts` for a partitioned data set): the search, the classes of the
    chosen generalization, which of them are suppressed, and what the output achieves.

    Raises :class:`PrivacyGuaranteeError` when more records would be suppressed than
    ``privacy.max_suppression`` allows."""
    started = time.perf_counter()
    qis = policy.columns_with_role("quasi_identifier")
    privacy = policy.privacy
    sensitive = _sensitive_column(policy)
    # the search splits the counts by sensitive value only where a model reads it
    needs_sensitive = (
        privacy.l_diversity is not None
        or privacy.t_closeness is not None
        or privacy.metric == "classification"
    )
    search_counts = counts
    if sensitive is not None and sensitive in counts.columns and not needs_sensitive:
        search_counts = merge_counts([counts.drop(sensitive)])
    setup = prepare(search_counts, policy)
    before = _class_sizes(counts, qis)
    records = int(counts.get_column(COUNT).sum())
    search: dict[str, float] = {}
    maps: dict[str, tuple[list[str], list[str]]] = {}
    labels_table = table = None
    if privacy.algorithm == "mondrian":
        labels_table, node, metrics = _mondrian_labels(setup, policy)
        general = _join_labels(counts, qis, labels_table)
    else:
        lat = lattice(setup, policy)
        result = lat.optimal(progress)
        levels = result.best.node
        node = dict(zip(qis, levels, strict=True))
        maps = {
            h.column: (list(h.domain), [h.labels[level][c] for c in h.codes[level]])
            for h, level in zip(setup.hierarchies, levels, strict=True)
        }
        metrics = node_metrics(lat, levels)
        search = {"nodes": result.nodes, "evaluated": result.evaluated, "pruned": result.pruned}
        if search_counts is counts and (
            sensitive is None or sensitive not in counts.columns or lat.needs_histogram
        ):
            # the search's own class table at the node: no relabelled copy of the counts
            ids, table = lat.group_classes(levels)
            sizes, hist = table.sizes.astype(np.int64), table.hist
            ok = _satisfied(setup, sizes, hist)
            failing = _failing_labels(counts, ids, ~ok, qis, maps)
        else:
            general = counts.with_columns(
                pl.col(c).replace_strict(d, lab, return_dtype=pl.String)
                for c, (d, lab) in maps.items()
            )
    if table is None:
        labels, sizes, hist = _classes(general, qis, sensitive, setup)
        ok = _satisfied(setup, sizes, hist)
        failing = labels.filter(pl.Series(~ok))
    suppressed = int(sizes[~ok].sum())
    if suppressed > privacy.max_suppression * records + 1e-9:
        raise PrivacyGuaranteeError(
            f"anonymize: {suppressed} records would be suppressed, over "
            "privacy.max_suppression; nothing was published",
            guarantee="suppression",
            required=privacy.max_suppression,
            achieved=round(suppressed / records, 6) if records else 0.0,
        )
    achieved = _achieved(sizes[ok], None if hist is None else hist[ok], setup)
    search["seconds"] = round(time.perf_counter() - started, 4)
    threshold = privacy.risk_threshold
    removed = suppressed if privacy.suppressed_records == "remove" else 0
    report = KAnonResult(
        algorithm=privacy.algorithm,
        metric=privacy.metric,
        quasi_identifiers=qis,
        node=node,
        records_in=records,
        records_out=records - removed,
        suppressed=suppressed,
        suppressed_records=privacy.suppressed_records,
        classes=int(ok.sum()),
        achieved=achieved,
        metrics=metrics,
        risk_before=risk_figures(before, threshold),
        risk_after=risk_figures(sizes[ok], threshold),
        search=search,
        class_sizes=size_histogram(sizes[ok]),
    )
    rewrite = Rewrite(
        quasi_identifiers=qis,
        failing=failing,
        suppressed_records=privacy.suppressed_records,
        maps=maps,
        table=labels_table,
    )
    report.information = information_kept(counts, rewrite)
    return rewrite, report


def information_kept(counts: pl.DataFrame, rewrite: Rewrite) -> dict[str, dict[str, float]]:
    """What the rewrite keeps of each quasi-identifier, from the record counts: distinct
    values before and distinct labels after (of the records published); how many input
    values a published label stands for, on average over the records (``1`` where the
    value is kept as it was, the ``distinct_before`` where it is ``*``); and the share of
    published cells generalized to the top of the hierarchy (``*``: nothing left) and
    the share of published cells that differ from the input value at all."""
    qis = rewrite.quasi_identifiers
    originals = [f"__original_{i}" for i in range(len(qis))]
    after = apply(
        counts.select([*qis, COUNT]).with_columns(
            pl.col(c).alias(o) for c, o in zip(qis, originals, strict=True)
        ),
        rewrite,
    )
    total = int(after.get_column(COUNT).sum()) if after.height else 0
    out: dict[str, dict[str, float]] = {}
    for column, original in zip(qis, originals, strict=True):
        values = after.get_column(column).cast(pl.String)
        top = int(after.filter(values == TOP).get_column(COUNT).sum()) if total else 0
        behind = after.with_columns(values.alias("__label")).with_columns(
            pl.col(original).n_unique().over("__label").alias("__behind")
        )
        spread = (
            float((behind.get_column("__behind") * behind.get_column(COUNT)).sum()) / total
            if total
            else 0.0
        )
        differs = values.ne_missing(after.get_column(original).cast(pl.String))
        changed = int(after.filter(differs).get_column(COUNT).sum()) if total else 0
        out[column] = {
            "distinct_before": int(counts.get_column(column).drop_nulls().n_unique()),
            "distinct_after": int(values.drop_nulls().n_unique()),
            "values_per_label": round(spread, 3),
            "top_share": round(top / total, 6) if total else 0.0,
            "changed_share": round(changed / total, 6) if total else 0.0,
        }
    return out


def _satisfied(
    setup: Setup, sizes: npt.NDArray[np.int64], hist: npt.NDArray[np.int64] | None
) -> npt.NDArray[np.bool_]:
    ok = np.ones(len(sizes), dtype=bool)
    for model in setup.models:
        ok &= model.satisfied(sizes, hist)
    return ok


def _failing_labels(
    counts: pl.DataFrame,
    ids: npt.NDArray[np.int64],
    failing: npt.NDArray[np.bool_],
    qis: Sequence[str],
    maps: dict[str, tuple[list[str], list[str]]],
) -> pl.DataFrame:
    """The labels of the failing classes: each class's first row of the counts, relabelled."""
    classes, first = np.unique(ids, return_index=True)
    rows = first[failing[classes]]
    return counts.select(qis)[rows].with_columns(
        pl.col(c).replace_strict(d, lab, return_dtype=pl.String) for c, (d, lab) in maps.items()
    )


def apply(frame: pl.DataFrame, rewrite: Rewrite) -> pl.DataFrame:
    """``frame`` (the whole data set, or any partition of it) rewritten by ``rewrite``:
    quasi-identifiers generalized, the records of failing classes removed or masked, in
    one lazy pass (one copy of the frame, not two)."""
    qis = rewrite.quasi_identifiers
    if rewrite.table is not None:
        out = _join_labels(frame, qis, rewrite.table, as_text_from=frame.schema).lazy()
    else:
        out = frame.lazy().with_columns(
            _generalized(frame, c, d, lab).alias(c) for c, (d, lab) in rewrite.maps.items()
        )
    failing = rewrite.failing
    if not failing.height:
        return out.collect()
    # few classes fail: a membership test of each row's labels, not a join of the frame
    hit = pl.struct(qis).is_in(failing.select(pl.struct(qis)).to_series().implode())
    if rewrite.suppressed_records == "remove":
        return out.filter(~hit).collect()
    starred = [pl.when(hit).then(pl.lit(TOP)).otherwise(pl.col(c)).alias(c) for c in qis]
    return out.with_columns(starred).collect()


_BINS = [(1, 1), (2, 4), (5, 9), (10, 19), (20, 49), (50, 99), (100, 499), (500, 999)]


def size_histogram(sizes: npt.NDArray[np.int64]) -> list[dict[str, Any]]:
    """Published classes and their records by class size (for the report's histogram)."""
    bins = [*_BINS, (1000, None)]
    out = []
    for low, high in bins:
        inside = sizes >= low if high is None else (sizes >= low) & (sizes <= high)
        label = f"{low}+" if high is None else (str(low) if low == high else f"{low}-{high}")
        out.append(
            {"size": label, "classes": int(inside.sum()), "records": int(sizes[inside].sum())}
        )
    return out


def _class_sizes(counts: pl.DataFrame, qis: Sequence[str]) -> npt.NDArray[np.int64]:
    if not qis:
        return np.array([counts.get_column(COUNT).sum()], dtype=np.int64)
    sizes = counts.group_by(qis).agg(pl.col(COUNT).sum()).get_column(COUNT)
    return sizes.to_numpy().astype(np.int64)


def _classes(
    general: pl.DataFrame, qis: Sequence[str], sensitive: str | None, setup: Setup
) -> tuple[pl.DataFrame, npt.NDArray[np.int64], npt.NDArray[np.int64] | None]:
    """The equivalence classes of the generalized counts: their labels (one row per
    class), sizes, and sensitive histograms (classes x sensitive values)."""
    keyed = general.with_columns(
        (pl.struct(qis).rank("dense").cast(pl.Int64) - 1).alias("__class")
        if qis
        else pl.lit(0, dtype=pl.Int64).alias("__class")
    )
    ids = keyed.get_column("__class").to_numpy()
    records = keyed.get_column(COUNT).to_numpy()
    classes = int(ids.max()) + 1 if len(ids) else 0
    sizes = np.bincount(ids, weights=records, minlength=classes).astype(np.int64)
    labels = keyed.group_by("__class").agg(pl.col(q).first() for q in qis).sort("__class")
    hist = None
    if sensitive is not None and sensitive in general.columns:
        domain = setup.sensitive_domain
        values = keyed.get_column(sensitive)
        if domain is None:  # no model reads it; the re-count still reports l
            domain = values.drop_nulls().unique().sort().to_list()
        codes = values.replace_strict(domain, list(range(len(domain))), return_dtype=pl.Int64)
        width = len(domain)
        flat = np.bincount(
            ids * width + codes.to_numpy(), weights=records, minlength=classes * width
        )
        hist = flat.astype(np.int64).reshape(classes, width)
    return labels.drop("__class"), sizes, hist


def _achieved(
    sizes: npt.NDArray[np.int64], hist: npt.NDArray[np.int64] | None, setup: Setup
) -> dict[str, float | None]:
    """k, l (distinct, and entropy l as exp(H)) and t of the published classes."""
    achieved: dict[str, float | None] = {
        "k_achieved": int(sizes.min()) if len(sizes) else None,
        "l_achieved": None,
        "entropy_l_achieved": None,
        "t_achieved": None,
    }
    if hist is not None and len(sizes):
        achieved["l_achieved"] = int((hist > 0).sum(axis=1).min())
        achieved["entropy_l_achieved"] = round(float(np.exp(class_entropy(hist).min())), 6)
        closeness = [m for m in setup.models if isinstance(m, TCloseness)]
        if closeness:
            achieved["t_achieved"] = round(float(closeness[0].distances(hist).max()), 6)
    return achieved


def node_metrics(lat: Lattice, node: tuple[int, ...]) -> dict[str, float | None]:
    """Discernibility, AECS, loss and non-uniform entropy of ``node``."""
    return {
        name: None if math.isinf(value) else round(value, 6)
        for name, value in lat.measures(node).items()
    }


def _mondrian_labels(
    setup: Setup, policy: Policy
) -> tuple[pl.DataFrame, None, dict[str, float | None]]:
    """Mondrian's partitions, as one row per distinct quasi-identifier combination (as
    text) with its partition's labels (``__label_<i>``); and the metrics."""
    lat = lattice(setup, policy)
    result = mondrian(lat.codes, lat.counts, _sensitive(lat), setup.hierarchies, setup.models)
    qis = setup.quasi_identifiers
    combos = (
        setup.counts.select(qis)
        .with_columns(pl.Series("__partition", result.partition))
        .unique(subset=qis)
    )
    labels = pl.DataFrame(
        {
            "__partition": np.arange(len(result.labels)),
            **{f"__label_{i}": [row[i] for row in result.labels] for i in range(len(qis))},
        }
    )
    table = combos.join(labels, on="__partition").drop("__partition")
    n = float(lat.total)
    sizes = result.sizes
    spans = np.array([max(len(h.domain) - 1, 1) for h in setup.hierarchies], dtype=np.float64)
    loss = float(((result.covered - 1) / spans * sizes[:, None]).sum() / (n * max(len(qis), 1)))
    metrics: dict[str, float | None] = {
        "discernibility": float((sizes**2).sum()),
        "aecs": round(n / len(sizes), 6),
        "loss": round(loss, 6),
        "entropy": None,
    }
    return table, None, metrics


def _join_labels(
    frame: pl.DataFrame,
    qis: Sequence[str],
    table: pl.DataFrame,
    *,
    as_text_from: pl.Schema | None = None,
) -> pl.DataFrame:
    """``frame`` with each quasi-identifier replaced by its partition's label, joined on
    the values as text (``as_text_from``: the frame's schema, when its values are typed)."""
    keys = [f"__text_{i}" for i in range(len(qis))]
    texts = frame.with_columns(
        (as_text(pl.col(c), as_text_from[c]) if as_text_from is not None else pl.col(c)).alias(k)
        for c, k in zip(qis, keys, strict=True)
    )
    joined = texts.join(
        table.rename(dict(zip(qis, keys, strict=True))), on=keys, how="left", maintain_order="left"
    )
    return joined.with_columns(pl.col(f"__label_{i}").alias(c) for i, c in enumerate(qis)).select(
        frame.columns
    )


def _sensitive(lat: Lattice) -> tuple[npt.NDArray[np.integer], int] | None:
    """Each distinct combination's sensitive value code and the number of codes, where
    a model needs the sensitive histogram."""
    if lat.sensitive is None or not lat.needs_histogram:
        return None
    return lat.sensitive, len(lat.sensitive_domain)


# --------------------------------------------------------------------------- risk


def assess_risk(
    frame: pl.DataFrame, policy: Policy, progress: Progress | None = None
) -> dict[str, Any]:
    """Risk of ``frame`` as it is, and after the policy's anonymization (computed, not
    written), with what the anonymization would achieve."""
    _, result = anonymize(frame, policy, progress=progress)
    return {
        "records": frame.height,
        "quasi_identifiers": result.quasi_identifiers,
        "risk_before": result.risk_before,
        "risk_after": result.risk_after,
        "anonymization": {
            k: v
            for k, v in result.summary().items()
            if k not in ("risk_before", "risk_after", "quasi_identifiers")
        },
    }
