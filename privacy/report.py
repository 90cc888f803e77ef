"""The compliance review report: one self-contained HTML file per run.

It reads what a run leaves (the manifest, the audit trail, the model card), verifies
the audit trail, and renders for a reviewer who is not an engineer: the run summary,
the trail's verification, the policy, a timeline of steps, PII findings per column
(counts only), k-anonymity (class sizes, suppression, risk, l and t), differential
privacy (ε against the budget, ε over training steps, metrics, the membership-inference
ROC curve) and the key ids used. CSS and plots (matplotlib, SVG) are inline; the file
fetches nothing. Like everything the run leaves unsealed, it holds no value from the
data: counts, hashes, ids, levels and figures.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path
from typing import Any

from privacy.audit import read_trail, verify_trail
from privacy.errors import InputError, PrivpipeError

__all__ = ["REPORT_FILE", "SECTIONS", "build_report", "find_run", "load_plotting", "write_report"]

REPORT_FILE = "report.html"
SECTIONS = ("summary", "audit", "policy", "timeline", "pii", "kanon", "dp", "keys")

_CSS = """
body{font:15px/1.5 system-ui,sans-serif;margin:2em auto;max-width:980px;color:#1d2430}
h1{font-size:1.6em}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d0d7de;padding:.25em .6em;
text-align:left}th{background:#f3f5f7}.ok{color:#116329;font-weight:600}
.bad{color:#b42318;font-weight:600}.warn{background:#fff4e5;border:1px solid #f0b36a;padding:.6em}
code{background:#f3f5f7;padding:0 .2em}svg{max-width:100%;height:auto}
"""


def write_report(run_dir: Path, public_key: bytes | None, *, witness: Path | None = None) -> Path:
    """Write ``run_dir/report.html`` (atomically) and return its path. ``witness`` (the
    signer's keyring's witness file) is consulted when the trails are verified."""
    from privacy.io import atomic_write_bytes

    target = Path(run_dir) / REPORT_FILE
    atomic_write_bytes(target, build_report(run_dir, public_key, witness=witness).encode("utf-8"))
    return target


def find_run(run_dir: Path) -> dict[str, Path | None]:
    """The sanitize output and the model folder of a run folder (either may be absent):
    a `privpipe run` folder, a sanitize output, or a model folder."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: not a folder")
    sanitized = model = None
    for candidate in (run_dir, run_dir / "sanitized"):
        if (candidate / "manifest.json").is_file():
            sanitized = candidate
    for candidate in (run_dir, run_dir / "model"):
        if (candidate / "model_card.json").is_file():
            model = candidate
    if sanitized is None and model is None:
        raise InputError(f"{run_dir}: no manifest.json or model_card.json: not a run folder")
    return {"sanitized": sanitized, "model": model}


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{_e(k)}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(v)}</td>" for v in r.values()) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def load_plotting() -> Any:
    """matplotlib's pyplot on the Agg backend (imported once; a flow command starts this
    in the background while Prefect starts)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def _svg(draw: Any, width: float = 7.0, height: float = 3.0) -> str:
    plt = load_plotting()

    figure, axes = plt.subplots(figsize=(width, height))
    try:
        draw(axes)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
    finally:
        plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _verify(trail: Path, public_key: bytes | None, witness: Path | None) -> str:
    if public_key is None:
        return '<p class="bad">Not verified: no public signing key was given.</p>'
    consulted = witness if witness is not None and witness.is_file() else None
    try:
        checked = verify_trail(trail, public_key, witness=consulted)
    except PrivpipeError as exc:
        return f'<p class="bad">Verification FAILED: {_e(exc)}</p>'
    seen = (
        f"; the witness {_e(consulted)} recorded {checked.witnessed} of them"
        if consulted is not None
        else "; no witness was consulted"
    )
    return (
        f'<p class="ok">Verified: {checked.records} records, every hash link and '
        f"{checked.checkpoints} signed checkpoint(s) check out (signer {_e(checked.signer)})"
        f"{seen}.</p>"
    )


def build_report(run_dir: Path, public_key: bytes | None, *, witness: Path | None = None) -> str:
    """The report of the run in ``run_dir``, as one HTML document."""
    found = find_run(run_dir)
    sanitized, model = found["sanitized"], found["model"]
    manifest = json.loads((sanitized / "manifest.json").read_text()) if sanitized else None
    card = json.loads((model / "model_card.json").read_text()) if model else None
    parts = [f"<h1>privpipe run report: {_e(run_dir)}</h1>"]
    parts.append(_summary(manifest, card))
    parts.append(_audit(sanitized, model, public_key, witness))
    parts.append(_policy(manifest, card))
    parts.append(_timeline(sanitized, model))
    stages = {s["stage"]: s for s in manifest["stages"]} if manifest else {}
    parts.append(_pii(stages))
    parts.append(_kanon(stages))
    parts.append(_dp(card))
    parts.append(_keys(manifest, card))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<title>privpipe run report</title>"
        f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>"
    )


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}"><h2>{_e(title)}</h2>{body}</section>'


def _summary(manifest: dict[str, Any] | None, card: dict[str, Any] | None) -> str:
    rows = []
    if manifest:
        output = manifest["output"]
        rows += [
            {"item": "run id", "value": manifest["run_id"]},
            {"item": "created", "value": manifest["created"]},
            {"item": "policy", "value": f"{manifest['policy']['name']}"},
            {"item": "records read", "value": f"{manifest['input']['rows']:,}"},
            {"item": "records published", "value": f"{output['rows']:,}"},
            {"item": "published file", "value": f"{output['path']} (sealed: {output['sealed']})"},
            {"item": "published SHA-256", "value": output["sha256"]},
        ]
    if card:
        rows += [
            {"item": "model version", "value": card["model_version"]},
            {"item": "private", "value": "yes" if card["privacy"]["private"] else "NO"},
        ]
    return _section("summary", "Run summary", _table(rows))


def _audit(
    sanitized: Path | None, model: Path | None, public_key: bytes | None, witness: Path | None
) -> str:
    body = ""
    for name, folder in (("sanitize", sanitized), ("train", model)):
        if folder is not None and (folder / "audit.jsonl").is_file():
            checked = _verify(folder / "audit.jsonl", public_key, witness)
            body += f"<h3>{name} audit trail</h3>{checked}"
    return _section("audit", "Audit trail verification", body or "<p>No audit trail.</p>")


def _policy(manifest: dict[str, Any] | None, card: dict[str, Any] | None) -> str:
    if manifest is None and card is None:
        return _section("policy", "Policy", "<p>Unknown.</p>")
    policy = manifest["policy"] if manifest else card["policy"]  # type: ignore[index]
    body = (
        f"<p>Policy <b>{_e(policy['name'])}</b>, SHA-256 <code>{_e(policy['sha256'])}</code>.</p>"
    )
    if manifest:
        body += _table(
            [
                {"column": name, "rule": c["rule"], "role": c["role"], "type": c["type"]}
                for name, c in manifest["columns"].items()
            ]
        )
    return _section("policy", "Policy", body)


def _timeline(sanitized: Path | None, model: Path | None) -> str:
    steps: list[dict[str, Any]] = []
    for folder in (sanitized, model):
        if folder is not None and (folder / "audit.jsonl").is_file():
            for record in read_trail(folder / "audit.jsonl"):
                if record.get("step"):
                    steps.append(
                        {
                            "time (UTC)": str(record.get("time", ""))[:19],
                            "step": record["step"],
                            "outcome": record.get("outcome", "ok"),
                            "seconds": record.get("duration_s", ""),
                        }
                    )
    chart = ""
    timed = [s for s in steps if isinstance(s["seconds"], int | float)]
    if timed:

        def draw(ax: Any) -> None:
            ax.barh([s["step"] for s in timed][::-1], [s["seconds"] for s in timed][::-1])
            ax.set_xlabel("seconds")

        chart = _svg(draw, height=0.4 * len(timed) + 1)
    return _section("timeline", "Timeline of steps", _table(steps) + chart)


def _pii(stages: dict[str, Any]) -> str:
    rows = []
    detect = stages.get("detect", {}).get("counts", {})
    for column, entities in (detect.get("pii_found") or {}).items():
        for entity, share in entities.items():
            rows.append({"column": column, "entity": entity, "share of sampled cells": share})
    gate = stages.get("gate", {}).get("counts", {})
    for column, entities in (gate.get("residual_pii") or {}).items():
        for entity, cells in entities.items():
            rows.append({"column": column, "entity": entity, "residual cells (gate)": cells})
    note = (
        "<p>Personal data found by Presidio in columns published as they are (on a sample), "
        "and any left in the output after transformation. Counts and shares only.</p>"
    )
    return _section("pii", "Personal data findings", note + _table(rows))


def _kanon(stages: dict[str, Any]) -> str:
    counts = stages.get("anonymize", {}).get("counts", {})
    if "k_achieved" not in counts:
        return _section("kanon", "k-anonymity", "<p>No quasi-identifiers.</p>")
    before, after = counts["risk_before"], counts["risk_after"]
    facts = _table(
        [
            {"figure": "k achieved", "value": counts["k_achieved"]},
            {"figure": "l achieved (distinct)", "value": counts["l_achieved"]},
            {"figure": "t achieved", "value": counts["t_achieved"]},
            {"figure": "equivalence classes", "value": counts["classes"]},
            {"figure": "records suppressed", "value": counts["suppressed"]},
            {"figure": "generalization levels", "value": counts.get("node") or "Mondrian"},
        ]
    )
    risk = _table(
        [
            {"risk": key.replace("_", " "), "before": before[key], "after": after[key]}
            for key in (
                "prosecutor_highest",
                "prosecutor_average",
                "marketer",
                "records_above_threshold",
            )
        ]
    )
    bins = counts.get("class_sizes") or []
    chart = ""
    if bins:

        def draw(ax: Any) -> None:
            ax.bar([b["size"] for b in bins], [b["classes"] for b in bins])
            ax.set_xlabel("records in the class")
            ax.set_ylabel("classes")
            ax.set_title("Equivalence class sizes")

        chart = _svg(draw)
    return _section("kanon", "k-anonymity and re-identification risk", facts + risk + chart)


def _model_quality(card: dict[str, Any]) -> str:
    """What the model trained on and how good it is: the input and why it is safe, the
    class balance, the metrics at the decision threshold, the confusion matrix, and
    precision and recall across thresholds (all on the held-out test split)."""
    data, metrics = card["data"], card["metrics"]
    scalar = [
        {"metric": k, "value": v}
        for k, v in metrics.items()
        if isinstance(v, int | float | str) and k not in ("split",)
    ]
    facts = _table(
        [
            {"figure": "training input", "value": data.get("input", "published")},
            {"figure": "why it is safe", "value": data.get("input_why", "")},
            {"figure": "training rows", "value": data.get("rows_train")},
            {"figure": "test rows (held out)", "value": data.get("rows_test")},
            {
                "figure": "positive class share in the test split (class balance)",
                "value": metrics.get("positive_rate"),
            },
            {"figure": "class weight", "value": card["model"].get("class_weight")},
        ]
    )
    body = facts + "<h3>Metrics on the test split</h3>" + _table(scalar)
    matrix = metrics.get("confusion_matrix")
    if isinstance(matrix, dict):
        body += f"<h3>Confusion matrix at threshold {metrics.get('threshold')}</h3>" + _table(
            [
                {
                    "": "actual negative",
                    "predicted negative": matrix["tn"],
                    "predicted positive": matrix["fp"],
                },
                {
                    "": "actual positive",
                    "predicted negative": matrix["fn"],
                    "predicted positive": matrix["tp"],
                },
            ]
        )
    curve = metrics.get("threshold_curve") or []
    if curve:

        def draw(ax: Any) -> None:
            xs = [c["threshold"] for c in curve]
            ax.plot(xs, [c["precision"] for c in curve], marker="o", label="precision")
            ax.plot(xs, [c["recall"] for c in curve], marker="s", label="recall")
            ax.axvline(
                metrics.get("threshold", 0.5), linestyle="--", color="gray", label="threshold used"
            )
            ax.set_xlabel("decision threshold (probability of the positive class)")
            ax.set_ylabel("share (0-1)")
            ax.set_ylim(0, 1.02)
            ax.set_title("Precision and recall across thresholds (test split)")
            ax.legend(loc="best")

        body += _svg(draw)
    return body


def _dp(card: dict[str, Any] | None) -> str:
    if card is None:
        return _section("dp", "Differential privacy", "<p>No model was trained.</p>")
    privacy = card["privacy"]
    metrics = _model_quality(card)
    mia = card["membership_inference"]
    if not privacy["private"]:
        body = f'<p class="warn">{_e(privacy["warning"])}</p>' + metrics
        return _section("dp", "Differential privacy", body)
    ledger = privacy["ledger"]
    spent = ledger.get("spent_after") or privacy["epsilon"]

    def budget(ax: Any) -> None:
        ax.barh(["budget"], [ledger["budget"]], color="#d0d7de", label="budget")
        ax.barh(["budget"], [spent], color="#3b6fd8", label="spent (all runs)")
        ax.set_xlabel("ε")
        ax.legend(loc="lower right")

    def over_steps(ax: Any) -> None:
        from opacus.accountants import create_accountant

        steps = privacy["steps"]
        grid = sorted({max(1, round(steps * f / 8)) for f in range(1, 9)})
        values = []
        for s in grid:
            accountant = create_accountant(privacy["accountant"])
            accountant.history = [(privacy["noise_multiplier"], privacy["sample_rate"], s)]
            values.append(accountant.get_epsilon(delta=privacy["delta"]))
        ax.plot(grid, values, marker="o")
        ax.set_xlabel("training steps")
        ax.set_ylabel("ε")
        ax.set_title(f"ε over training ({privacy['accountant'].upper()} accountant)")

    def roc(ax: Any) -> None:
        ax.plot(mia["roc"]["fpr"], mia["roc"]["tpr"], label=f"attack (AUC {mia['auc']:.3f})")
        ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="chance")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("Membership inference (loss threshold)")
        ax.legend(loc="lower right")

    facts = _table(
        [
            {"figure": "ε spent by this model", "value": privacy["epsilon"]},
            {"figure": "δ", "value": privacy["delta"]},
            {
                "figure": "data set (ledger id: the data's content, not a name)",
                "value": f"{ledger.get('label')} ({ledger.get('dataset')})",
            },
            {"figure": "budget of the data set", "value": ledger["budget"]},
            {
                "figure": "ε charged by this run (0: a first resume, covered)",
                "value": ledger.get("charged"),
            },
            {"figure": "spent on the data set so far", "value": spent},
            {"figure": "accountant", "value": privacy["accountant"]},
            {"figure": "noise multiplier", "value": privacy["noise_multiplier"]},
            {"figure": "sample rate", "value": privacy["sample_rate"]},
            {"figure": "steps", "value": privacy["steps"]},
            {"figure": "membership inference AUC", "value": mia["auc"]},
            {"figure": "TPR at 1 % FPR", "value": mia["tpr_at_1pct_fpr"]},
        ]
    )
    import warnings

    with warnings.catch_warnings():  # the PRV accountant's internal RDP notice
        warnings.simplefilter("ignore", UserWarning)
        charts = _svg(budget, height=1.6) + _svg(over_steps)
    if "roc" in mia:
        charts += _svg(roc, width=5, height=4)
    return _section("dp", "Differential privacy", facts + metrics + charts)


def _keys(manifest: dict[str, Any] | None, card: dict[str, Any] | None) -> str:
    rows = []
    if manifest:
        rows.append({"use": "vault copy of the input", "key id": manifest["vault"]["kek_id"]})
        rows.append({"use": "published data", "key id": manifest["output"]["kek_id"]})
        for stage in manifest["stages"]:
            key = stage.get("params", {}).get("key_id")
            if key:
                rows.append({"use": f"pseudonym key ({stage['stage']})", "key id": key})
    note = "<p>One-way key ids; no key material.</p>"
    return _section("keys", "Keys used", note + _table(rows))
