"""The report of one run: the verdict first, then column by column, personal data
found, k-anonymity and risk, differential privacy and the model, the audit trails, the
steps and the keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from privacy.report._columns import column_rows
from privacy.report._html import chart, details, document, e, num, pct, section, table
from privacy.report._releases import RELEASE_COLOURS, releases_section
from privacy.report._run import Run, load_run
from privacy.report._verdict import Verdict, verdict

__all__ = ["CHARTS", "SECTIONS", "build_report", "render_run"]

SECTIONS = (
    "verdict",
    "summary",
    "columns",
    "pii",
    "kanon",
    "dp",
    "releases",
    "audit",
    "timeline",
    "keys",
)
# every chart a complete run's report draws (by figure id ``chart-NAME``)
CHARTS = (
    "risk",
    "class-sizes",
    "budget",
    "epsilon-steps",
    "mia-roc",
    "metrics",
    "threshold-curve",
    "durations",
    "ledger",
    "marginals",
)


def build_report(
    run_dir: Path,
    public_key: bytes | None,
    *,
    witness: Path | None = None,
    ledger: Path | None = None,
) -> str:
    """The report of the run in ``run_dir``, as one HTML document."""
    run = load_run(run_dir, public_key, witness=witness, ledger=ledger)
    return document(f"privpipe run report: {run.folder.name}", render_run(run, verdict(run)))


def render_run(run: Run, result: Verdict) -> str:
    parts = [f"<h1>privpipe run report: {e(run.folder)}</h1>"]
    parts.append(_verdict(result))
    parts.append(_summary(run))
    table_html, exact = column_rows(run)
    parts.append(section("columns", "Column by column", table_html + details(exact)))
    parts.append(_pii(run))
    parts.append(_kanon(run))
    parts.append(_dp(run))
    parts.append(releases_section(run))
    parts.append(_audit(run))
    parts.append(_timeline(run))
    parts.append(_keys(run))
    return "".join(parts)


def _verdict(result: Verdict) -> str:
    cls = "ok" if result.releasable else "bad"
    state = "releasable" if result.releasable else "not-releasable"
    line = f'<p class="verdict {cls}" data-verdict="{state}">{result.line}</p>'
    why = ""
    if result.reasons:
        why = "<p>Why not:</p><ul>" + "".join(f"<li>{e(r)}</li>" for r in result.reasons) + "</ul>"
    mark = {
        True: '<span class="ok">pass</span>',
        False: '<span class="bad">FAIL</span>',
        None: '<span class="na">—</span>',
    }
    rows = [
        {
            "guarantee": e(g.name),
            "required": e(g.required),
            "achieved": e(g.achieved),
            "result": mark[g.passed],
            "evidence": e(g.evidence),
        }
        for g in result.rows
    ]
    body = (
        line
        + why
        + table(
            rows,
            raw_html=("guarantee", "required", "achieved", "result", "evidence"),
            row_ids=[f"g-{g.key}" for g in result.rows],
        )
        + "<p>RELEASABLE only when every guarantee passes, every step succeeded and every "
        "audit trail verifies against the trusted key. — : not asked by the policy, or not "
        "reached by a run that stopped.</p>" + details([g.__dict__ for g in result.rows])
    )
    return section("verdict", "Verdict", body)


def _summary(run: Run) -> str:
    rows: list[dict[str, Any]] = []
    manifest, card = run.manifest, run.card
    if manifest:
        output = manifest["output"]
        rows += [
            {"item": "run id", "value": manifest["run_id"]},
            {"item": "created (UTC)", "value": manifest["created"]},
            {
                "item": "policy",
                "value": f"{manifest['policy']['name']} (sha256 {manifest['policy']['sha256']})",
            },
            {"item": "records read", "value": num(manifest["input"]["rows"])},
            {"item": "records published", "value": num(output["rows"])},
            {
                "item": "published file",
                "value": f"{output['path']} ({'sealed' if output['sealed'] else 'NOT sealed'})",
            },
            {"item": "published SHA-256", "value": output["sha256"]},
        ]
    elif run.trail("sanitize") is not None:
        trail = run.trail("sanitize")
        assert trail is not None
        first = trail.records[0] if trail.records else {}
        rows += [
            {"item": "run id", "value": first.get("run_id", "?")},
            {"item": "started (UTC)", "value": str(first.get("time", ""))[:19]},
            {
                "item": "policy",
                "value": "{id} (sha256 {sha256})".format_map(
                    {"id": "?", "sha256": "?", **(first.get("policy") or {})}
                ),
            },
            {"item": "published", "value": "nothing: the run failed"},
        ]
    if card:
        rows += [
            {"item": "model version", "value": card["model_version"]},
            {
                "item": "differentially private",
                "value": "yes" if card["privacy"]["private"] else "NO",
            },
            {"item": "trained on", "value": card["data"].get("input", "published")},
        ]
    return section("summary", "Run summary", table(rows))


def _pii(run: Run) -> str:
    rows = []
    detect = run.step("detect")
    for column, entities in (
        (detect[1].get("counts") or {}).get("pii_found") or {} if detect else {}
    ).items():
        for entity, share in entities.items():
            rows.append(
                {
                    "column": column,
                    "entity type": entity,
                    "found by": "detect (on a sample)",
                    "amount": f"{pct(share)} of sampled cells",
                }
            )
    gate = run.step("gate")
    for column, entities in (
        (gate[1].get("counts") or {}).get("residual_pii") or {} if gate else {}
    ).items():
        acknowledged = set(
            ((run.manifest or {}).get("columns", {}).get(column) or {}).get("acknowledge_pii") or []
        )
        for entity, cells in entities.items():
            note = " (acknowledged by the policy)" if entity in acknowledged else ""
            rows.append(
                {
                    "column": column,
                    "entity type": entity,
                    "found by": "gate (in the output)",
                    "amount": f"{num(cells)} cell(s){note}",
                }
            )
    note = (
        "<p>Personal data Presidio found in columns published as they are (detect, on a "
        "sample), and any the gate found left in the output. Counts and shares only; the "
        "spans scrubbed from free text are under <a href='#columns'>Column by column</a>.</p>"
    )
    return section("pii", "Personal data found", note + table(rows, empty="None found."))


_RISKS = (
    ("prosecutor_highest", "highest prosecutor risk"),
    ("prosecutor_average", "average prosecutor risk"),
    ("marketer", "marketer risk"),
    ("records_above_threshold", "records above the risk threshold"),
)


def _kanon(run: Run) -> str:
    found = run.step("anonymize")
    counts = (found[1].get("counts") or {}) if found else {}
    if "k_achieved" not in counts:
        text = "<p>No quasi-identifiers, or the run stopped before anonymization.</p>"
        return section("kanon", "k-anonymity and re-identification risk", text)
    before, after = counts["risk_before"], counts["risk_after"]
    risk_rows = [
        {
            "risk": label,
            "before": pct(before[key]) if key == "records_above_threshold" else num(before[key]),
            "after": pct(after[key]) if key == "records_above_threshold" else num(after[key]),
        }
        for key, label in _RISKS
    ]
    charts = _risk_chart(before, after) + _class_size_chart(counts)
    exact = {k: v for k, v in counts.items()}
    body = (
        _kanon_facts(counts)
        + "<h3>Re-identification risk</h3>"
        + table(risk_rows)
        + charts
        + details(exact)
    )
    return section("kanon", "k-anonymity and re-identification risk", body)


def _kanon_facts(counts: dict[str, Any]) -> str:
    """What the signed anonymize record says was achieved, and how."""
    records_in = counts.get("records_in") or 0
    return table(
        [
            {"figure": "k achieved (smallest class)", "value": num(counts["k_achieved"])},
            {"figure": "l achieved (distinct)", "value": num(counts.get("l_achieved"))},
            {"figure": "t achieved (largest distance)", "value": num(counts.get("t_achieved"))},
            {"figure": "equivalence classes", "value": num(counts["classes"])},
            {
                "figure": "records suppressed",
                "value": f"{num(counts['suppressed'])} of {num(records_in)} "
                f"({pct(counts['suppressed'] / records_in if records_in else 0)})",
            },
            {"figure": "algorithm", "value": counts.get("algorithm", "optimal")},
            {"figure": "utility metric", "value": counts.get("metric", "")},
            {
                "figure": "generalization levels",
                "value": ", ".join(f"{k} {v}" for k, v in (counts.get("node") or {}).items())
                or "per class (Mondrian)",
            },
        ],
        numeric=(),
    )


def _risk_chart(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Re-identification risk of the input beside the published data's."""
    threshold = after.get("threshold")

    def draw_risk(ax: Any) -> None:
        labels = [
            label.replace("records above the risk threshold", "share above threshold")
            for _, label in _RISKS
        ]
        xs = range(len(_RISKS))
        ax.bar(
            [x - 0.2 for x in xs],
            [before[k] for k, _ in _RISKS],
            width=0.4,
            label="before (input)",
            color="#d1242f",
        )
        ax.bar(
            [x + 0.2 for x in xs],
            [after[k] for k, _ in _RISKS],
            width=0.4,
            label="after (published)",
            color="#1f6feb",
        )
        if threshold is not None:
            ax.axhline(
                threshold, linestyle="--", color="gray", label=f"risk threshold {num(threshold)}"
            )
        ax.set_xticks(list(xs), labels, fontsize=8)
        ax.set_ylabel("probability of re-identification (0-1)")
        ax.set_ylim(0, 1.05)
        ax.set_title("Re-identification risk before and after")
        ax.legend(loc="upper right", fontsize=8)

    return chart(
        "risk",
        "Re-identification risk of the input and of the published data.",
        draw_risk,
        height=3.6,
    )


def _class_size_chart(counts: dict[str, Any]) -> str:
    """How many equivalence classes have each size ("" when the record has none)."""
    bins = counts.get("class_sizes") or []
    if not bins:
        return ""

    def draw_sizes(ax: Any) -> None:
        ax.bar([str(b["size"]) for b in bins], [b["classes"] for b in bins], color="#1f6feb")
        ax.set_xlabel("records in the equivalence class")
        ax.set_ylabel("number of classes")
        ax.set_title("Equivalence class sizes of the published data")

    return chart(
        "class-sizes",
        "How many equivalence classes have each size; none may be below "
        f"k = {num(counts['k_achieved'])}.",
        draw_sizes,
    )


def _model_quality(card: dict[str, Any]) -> str:
    data, metrics = card["data"], card["metrics"]
    threshold = metrics.get("threshold", 0.5)
    facts = table(
        [
            {"figure": "training input", "value": data.get("input", "published")},
            {"figure": "why it is safe", "value": data.get("input_why", "")},
            {"figure": "training rows", "value": num(data.get("rows_train"))},
            {"figure": "test rows (held out)", "value": num(data.get("rows_test"))},
            {
                "figure": "positive class in the test split (class balance)",
                "value": pct(metrics.get("positive_rate")),
            },
            {
                "figure": "majority class rate (what always guessing it scores)",
                "value": num(metrics.get("majority_class_rate")),
            },
            {"figure": "class weight", "value": card["model"].get("class_weight")},
            {"figure": "decision threshold", "value": num(threshold)},
        ]
    )
    names = (
        ("accuracy", "accuracy"),
        ("balanced_accuracy", "balanced accuracy"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("f1", "F1"),
        ("roc_auc", "ROC AUC"),
        ("pr_auc", "PR AUC"),
    )
    shown = [
        (label, metrics[key]) for key, label in names if isinstance(metrics.get(key), int | float)
    ]
    return (
        facts
        + _metrics_chart(shown, metrics, threshold)
        + _confusion_matrix(metrics, threshold)
        + _threshold_chart(metrics, threshold)
    )


def _metrics_chart(shown: list[tuple[str, Any]], metrics: dict[str, Any], threshold: Any) -> str:
    """The model's metrics beside the majority-class rate ("" when there are none)."""
    if not shown:
        return ""

    def draw_metrics(ax: Any) -> None:
        ax.barh([label for label, _ in shown][::-1], [v for _, v in shown][::-1], color="#1f6feb")
        rate = metrics.get("majority_class_rate")
        title = f"Model metrics at threshold {num(threshold)} (test split)"
        if isinstance(rate, int | float):
            ax.axvline(rate, linestyle="--", color="gray")
            title += f"\ndashed line: majority class rate {num(rate)}"
        ax.set_xlim(0, 1)
        ax.set_xlabel("score on the test split (0-1)")
        ax.set_title(title, fontsize=10)

    return chart(
        "metrics",
        "Metrics of the model on the held-out test split, at its decision threshold.",
        draw_metrics,
        height=3.2,
    )


def _confusion_matrix(metrics: dict[str, Any], threshold: Any) -> str:
    matrix = metrics.get("confusion_matrix")
    if not isinstance(matrix, dict):
        return ""
    return f"<h3>Confusion matrix at threshold {num(threshold)} (test split)</h3>" + table(
        [
            {
                "": "actual negative",
                "predicted negative": num(matrix["tn"]),
                "predicted positive": num(matrix["fp"]),
            },
            {
                "": "actual positive",
                "predicted negative": num(matrix["fn"]),
                "predicted positive": num(matrix["tp"]),
            },
        ],
        numeric=("predicted negative", "predicted positive"),
    )


def _threshold_chart(metrics: dict[str, Any], threshold: Any) -> str:
    """Precision and recall at every threshold of the report's curve."""
    curve = metrics.get("threshold_curve") or []
    if not curve:
        return ""

    def draw_curve(ax: Any) -> None:
        xs = [c["threshold"] for c in curve]
        ax.plot(xs, [c["precision"] for c in curve], marker="o", label="precision")
        ax.plot(xs, [c["recall"] for c in curve], marker="s", label="recall")
        ax.axvline(threshold, linestyle="--", color="gray", label="threshold used")
        ax.set_xlabel("decision threshold (probability of the positive class)")
        ax.set_ylabel("share (0-1)")
        ax.set_ylim(0, 1.02)
        ax.set_title("Precision and recall across thresholds (test split)")
        ax.legend(loc="best", fontsize=8)

    return chart(
        "threshold-curve",
        "Precision and recall if another threshold were used, measured on the test split.",
        draw_curve,
    )


def _dp(run: Run) -> str:
    card = run.card
    if card is None:
        return section("dp", "Differential privacy and the model", "<p>No model was trained.</p>")
    privacy = card["privacy"]
    quality = _model_quality(card)
    mia = card.get("membership_inference") or {}
    if not privacy["private"]:
        body = (
            f'<p class="warn">{e(privacy.get("warning", "The model is NOT private."))}</p>'
            + quality
        )
        return section("dp", "Differential privacy and the model", body)
    ledger = privacy["ledger"]
    spent = ledger.get("spent_after") or privacy["epsilon"]
    charges = run.charges
    charts = _budget_chart(ledger, spent, charges) + _epsilon_chart(privacy)
    if "roc" in mia:
        charts += _roc_chart(mia)
    exact = {
        "privacy": privacy,
        "metrics": {k: v for k, v in card["metrics"].items() if k != "threshold_curve"},
        "membership_inference": {k: v for k, v in mia.items() if k != "roc"},
        "ledger_charges": charges,
    }
    facts = _dp_facts(privacy, spent, mia)
    body = "<h3>The model</h3>" + quality + "<h3>Privacy</h3>" + facts + charts + details(exact)
    return section("dp", "Differential privacy and the model", body)


def _dp_facts(privacy: dict[str, Any], spent: float, mia: dict[str, Any]) -> str:
    """The DP figures of a private model, as the signed train record states them."""
    ledger = privacy["ledger"]
    return table(
        [
            {"figure": "ε spent by this model", "value": num(privacy["epsilon"])},
            {"figure": "ε target", "value": num(privacy.get("target_epsilon"))},
            {"figure": "δ", "value": num(privacy["delta"])},
            {
                "figure": "data set (ledger id: the data's content, not a name)",
                "value": f"{ledger.get('label')} ({ledger.get('dataset')})",
            },
            {"figure": "budget of the data set", "value": num(ledger["budget"])},
            {
                "figure": "ε charged by this run (0: a first resume, covered)",
                "value": num(ledger.get("charged")),
            },
            {"figure": "spent on the data set so far", "value": num(spent)},
            {"figure": "accountant", "value": privacy["accountant"]},
            {"figure": "noise multiplier", "value": num(privacy["noise_multiplier"])},
            {"figure": "sample rate", "value": num(privacy["sample_rate"])},
            {"figure": "steps", "value": num(privacy["steps"])},
            {"figure": "processes", "value": num(privacy.get("processes", 1))},
            {"figure": "membership inference AUC (0.5: chance)", "value": num(mia.get("auc"))},
            {"figure": "TPR at 1 % FPR", "value": num(mia.get("tpr_at_1pct_fpr"))},
        ]
    )


def _budget_chart(
    ledger: dict[str, Any], spent: float, charges: list[dict[str, Any]] | None
) -> str:
    """ε spent by each run of the data set, stacked, against its budget: from the
    verified ledger's charges, else (no --ledger) from the card's own figures."""
    budget = ledger["budget"]

    def draw_budget(ax: Any) -> None:
        if charges:
            values = [float(c.get("epsilon") or 0) for c in charges]
            labels = [
                f"#{i} {c.get('release') or 'model'}\n{str(c.get('time', ''))[:10]}"
                for i, c in enumerate(charges, start=1)
            ]
            bottom = 0.0
            for label, value, c in zip(labels, values, charges, strict=True):
                kind = str(c.get("release") or "model")
                ax.bar(label, value, bottom=bottom, color=RELEASE_COLOURS.get(kind, "#8c959f"))
                bottom += value
            ax.set_xlabel("releases charged to the data set (ledger order, kind, date)")
        else:
            ax.bar(
                ["earlier runs", "this run"],
                [
                    max(0.0, spent - float(ledger.get("charged") or 0)),
                    float(ledger.get("charged") or 0),
                ],
                color=["#8c959f", "#1f6feb"],
            )
            ax.set_xlabel(
                "runs charged to the data set (from the model card; give --ledger for each run)"
            )
        ax.axhline(budget, color="#d1242f", linestyle="--", label=f"budget ε = {num(budget)}")
        ax.set_ylabel("ε spent (cumulative)")
        ax.set_ylim(0, max(budget, spent) * 1.15)
        ax.set_title(f"ε spent on data set {ledger.get('label')} against its budget")
        ax.legend(loc="upper left", fontsize=8)

    return chart(
        "budget",
        "ε spent by each run of this data set, stacked, against its budget.",
        draw_budget,
        height=3.2,
    )


def _epsilon_chart(privacy: dict[str, Any]) -> str:
    """How ε grew over the model's steps, recomputed with the run's own accountant."""

    def draw_steps(ax: Any) -> None:
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
        ax.set_title(
            f"ε over training ({privacy['accountant'].upper()} accountant, "
            f"δ = {num(privacy['delta'])})"
        )

    return chart("epsilon-steps", "How ε grew over this model's training steps.", draw_steps)


def _roc_chart(mia: dict[str, Any]) -> str:
    """The ROC of the loss-threshold membership-inference attack."""

    def draw_roc(ax: Any) -> None:
        ax.plot(mia["roc"]["fpr"], mia["roc"]["tpr"], label=f"attack (AUC {num(mia['auc'])})")
        ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="chance")
        ax.set_xlabel("false positive rate (non-members called members)")
        ax.set_ylabel("true positive rate (members found)")
        ax.set_title("Membership inference attack (loss threshold)")
        ax.legend(loc="lower right", fontsize=8)

    return chart(
        "mia-roc",
        "ROC of a loss-threshold membership-inference attack on training and test "
        "records: the closer to the diagonal, the less the model reveals.",
        draw_roc,
        width=5,
        height=4,
    )


def _audit(run: Run) -> str:
    body = ""
    for trail in run.trails:
        check = trail.check
        cls = {True: "ok", False: "bad", None: "bad"}[check.ok]
        signer = f" Signer key id: <code>{e(check.signer)}</code>." if check.signer else ""
        text = check.text[0].upper() + check.text[1:]
        body += f'<h3>{e(trail.flow)} audit trail</h3><p class="{cls}">{e(text)}.</p>'
        body += f"<p>{e(trail.path)}.{signer}</p>"
    return section("audit", "Audit trail verification", body or "<p>No audit trail.</p>")


def _timeline(run: Run) -> str:
    steps: list[dict[str, Any]] = []
    for trail in run.trails:
        for record in trail.records:
            steps.append(
                {
                    "seq": record.get("seq"),
                    "trail": trail.flow,
                    "time (UTC)": str(record.get("time", ""))[:19].replace("T", " "),
                    "step": record.get("step"),
                    "outcome": record.get("outcome", "ok")
                    + (f" ({record.get('error')})" if record.get("error") else ""),
                    "seconds": record.get("duration_s"),
                }
            )
    timed = [s for s in steps if isinstance(s["seconds"], int | float)]
    chart_html = ""
    if timed:

        def draw(ax: Any) -> None:
            ax.barh(
                [f"{s['step']} ({s['trail']})" for s in timed][::-1],
                [s["seconds"] for s in timed][::-1],
                color="#1f6feb",
            )
            ax.set_xlabel("seconds")
            ax.set_title("Time per step")

        chart_html = chart(
            "durations", "Wall time each step took.", draw, height=0.35 * len(timed) + 1.2
        )
    shown = [{**s, "seconds": num(s["seconds"])} for s in steps]
    return section("timeline", "Steps", table(shown, numeric=("seq", "seconds")) + chart_html)


def _keys(run: Run) -> str:
    rows = []
    manifest = run.manifest
    if manifest:
        rows.append({"use": "vault copy of the input", "key id": manifest["vault"]["kek_id"]})
        if manifest["output"].get("kek_id"):
            rows.append({"use": "published data", "key id": manifest["output"]["kek_id"]})
        for stage in manifest["stages"]:
            key = stage.get("params", {}).get("key_id")
            if key:
                rows.append({"use": f"pseudonym key ({stage['stage']})", "key id": key})
        view = manifest.get("training_view")
        if view:
            rows.append({"use": "training view (vault scope)", "key id": view.get("kek_id")})
    note = "<p>Key ids only: one-way, no key material.</p>"
    return section("keys", "Keys used", note + table(rows))
