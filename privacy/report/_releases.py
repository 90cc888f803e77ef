"""The report's DP releases beside the model: the synthetic table (utility, the privacy
check against the holdout) and the statistics (each query's noise), and the ledger's
chart of every release charged to the data set. Figures come from each release's
card, shown only when its bytes are the ones its signed record names."""

from __future__ import annotations

from typing import Any

from privacy.report._html import chart, details, e, num, section, table
from privacy.report._run import Run

__all__ = ["RELEASE_COLOURS", "ledger_chart", "releases_section"]

RELEASE_COLOURS = {"model": "#1f6feb", "synthetic": "#8250df", "statistics": "#1a7f37"}


def releases_section(run: Run) -> str:
    synthetic, statistics = run.releases.get("synthesize"), run.releases.get("statistics")
    body = ""
    if run.charges:
        body += ledger_chart(run.charges)
    if synthetic is not None:
        body += "<h3>Synthetic table</h3>" + _synthetic(synthetic)
    if statistics is not None:
        body += "<h3>Statistics</h3>" + _statistics(statistics)
    if synthetic is None and statistics is None:
        body += "<p>No DP synthetic table or statistics release in this run.</p>"
    return section("releases", "DP releases: synthetic table and statistics", body)


def ledger_chart(charges: list[dict[str, Any]]) -> str:
    """ε charged to the data set by every release, stacked in ledger order, coloured
    by kind (model, synthetic table, statistics), against the budget."""
    budget = max((float(c.get("budget") or 0) for c in charges), default=0.0)

    def draw(ax: Any) -> None:
        bottom = 0.0
        seen: set[str] = set()
        for i, charge in enumerate(charges, start=1):
            kind = str(charge.get("release") or "model")
            value = float(charge.get("epsilon") or 0)
            ax.bar(
                f"#{i} {kind}",
                value,
                bottom=bottom,
                color=RELEASE_COLOURS.get(kind, "#8c959f"),
                label=kind if kind not in seen else None,
            )
            seen.add(kind)
            bottom += value
        if budget:
            ax.axhline(budget, color="#d1242f", linestyle="--", label=f"budget ε = {num(budget)}")
        ax.set_ylabel("ε spent (cumulative)")
        ax.set_ylim(0, max(budget, bottom) * 1.15 or 1)
        ax.set_title("Every release charged to the data set (verified ledger)")
        ax.legend(loc="upper left", fontsize=8)

    return chart(
        "ledger",
        "ε charged by each release of this data set (model, synthetic table, statistics), "
        "stacked in ledger order, against its budget.",
        draw,
        height=3.2,
    )


def _synthetic(card: dict[str, Any]) -> str:
    privacy, check = card["privacy"], card["privacy_check"]
    marginals, fit = card["utility"]["marginals"], card["utility"].get("tstr")
    rows = [
        {"figure": "mechanism", "value": privacy.get("mechanism")},
        {"figure": "ε (δ)", "value": f"{num(privacy['epsilon'])} ({num(privacy['delta'])})"},
        {"figure": "ρ (zCDP)", "value": num(privacy.get("rho"))},
        {"figure": "accountant", "value": privacy.get("accountant")},
        {"figure": "composition", "value": privacy.get("composition")},
        {"figure": "rows × columns", "value": f"{num(card['rows'])} × {len(card['columns'])}"},
        {"figure": "marginals measured", "value": num(privacy.get("measurements"))},
        {"figure": "1-way TVD, mean", "value": num(marginals["one_way_mean"])},
        {"figure": "2-way TVD, mean", "value": num(marginals["two_way_mean"])},
        {
            "figure": "2-way TVD, worst",
            "value": f"{num(marginals['two_way_max'])} ({marginals.get('two_way_worst')})",
        },
        {
            "figure": "exact matches with training rows (holdout's)",
            "value": f"{num(check['exact_match_share'])} "
            f"({num(check['holdout_exact_match_share'])})",
        },
        {
            "figure": "distance to closest record, median (holdout's)",
            "value": f"{num(check['dcr_synthetic']['q50'])} ({num(check['dcr_holdout']['q50'])})",
        },
        {"figure": "membership attack AUC (0.5: chance)", "value": num(check["membership_auc"])},
    ]
    if fit:
        rows += [
            {
                "figure": f"TSTR accuracy / F1 ({fit['label']})",
                "value": f"{num(fit['synthetic']['accuracy'])} / {num(fit['synthetic']['f1'])}",
            },
            {
                "figure": "trained on real rows: accuracy / F1",
                "value": f"{num(fit['real']['accuracy'])} / {num(fit['real']['f1'])}",
            },
        ]
    columns = ", ".join(card["columns"])
    dropped = card.get("dropped_text") or []
    note = (
        f"<p>Columns: {e(columns)}."
        + (f" Free text dropped: {e(', '.join(dropped))}." if dropped else "")
        + " Every domain is the policy's (none read from the data).</p>"
    )
    return (
        note
        + table(rows)
        + _marginals_chart(marginals)
        + details({"domain": card.get("domain"), "privacy_check": check, "tstr": fit})
    )


def _marginals_chart(marginals: dict[str, Any]) -> str:
    one = marginals["one_way"]

    def draw(ax: Any) -> None:
        names = list(one)
        ax.barh(names[::-1], [one[n] for n in names][::-1], color="#8250df", label="1-way")
        ax.axvline(marginals["two_way_mean"], color="#d1242f", linestyle="--", label="2-way mean")
        ax.set_xlabel("total variation distance (0: identical)")
        ax.set_title("Synthetic vs training rows: marginal distances")
        ax.legend(loc="lower right", fontsize=8)

    return chart(
        "marginals",
        "TVD of each column's 1-way marginal between the synthetic table and the training "
        "rows, and the mean over every 2-way marginal.",
        draw,
        height=0.3 * len(one) + 1.4,
    )


def _statistics(card: dict[str, Any]) -> str:
    privacy = card["privacy"]
    rows = [
        {
            "query": q["name"],
            "kind": q["kind"],
            "column": q.get("column") or "—",
            "by": ", ".join(q.get("by") or []) or "—",
            "groups": num(q["cells"]),
            "noise scale": num(q["noise_scale"]),
            "noise sd": num(q["std"]),
        }
        for q in card["queries"]
    ]
    head = (
        f"<p>{e(card['mechanism'])} noise (OpenDP), ε {num(privacy['epsilon'])}"
        f"{' at δ ' + num(privacy['delta']) if privacy.get('delta') else ''}, split evenly "
        f"over {len(rows)} queries; every declared group released, empty ones too. "
        f"{num(card['rows'])} values, each with its 95 % interval.</p>"
    )
    return head + table(rows, numeric=("groups", "noise scale", "noise sd"))
