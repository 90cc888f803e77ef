"""The report's HTML: one stylesheet (screen and print), tables, numbers written for
people with the exact figures in a collapsible detail, and inline SVG charts.

Everything here renders figures the caller passes; nothing fetches anything. The
document carries a Content-Security-Policy that forbids every request, so a browser
that opens it makes none (and says so on its console if anything tried)."""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "CSP",
    "chart",
    "details",
    "document",
    "e",
    "load_plotting",
    "num",
    "pct",
    "section",
    "table",
]

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
:root{--ink:#1d2430;--line:#d0d7de;--pale:#f3f5f7;--ok:#116329;--bad:#b42318}
body{font:15px/1.5 system-ui,sans-serif;margin:2em auto;max-width:1000px;color:var(--ink);
padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid var(--line);
padding-bottom:.2em;margin-top:2em}h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0;width:100%}
td,th{border:1px solid var(--line);padding:.25em .6em;text-align:left;vertical-align:top}
th{background:var(--pale)}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:var(--ok);font-weight:600}.bad{color:var(--bad);font-weight:600}
.na{color:#57606a}.warn{background:#fff4e5;border:1px solid #f0b36a;padding:.6em}
.verdict{font-size:1.5em;font-weight:700;padding:.4em .7em;border-radius:6px;
display:inline-block;margin:.3em 0}
.verdict.ok{background:#dafbe1;border:2px solid var(--ok)}
.verdict.bad{background:#ffebe9;border:2px solid var(--bad)}
code{background:var(--pale);padding:0 .2em;word-break:break-all}
figure{margin:1em 0}figcaption{font-size:.9em;color:#57606a}
svg{max-width:100%;height:auto}details{margin:.4em 0}summary{cursor:pointer;color:#0969da}
pre{background:var(--pale);padding:.5em;overflow-x:auto;font-size:.8em}
@media print{
  body{margin:0;max-width:none;font-size:11pt}
  details{display:block}details>summary{display:none}
  details:not([open])>pre{display:block}
  table,figure,tr,.verdict{break-inside:avoid;page-break-inside:avoid}
  thead{display:table-header-group}
  h2,h3{break-after:avoid;page-break-after:avoid}
  section{break-before:auto}
  a{color:inherit;text-decoration:none}
}
"""


def e(value: Any) -> str:
    """``value`` as HTML text."""
    return html.escape(str(value))


def num(value: Any, digits: int = 3) -> str:
    """A figure for people: integers with thousands separators, other numbers to
    ``digits`` significant digits (written with a power of ten for the very small), anything else
    as text, and ``—`` for a missing value."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        magnitude = abs(value)
        if magnitude < 1e-3:
            mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
            power = str(int(exponent)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
            return f"{float(mantissa):g} × 10{power}"
        if magnitude >= 10**digits:
            return f"{value:,.0f}"
        decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
        return f"{value:,.{decimals}f}".rstrip("0").rstrip(".")
    return str(value)


def pct(share: Any) -> str:
    """A share (0 to 1) as a percentage for people: ``4.5 %``, ``< 0.1 %`` for a small
    non-zero share, ``—`` when unknown."""
    if share is None or not isinstance(share, int | float):
        return "—"
    value = 100 * float(share)
    if 0 < value < 0.1:
        return "< 0.1 %"
    if 99.9 < value < 100:
        return "> 99.9 %"
    return f"{value:.1f} %".replace(".0 %", " %")


def table(
    rows: Iterable[Mapping[str, Any]],
    *,
    numeric: Iterable[str] = (),
    raw_html: Iterable[str] = (),
    row_ids: Iterable[str] | None = None,
    empty: str = "None.",
) -> str:
    """A table of ``rows`` (dicts with the same keys, already formatted for people).
    Cells of the ``raw_html`` columns are inserted as they are (the caller built them
    from escaped parts); ``numeric`` columns are right-aligned."""
    rows = list(rows)
    if not rows:
        return f"<p>{e(empty)}</p>"
    numeric, raw = set(numeric), set(raw_html)
    ids = list(row_ids) if row_ids is not None else [""] * len(rows)
    head = "".join(f"<th>{e(k)}</th>" for k in rows[0])
    body = []
    for row, row_id in zip(rows, ids, strict=True):
        cells = []
        for key, value in row.items():
            text = str(value) if key in raw else e(value)
            cls = ' class="n"' if key in numeric else ""
            cells.append(f"<td{cls}>{text}</td>")
        attr = f' id="{e(row_id)}"' if row_id else ""
        body.append(f"<tr{attr}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def details(figures: Any, summary: str = "Exact values") -> str:
    """The exact figures behind a section, collapsed (printed open)."""
    text = json.dumps(figures, indent=1, sort_keys=True, default=str)
    return f"<details><summary>{e(summary)}</summary><pre>{e(text)}</pre></details>"


def section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}"><h2>{e(title)}</h2>{body}</section>'


def load_plotting() -> Any:
    """matplotlib's pyplot on the Agg backend (imported once; a flow command starts this
    in the background while Prefect starts)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def chart(
    key: str,
    caption: str,
    draw: Callable[[Any], None],
    *,
    width: float = 7.0,
    height: float = 3.0,
) -> str:
    """A figure with id ``chart-KEY``: ``draw(axes)`` on a fresh matplotlib figure,
    inlined as SVG, with a caption."""
    import warnings

    plt = load_plotting()
    figure, axes = plt.subplots(figsize=(width, height))
    try:
        with warnings.catch_warnings():  # e.g. the PRV accountant's internal RDP notice
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", RuntimeWarning)  # its log(0) at tiny steps
            draw(axes)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    finally:
        plt.close(figure)
    text = buffer.getvalue()
    svg = text[text.index("<svg") :]
    return f'<figure id="chart-{e(key)}">{svg}<figcaption>{e(caption)}</figcaption></figure>'


def document(title: str, body: str) -> str:
    """The whole page: CSP (no request of any kind), the stylesheet, ``body``."""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>{body}</body></html>"
    )
