"""Column by column: what the policy's rule did to each column, in words, and what it
cost: cells changed, spans replaced in free text per entity type, and for
quasi-identifiers the generalization chosen with the distinct values before and after
and the share of records suppressed. Read from the transform and anonymize records and
the manifest; counts and policy settings only, never a value."""

from __future__ import annotations

from typing import Any

from privacy.report._html import e, num, pct, table
from privacy.report._run import Run

__all__ = ["column_rows", "rule_in_words"]


def rule_in_words(rule: str, params: dict[str, Any]) -> str:
    """What ``rule`` with ``params`` (the transform record's ``rule_params``) does."""
    if rule == "drop":
        return "dropped"
    if rule == "keep":
        return "kept as it is"
    if rule == "redact":
        return "redacted: every cell replaced by a fixed marker"
    if rule == "mask":
        last = params.get("keep_last", 4)
        return f"masked, last {last} kept" if last else "masked entirely"
    if rule == "pseudonymize":
        kind = (
            "reversible keyed token (key custodian only)"
            if params.get("reversible")
            else "keyed token"
        )
        length = params.get("length", 32)
        return f"{kind}, {length} hex characters (HMAC-SHA256 under the pseudonym key)"
    if rule == "date_shift":
        days, by = params.get("max_days", 30), params.get("by", "person")
        return f"shifted up to {days} days per person (same shift for each {by})"
    if rule == "generalize":
        if params.get("width"):
            return f"generalized to {num(params['width'])}-wide bands"
        if params.get("keep_prefix") is not None:
            return f"generalized to its first {params['keep_prefix']} characters"
        if params.get("date_unit"):
            return f"generalized to the {params['date_unit']}"
        return "generalized"
    if rule == "scrub":
        entities = params.get("entities")
        which = ", ".join(entities) if entities else "every entity type detection knows"
        return f"free text scrubbed ({params.get('operator', 'placeholder')}): {which}"
    return rule


def _level_in_words(hierarchy: dict[str, Any] | None, level: int) -> str:
    if level == 0:
        return "not generalized (level 0)"
    kind = (hierarchy or {}).get("kind")
    if kind == "intervals":
        widths = hierarchy.get("widths") or []  # type: ignore[union-attr]
        if level <= len(widths):
            return f"level {level}: {num(widths[level - 1])}-wide bands"
        return f"level {level}: fully generalized (*)"
    if kind == "prefix":
        return f"level {level}: last {level} character(s) masked"
    if kind == "dates":
        levels = hierarchy.get("levels") or []  # type: ignore[union-attr]
        if level <= len(levels):
            return f"level {level}: to the {levels[level - 1]}"
        return f"level {level}: fully generalized (*)"
    return f"level {level} of its hierarchy"


def _qi_words(name: str, spec: dict[str, Any], anonymize: dict[str, Any]) -> str:
    counts = anonymize.get("counts") or {}
    info = (counts.get("information") or {}).get(name) or {}
    if info.get("top_share") == 1:
        return "fully generalized (*) in every row"
    if counts.get("algorithm") == "mondrian" or counts.get("node") is None:
        per = info.get("values_per_label")
        return (
            "generalized per equivalence class (Mondrian): ranges or sets of values, "
            f"each label standing for {num(per)} input values on average"
        )
    level = int((counts.get("node") or {}).get(name, 0))
    return _level_in_words(spec.get("hierarchy"), level)


def _scrubbed(counts: dict[str, Any]) -> str:
    """A scrubbed column's spans replaced, by entity type (HTML)."""
    spans = counts.get("spans_replaced", 0)
    per = [
        (
            key.split(":", 1)[1]
            + (" (the row's own " + key.split(":", 1)[1] + ")" if key.startswith("own:") else ""),
            n,
        )
        for key, n in sorted(counts.items())
        if (key.startswith("entity:") or key.startswith("own:")) and n
    ]
    listed = "; ".join(f"{e(label)} {num(n)}" for label, n in per)
    return f"{num(spans)} spans replaced" + (f": {listed}" if listed else "")


def _changed_share(
    rule: str, changed: Any, rows_in: int, *, quasi_identifier: bool
) -> float | None:
    """The share of a column's cells its rule changed (None: not known)."""
    if rule == "drop":
        return 1.0
    if changed is not None and rows_in:
        return float(changed / rows_in)
    if rule == "keep" and not quasi_identifier:
        return 0.0
    return None


def column_rows(run: Run) -> tuple[str, list[dict[str, Any]]]:
    """The columns table (HTML) and its exact figures."""
    transform = run.step("transform")
    anonymize = run.step("anonymize")
    t_record = transform[1] if transform else {}
    a_record = anonymize[1] if anonymize and anonymize[1].get("outcome") != "failed" else {}
    t_params = t_record.get("params") or {}
    t_counts = t_record.get("counts") or {}
    a_counts = a_record.get("counts") or {}
    declared = (run.manifest or {}).get("columns") or {
        name: {"rule": rule, "role": "—", "type": "—"}
        for name, rule in (t_params.get("rules") or {}).items()
    }
    rules_params = t_params.get("rule_params") or {}
    rows_in = int(t_counts.get("rows_in") or t_record.get("rows_in") or 0)
    quasi = set(a_counts.get("quasi_identifiers") or [])
    records_in = a_counts.get("records_in") or 0
    suppressed_share = (a_counts.get("suppressed", 0) / records_in) if records_in else 0.0
    out, exact = [], []
    for name, spec in declared.items():
        rule = spec.get("rule", "?")
        words = rule_in_words(rule, rules_params.get(name) or {})
        if name in quasi:
            words += ", then generalized for k-anonymity (quasi-identifier)"
        counts = t_counts.get(name) if isinstance(t_counts.get(name), dict) else {}
        changed = counts.get("cells_changed") if counts else None
        parts = [e(words)]
        if rule == "scrub" and counts:
            parts.append(_scrubbed(counts))
        share = _changed_share(rule, changed, rows_in, quasi_identifier=name in quasi)
        generalization = cost = "—"
        if name in quasi:
            info = (a_counts.get("information") or {}).get(name) or {}
            generalization = _qi_words(name, spec, a_record)
            share = info.get("changed_share", share)
            cost = (
                f"{num(info.get('distinct_before'))} distinct values → "
                f"{num(info.get('distinct_after'))} labels; "
                f"{pct(info.get('top_share'))} of cells fully generalized; "
                f"{pct(suppressed_share)} of records suppressed"
            )
        out.append(
            {
                "column": e(name),
                "role": e(str(spec.get("role", "")).replace("_", "-")),
                "rule, in words": "<br>".join(parts),
                "cells changed": pct(share),
                "generalization (quasi-identifiers)": e(generalization),
                "what it cost": e(cost),
            }
        )
        exact.append(
            {
                "column": name,
                "rule": rule,
                "rule_params": rules_params.get(name) or {},
                "transform_counts": counts,
                "information": (a_counts.get("information") or {}).get(name),
                "level": (a_counts.get("node") or {}).get(name) if a_counts.get("node") else None,
            }
        )
    html_table = table(
        out,
        raw_html=("column", "role", "rule, in words"),
        row_ids=[f"col-{r['column']}" for r in exact],
    )
    return html_table, exact
