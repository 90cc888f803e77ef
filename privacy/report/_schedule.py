"""A schedule at a glance: one page for a `privpipe serve` output root.

For each dated run folder: its verdict (the same rules as a run's report), rows in and
out, k achieved, suppression, residual PII found by the gate, and for a failed run the
step and error class; the runs skipped because their input had not changed
(``ROOT/skipped.jsonl``); trends across runs (rows, suppression, risk); and a link to
each run's own report."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from privacy.errors import InputError, PrivpipeError
from privacy.integrity import Witness
from privacy.report._html import chart, details, document, e, num, pct, section, table
from privacy.report._run import Run, load_run
from privacy.report._verdict import verdict
from privacy.schedule import STATE_FILE, read_json, read_skips

__all__ = ["SCHEDULE_CHARTS", "SCHEDULE_SECTIONS", "build_schedule_report", "is_schedule_root"]

SCHEDULE_SECTIONS = ("schedule-summary", "runs", "skipped", "trends")
SCHEDULE_CHARTS = ("trend-rows", "trend-suppression", "trend-risk")
_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{6}Z(-\d+)?$")


def _run_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and _FOLDER.match(p.name))


def is_schedule_root(path: Path) -> bool:
    """Whether ``path`` is a serve output root (dated run folders or ``latest.json``)."""
    path = Path(path)
    if not path.is_dir():
        return False
    return (path / STATE_FILE).is_file() or bool(_run_folders(path))


def _row(folder: Path, public_key: bytes | None, witness: Path | None) -> dict[str, Any]:
    try:
        run: Run | None = load_run(folder, public_key, witness=witness)
    except PrivpipeError:
        run = None
    if run is None:
        return {
            "folder": folder.name,
            "run": None,
            "verdict": None,
            "reason": "no audit trail or manifest (the run did not start)",
        }
    result = verdict(run)
    found = run.step("anonymize")
    counts = (found[1].get("counts") or {}) if found else {}
    gate = run.step("gate")
    residual = (gate[1].get("counts") or {}).get("residual_pii") if gate else None
    ingest = run.step("ingest")
    rows_in = (ingest[1].get("counts") or {}).get("rows_in") if ingest else None
    records_in = counts.get("records_in") or 0
    failure = next(iter(run.failures), None)
    failed = ""
    if failure is not None:
        record = failure[1]
        guarantee = (record.get("params") or {}).get("guarantee")
        failed = f"{record.get('step')}: {record.get('error')}" + (
            f" ({guarantee})" if guarantee else ""
        )
    sanitize = run.trail("sanitize")
    started = (
        str(sanitize.records[0].get("time", ""))[:19].replace("T", " ")
        if sanitize and sanitize.records
        else ""
    )
    return {
        "folder": folder.name,
        "run": run,
        "verdict": result,
        "started": started,
        "rows_in": rows_in,
        "rows_out": (run.manifest or {}).get("output", {}).get("rows"),
        "k": counts.get("k_achieved"),
        "suppressed": counts.get("suppressed"),
        "suppression": (counts.get("suppressed", 0) / records_in) if records_in else None,
        "risk_highest": (counts.get("risk_after") or {}).get("prosecutor_highest"),
        "risk_average": (counts.get("risk_after") or {}).get("prosecutor_average"),
        "residual": sum(int(n) for entities in residual.values() for n in entities.values())
        if residual
        else (0 if gate else None),
        "failure": failed,
        "report": (folder / "report.html").is_file(),
    }


def _witnessed(
    root: Path, public_key: bytes | None, witness: Path | None
) -> tuple[dict[Path, str], list[str]]:
    """What the witness knows of the trails under ``root`` that the folder no longer
    holds: {the trail's run folder: "missing: …"} for each trail gone or shorter than
    the witness recorded (the last head recorded at its path), and a line for each
    trail let go at its path (retired, or superseded by a new run's trail)."""
    if public_key is None or witness is None or not Path(witness).is_file():
        return {}, []
    prefix = os.path.abspath(root) + os.sep
    last: dict[str, dict[str, Any]] = {}
    let_go: list[str] = []
    for entry in Witness(witness).entries(public_key):  # WitnessError: the page fails
        subject = str(entry.get("subject"))
        if not subject.startswith(prefix):
            continue
        if entry.get("kind") == "trail":
            last[subject] = entry
        elif entry.get("kind") == "retire":
            last.pop(subject, None)
            let_go.append(
                f"{os.path.relpath(subject, root)}: a trail of {entry.get('length')} records "
                f"was let go at {str(entry.get('time'))[:19]} ({entry.get('reason')})"
            )
    missing: dict[Path, str] = {}
    for subject, entry in last.items():
        path = Path(subject)
        try:
            size = path.lstat().st_size if path.is_file() and not path.is_symlink() else None
        except OSError:
            size = None
        if size is not None and size >= int(entry.get("offset") or 0):
            continue  # still there, at least as long: its own verification judges it
        what = "the trail is gone" if size is None else "the trail was emptied or cut"
        folder = path.parent
        if folder.name == "model" and folder.parent != Path(root):
            folder = folder.parent  # a run folder's model trail belongs to that run
        missing[folder] = (
            f"missing: the witness recorded {entry.get('length')} records, the last at "
            f"{str(entry.get('time'))[:19].replace('T', ' ')} UTC; {what} ({path.name})"
        )
    return missing, let_go


def build_schedule_report(
    root: Path, public_key: bytes | None, *, witness: Path | None = None
) -> str:
    """The page for the serve output root ``root``, as one HTML document."""
    root = Path(root)
    if not is_schedule_root(root):
        raise InputError(
            f"{root}: no dated run folders or latest.json: not a `privpipe serve` output root"
        )
    rows, let_go = _schedule_rows(root, public_key, witness)
    skips = read_skips(root)
    parts = [
        f"<h1>privpipe schedule report: {e(root)}</h1>",
        section("schedule-summary", "Summary", _summary(root, rows, skips, let_go)),
        section("runs", "Runs", _runs_table(rows)),
        _skipped_section(skips),
        section("trends", "Trends across runs", _trends(rows)),
    ]
    exact = [
        {k: v for k, v in r.items() if k not in ("run", "verdict")}
        | {"verdict": r["verdict"].line if r["verdict"] else None}
        for r in rows
    ]
    parts.append(details({"runs": exact, "skipped": skips}))
    return document(f"privpipe schedule report: {root.name}", "".join(parts))


def _schedule_rows(
    root: Path, public_key: bytes | None, witness: Path | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """A row per dated run folder, and per trail the witness recorded under ``root``
    that is gone or was emptied (NOT RELEASABLE, in the witness's words); and the trails
    let go on the record."""
    missing, let_go = _witnessed(root, public_key, witness)
    rows = [_row(folder, public_key, witness) for folder in _run_folders(root)]
    for row in rows:
        gone = missing.pop(root / row["folder"], None)
        if gone is not None:  # emptied where it stood: the witness's words, and no pass
            row["verdict"], row["reason"], row["failure"] = None, gone, ""
    rows += [  # folders removed: still on the page, from the witness
        {"folder": os.path.relpath(folder, root), "run": None, "verdict": None, "reason": text}
        for folder, text in missing.items()
    ]
    rows.sort(key=lambda r: r["folder"])
    return rows, let_go


def _summary(
    root: Path, rows: list[dict[str, Any]], skips: list[dict[str, Any]], let_go: list[str]
) -> str:
    """Counts, and the last releasable run from the signed records. latest.json is a
    convenience copy any writer of ROOT can edit: shown only beside what the signed
    records say, and a disagreement said in so many words."""
    state = read_json(root / STATE_FILE) or {}
    good = [r["folder"] for r in rows if r["verdict"] is not None and r["verdict"].releasable]
    releasable = len(good)
    named = state.get("run")
    last_good = good[-1] if good else "—"
    if named is not None and named != (good[-1] if good else None):
        last_good += f" (latest.json names {named!s}, which the signed records do not bear out)"
    summary = table(
        [
            {"item": "dated runs", "value": num(len(rows))},
            {"item": "releasable", "value": num(releasable)},
            {"item": "not releasable", "value": num(len(rows) - releasable)},
            {"item": "skipped as unchanged", "value": num(len(skips))},
            {"item": "last releasable run (from the signed records)", "value": last_good},
        ]
    )
    if let_go:
        summary += "<p>Trails let go on the record (the witness keeps their heads):</p>"
        summary += "<ul>" + "".join(f"<li>{e(line)}</li>" for line in let_go) + "</ul>"
    return summary


def _runs_table(rows: list[dict[str, Any]]) -> str:
    """A line per run: its verdict, counts, k, suppression, residual PII and failure."""
    shown = []
    for r in rows:
        result = r["verdict"]
        if result is None:
            mark = '<span class="bad">NOT RELEASABLE</span>'
        else:
            mark = f'<span class="{"ok" if result.releasable else "bad"}">{result.line}</span>'
        link = (
            f'<a href="{e(r["folder"])}/report.html">{e(r["folder"])}</a>'
            if r.get("report")
            else e(r["folder"])
        )
        shown.append(
            {
                "run": link,
                "started (UTC)": e(r.get("started", "")),
                "verdict": mark,
                "rows in → out": e(f"{num(r.get('rows_in'))} → {num(r.get('rows_out'))}"),
                "k achieved": e(num(r.get("k"))),
                "suppression": e(
                    f"{num(r.get('suppressed'))} ({pct(r.get('suppression'))})"
                    if r.get("suppressed") is not None
                    else "—"
                ),
                "residual PII cells": e(num(r.get("residual"))),
                "failure (step: error class)": e(r.get("failure") or r.get("reason") or ""),
            }
        )
    return table(
        shown,
        raw_html=tuple(shown[0]) if shown else (),
        row_ids=[f"run-{r['folder']}" for r in rows],
        empty="No runs yet.",
    )


def _skipped_section(skips: list[dict[str, Any]]) -> str:
    skipped = [
        {
            "time (UTC)": str(s.get("time", ""))[:19].replace("T", " "),
            "unchanged since": s.get("last_run", ""),
            "input (keyed digest)": str((s.get("input") or {}).get("hmac_sha256", ""))[:16] + "…",
            "policy": (s.get("policy") or {}).get("name", ""),
        }
        for s in skips
    ]
    note = (
        "<p>Runs whose input had the same keyed digest as the last successful run's, "
        "under the same policy: nothing was reprocessed or written.</p>"
    )
    return section(
        "skipped", "Skipped unchanged inputs", note + table(skipped, empty="None skipped.")
    )


def _trends(rows: list[dict[str, Any]]) -> str:
    names = [r["folder"] for r in rows]
    if not rows:
        return "<p>No runs yet.</p>"
    ticks = list(range(len(names)))

    def axis(ax: Any, ylabel: str, title: str) -> None:
        ax.set_xticks(ticks, [n.replace("T", "\n") for n in names], fontsize=7)
        ax.set_xlabel("run (UTC start)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)

    def values(key: str) -> list[float]:
        return [
            float(r[key]) if isinstance(r.get(key), int | float) else float("nan") for r in rows
        ]

    def draw_rows(ax: Any) -> None:
        ax.plot(ticks, values("rows_in"), marker="o", label="rows read")
        ax.plot(ticks, values("rows_out"), marker="s", label="rows published")
        axis(ax, "rows", "Rows per run")
        ax.legend(loc="best", fontsize=8)

    def draw_suppression(ax: Any) -> None:
        ax.plot(ticks, [100 * v for v in values("suppression")], marker="o", color="#d1242f")
        axis(ax, "records suppressed (%)", "Suppression per run")
        ax.set_ylim(bottom=0)

    def draw_risk(ax: Any) -> None:
        ax.plot(ticks, values("risk_highest"), marker="o", label="highest prosecutor risk")
        ax.plot(ticks, values("risk_average"), marker="s", label="average prosecutor risk")
        axis(ax, "probability of re-identification (0-1)", "Re-identification risk of each release")
        ax.set_ylim(0, 1.05)
        ax.legend(loc="best", fontsize=8)

    note = "<p>Failed runs have no published data: their points are missing.</p>"
    return (
        note
        + chart("trend-rows", "Rows read and published by each run.", draw_rows)
        + chart("trend-suppression", "Share of records suppressed by each run.", draw_suppression)
        + chart("trend-risk", "Re-identification risk of each run's published data.", draw_risk)
    )
