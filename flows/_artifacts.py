"""Prefect artifacts for each flow run: a markdown summary and tables, so the Prefect UI
tells the same story as the audit trail and the manifest. Counts, hashes, ids, levels
and privacy figures only; never a value from the data."""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

__all__ = ["publish_sanitize", "publish_train", "trail_head"]


def trail_head(trail: Any) -> dict[str, Any]:
    """The signed head an :class:`~privacy.audit.AuditTrail` wrote last: the record
    count, the head hash, the signer and the witness that recorded it. Published in the
    run's artifact, so the Prefect server holds a copy of the head outside the run
    folder (``privpipe audit verify --expect-head HASH --expect-length N``)."""
    last = trail.last_checkpoint or {}
    witness = trail.witness.path if trail.witness is not None else None
    return {
        "records": int(last.get("seq", 0)),
        "head": last.get("hash"),
        "signer": last.get("signer"),
        "witness": str(witness) if witness else None,
    }


def _head_line(audit: dict[str, Any], path: str) -> str:
    if not audit.get("head"):
        return f"- audit trail `{path}` ({audit.get('records', 0)} records)"
    return (
        f"- audit trail `{path}`: {audit['records']} records, signed head `{audit['head']}` "
        f"by `{audit['signer']}`; check it later with `privpipe audit verify {path} "
        f"--expect-head {audit['head']} --expect-length {audit['records']}`"
    )


def publish_sanitize(summary: dict[str, Any], records: list[dict[str, Any]]) -> None:
    anonymity = summary.get("anonymization") or {}
    lines = [
        f"# privpipe sanitize: {summary['policy']['name']}",
        "",
        f"- run `{summary['run_id']}`, policy sha256 `{summary['policy']['sha256']}`",
        f"- rows in **{summary['rows_in']:,}**, rows published **{summary['rows_out']:,}**",
        _head_line(summary["audit"], summary["outputs"]["audit"]),
    ]
    if "k_achieved" in anonymity:
        after, before = anonymity["risk_after"], anonymity["risk_before"]
        lines += [
            f"- k-anonymity: k **{anonymity['k_achieved']}**, l {anonymity['l_achieved']}, "
            f"t {anonymity['t_achieved']}; {anonymity['classes']:,} classes, "
            f"{anonymity['suppressed']:,} records suppressed",
            f"- highest prosecutor risk {before['prosecutor_highest']:.3f} -> "
            f"{after['prosecutor_highest']:.3f}",
        ]
    create_markdown_artifact("\n".join(lines), key="privpipe-sanitize-summary")
    create_table_artifact(
        [
            {
                "stage": r["stage"],
                "status": r["status"],
                "rows_in": r["rows_in"],
                "rows_out": r["rows_out"],
                "seconds": r["duration_s"],
            }
            for r in records
        ],
        key="privpipe-sanitize-stages",
        description="One row per stage: counts and durations.",
    )
    node, kept = anonymity.get("node") or {}, anonymity.get("information") or {}
    if node or kept:
        create_table_artifact(
            [
                {
                    "quasi_identifier": column,
                    "level": node.get(column, "per class (Mondrian)"),
                    "distinct_before": kept.get(column, {}).get("distinct_before"),
                    "distinct_after": kept.get(column, {}).get("distinct_after"),
                    "values_per_label": kept.get(column, {}).get("values_per_label"),
                    "top_share": kept.get(column, {}).get("top_share"),
                }
                for column in anonymity["quasi_identifiers"]
            ],
            key="privpipe-sanitize-generalization",
            description="Per quasi-identifier: the generalization level (a lattice node, or "
            "per class under Mondrian) and what the release keeps.",
        )


def publish_train(card: dict[str, Any], audit: dict[str, Any], trail: str) -> None:
    privacy, metrics = card["privacy"], card["metrics"]
    if privacy["private"]:
        headline = (
            f"- DP-SGD: ε **{privacy['epsilon']}** (target {privacy['target_epsilon']}), "
            f"δ {privacy['delta']:.2g}, {privacy['accountant']} accountant, noise "
            f"{privacy['noise_multiplier']:.3f}, {privacy['steps']} steps"
        )
    else:
        headline = f"- **{privacy['warning']}**"
    lines = [
        f"# privpipe train: {card['policy']['name']}",
        "",
        f"- model `{card['model_version']}` ({card['model']['kind']}), data sha256 "
        f"`{card['data']['sha256']}`",
        headline,
        f"- membership inference AUC {card['membership_inference']['auc']}",
        _head_line(audit, trail),
    ]
    create_markdown_artifact("\n".join(lines), key="privpipe-train-summary")
    create_table_artifact(
        [
            {"metric": name, "value": value}
            for name, value in metrics.items()
            if isinstance(value, int | float | str)
        ],
        key="privpipe-train-metrics",
        description="Held-out metrics (scikit-learn).",
    )
