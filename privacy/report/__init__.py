"""The compliance review report: one self-contained HTML file per run, and one page
for a schedule of runs.

It reads what a run leaves (the manifest, the audit trails, the model card, the
ledger's charges), verifies the audit trails, and renders for a reviewer who is not an
engineer: a verdict first (RELEASABLE or NOT RELEASABLE, one row per guarantee with its
required and achieved figures and its evidence), then column by column, personal data
found, k-anonymity and risk, differential privacy and the model, the trails, the steps
and the keys. CSS and plots (matplotlib, SVG) are inline; a Content-Security-Policy
forbids every request, so the file fetches nothing. Like everything a run leaves
unsealed, it holds no value from the data: counts, hashes, ids, levels and figures.
:func:`print_pdf` prints it with headless Chromium for signing and archiving.
"""

from privacy.report._build import CHARTS, SECTIONS, build_report
from privacy.report._html import load_plotting
from privacy.report._pdf import print_pdf
from privacy.report._run import find_run, load_run
from privacy.report._schedule import SCHEDULE_CHARTS, build_schedule_report, is_schedule_root
from privacy.report._verdict import Guarantee, Verdict, verdict
from privacy.report._write import (
    REPORT_FILE,
    record_report,
    report_on_failure,
    report_run,
    write_report,
)

__all__ = [
    "CHARTS",
    "REPORT_FILE",
    "SCHEDULE_CHARTS",
    "SECTIONS",
    "Guarantee",
    "Verdict",
    "build_report",
    "build_schedule_report",
    "find_run",
    "is_schedule_root",
    "load_plotting",
    "load_run",
    "print_pdf",
    "record_report",
    "report_on_failure",
    "report_run",
    "verdict",
    "write_report",
]
