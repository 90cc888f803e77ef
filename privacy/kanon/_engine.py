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
from privacy.kanon._counts import COUNT, as_text, count_records
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

__all__ = ["KAnonResult", "Setup", "anonymize", "assess_risk", "prepare", "recount"]

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


def anonymize(
    frame: pl.DataFrame,
    policy: Policy,
    *,
    counts: pl.DataFrame | None = None,
    progress: Progress | None = None,
) -> tuple[pl.DataFrame, KAnonResult]:
    """``frame`` with its quasi-identifiers generalized and the failing classes
    suppressed, as the policy says; and what was done."""
    started = time.perf_counter()
    qis = policy.columns_with_role("quasi_identifier")
    privacy = policy.privacy
    # the counts carry the sensitive value only where a model reads it
    needs_sensitive = privacy.l_diversity is not None or privacy.t_closeness is not None
    if counts is None:
        counts = count_records(frame, qis, _sensitive_column(policy) if needs_sensitive else None)
    setup = prepare(counts, policy)
    before = _class_sizes(counts, qis)
    threshold = policy.privacy.risk_threshold
    search: dict[str, float] = {}
    if policy.privacy.algorithm == "mondrian":
        out, node, metrics = _apply_mondrian(frame, setup, policy)
    else:
        lat = lattice(setup, policy)
        result = lat.optimal(progress)
        node_levels = result.best.node
        node = dict(zip(qis, node_levels, strict=True))
        exprs = []
        for h, level in zip(setup.hierarchies, node_levels, strict=True):
            labels = [h.labels[level][c] for c in h.codes[level]]
            exprs.append(_generalized(frame, h.column, h.domain, labels).alias(h.column))
        out = frame.with_columns(exprs)
        metrics = node_metrics(lat, node_levels)
        search = {
            "nodes": result.nodes,
            "evaluated": result.evaluated,
            "pruned": result.pruned,
        }
    out, suppressed = _suppress(out, setup, policy)
    achieved, after_sizes = recount(out, setup, policy)
    search["seconds"] = round(time.perf_counter() - started, 4)
    report = KAnonResult(
        algorithm=policy.privacy.algorithm,
        metric=policy.privacy.metric,
        quasi_identifiers=qis,
        node=node,
        records_in=frame.height,
        records_out=out.height,
        suppressed=suppressed,
        suppressed_records=policy.privacy.suppressed_records,
        classes=len(after_sizes),
        achieved=achieved,
        metrics=metrics,
        risk_before=risk_figures(before, threshold),
        risk_after=risk_figures(after_sizes, threshold),
        search=search,
    )
    return out, report


def _class_sizes(counts: pl.DataFrame, qis: Sequence[str]) -> npt.NDArray[np.int64]:
    if not qis:
        return np.array([counts.get_column(COUNT).sum()], dtype=np.int64)
    sizes = counts.group_by(qis).agg(pl.col(COUNT).sum()).get_column(COUNT)
    return sizes.to_numpy().astype(np.int64)


def _class_stats(
    frame: pl.DataFrame, setup: Setup
) -> tuple[pl.DataFrame, npt.NDArray[np.int64], npt.NDArray[np.int64] | None]:
    """Per class of ``frame``'s (generalized) quasi-identifiers: a class id per row, the
    class sizes and the sensitive histograms, by a polars group-by of the output."""
    qis = setup.quasi_identifiers
    keyed = frame.select(
        (pl.struct(qis).rank("dense").cast(pl.Int64) - 1).alias("__class")
        if qis
        else pl.lit(0, dtype=pl.Int64).alias("__class"),
        *(
            [as_text(pl.col(setup.sensitive), frame.schema[setup.sensitive]).alias("__s")]
            if setup.sensitive
            else []
        ),
    )
    classes = int(keyed.get_column("__class").max() or 0) + 1 if keyed.height else 0  # type: ignore[arg-type]
    ids = keyed.get_column("__class").to_numpy()
    sizes = np.bincount(ids, minlength=classes).astype(np.int64)
    hist = None
    if setup.sensitive is not None:
        domain = setup.sensitive_domain
        if domain is None:  # no model reads it; the re-count still reports l
            domain = keyed.get_column("__s").drop_nulls().unique().sort().to_list()
        index = {v: i for i, v in enumerate(domain)}
        s = keyed.get_column("__s").replace_strict(
            list(index), list(index.values()), return_dtype=pl.Int64
        )
        width = len(index)
        flat = np.bincount(ids * width + s.to_numpy(), minlength=classes * width)
        hist = flat.astype(np.int64).reshape(classes, width)
    return keyed, sizes, hist


def _suppress(out: pl.DataFrame, setup: Setup, policy: Policy) -> tuple[pl.DataFrame, int]:
    """Remove (or mask) the records of classes that fail a privacy model."""
    keyed, sizes, hist = _class_stats(out, setup)
    ok = np.ones(len(sizes), dtype=bool)
    for model in setup.models:
        ok &= model.satisfied(sizes, hist)
    failing = ~ok[keyed.get_column("__class").to_numpy()] if len(sizes) else np.zeros(0, bool)
    suppressed = int(failing.sum())
    if suppressed > policy.privacy.max_suppression * out.height + 1e-9:
        raise PrivacyGuaranteeError(
            f"anonymize: {suppressed} records would be suppressed, over "
            "privacy.max_suppression; nothing was published"
        )
    if not suppressed:
        return out, 0
    mask = pl.Series("__suppressed", failing)
    if policy.privacy.suppressed_records == "remove":
        return out.filter(~mask), suppressed
    starred = [
        pl.when(mask).then(pl.lit(TOP)).otherwise(pl.col(c).cast(pl.String)).alias(c)
        for c in setup.quasi_identifiers
    ]
    return out.with_columns(starred), suppressed


def recount(
    out: pl.DataFrame, setup: Setup, policy: Policy
) -> tuple[dict[str, float | None], npt.NDArray[np.int64]]:
    """k, l and t of the published records, re-counted from the output itself (group by
    the generalized quasi-identifiers); masked suppressed records (every
    quasi-identifier ``*``) are left out, as they are published without them."""
    published = out
    if policy.privacy.suppressed_records == "mask" and setup.quasi_identifiers:
        all_starred = pl.all_horizontal(
            [pl.col(c).cast(pl.String) == TOP for c in setup.quasi_identifiers]
        )
        published = out.filter(~all_starred)
    _, sizes, hist = _class_stats(published, setup)
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
    return achieved, sizes


def node_metrics(lat: Lattice, node: tuple[int, ...]) -> dict[str, float | None]:
    """Discernibility, AECS, loss and non-uniform entropy of ``node``."""
    return {
        name: None if math.isinf(value) else round(value, 6)
        for name, value in lat.measures(node).items()
    }


def _apply_mondrian(
    frame: pl.DataFrame, setup: Setup, policy: Policy
) -> tuple[pl.DataFrame, None, dict[str, float | None]]:
    lat = lattice(setup, policy)
    codes = lat.codes
    result = mondrian(
        codes,
        lat.counts,
        _row_hist(lat),
        setup.hierarchies,
        setup.models,
    )
    qis = setup.quasi_identifiers
    # one row per distinct quasi-identifier combination -> its partition's labels
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
    texts = frame.with_columns(
        as_text(pl.col(c), frame.schema[c]).alias(f"__text_{i}") for i, c in enumerate(qis)
    )
    joined = texts.join(
        combos.rename({c: f"__text_{i}" for i, c in enumerate(qis)}),
        on=[f"__text_{i}" for i in range(len(qis))],
        how="left",
        maintain_order="left",
    ).join(labels, on="__partition", how="left", maintain_order="left")
    out = joined.with_columns(pl.col(f"__label_{i}").alias(c) for i, c in enumerate(qis)).select(
        frame.columns
    )
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
    return out, None, metrics


def _row_hist(lat: Lattice) -> npt.NDArray[np.int64] | None:
    if lat.sensitive is None or not lat.needs_histogram:
        return None
    hist = np.zeros((lat.n_groups, len(lat.sensitive_domain)), dtype=np.int64)
    hist[np.arange(lat.n_groups), lat.sensitive] = lat.counts
    return hist


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
