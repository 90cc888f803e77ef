"""Writing a run's report, and recording its SHA-256 in the run's audit trail, so that a
report handed to a reviewer can be matched to the trail it came from (``privpipe audit
show`` lists the ``report`` step; a report edited afterwards no longer matches)."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privacy.audit import AuditTrail, read_trail
from privacy.integrity import Signer, witness_path
from privacy.io import atomic_write_bytes
from privacy.report._build import build_report

__all__ = [
    "REPORT_FILE",
    "RecordedReport",
    "record_report",
    "report_on_failure",
    "report_run",
    "write_report",
]

REPORT_FILE = "report.html"


def write_report(
    run_dir: Path,
    public_key: bytes | None,
    *,
    witness: Path | None = None,
    ledger: Path | None = None,
    out: Path | None = None,
) -> Path:
    """Write the report of ``run_dir`` (atomically) to ``out`` (default
    ``run_dir/report.html``) and return its path. ``witness`` (the signer's keyring's
    witness file) is consulted when the trails are verified; ``ledger`` gives the ε
    spent by each run of the data set."""
    return _write(run_dir, public_key, witness=witness, ledger=ledger, out=out)[0]


def _write(
    run_dir: Path,
    public_key: bytes | None,
    *,
    witness: Path | None,
    ledger: Path | None,
    out: Path | None = None,
) -> tuple[Path, str]:
    target = Path(out) if out is not None else Path(run_dir) / REPORT_FILE
    text = build_report(run_dir, public_key, witness=witness, ledger=ledger)
    return target, atomic_write_bytes(target, text.encode("utf-8"))


@dataclass(frozen=True)
class RecordedReport:
    """A report and its record: ``trail`` is the closed :class:`AuditTrail` that
    appended it (its last checkpoint is the run's final signed head)."""

    path: Path
    sha256: str
    trail: AuditTrail


def record_report(
    report: Path,
    trail: Path,
    signer: Signer,
    context: Mapping[str, Any] | None = None,
    *,
    sha256: str | None = None,
) -> RecordedReport:
    """Append a ``report`` step with ``report``'s SHA-256 (``sha256``: of the bytes the
    caller wrote; else read from the file) to the (closed) audit trail ``trail``, signed
    by ``signer`` under the run's ``context`` (default: that of the trail's last step:
    its run, flow and policy)."""
    if context is None:
        last = read_trail(trail)[-1]
        context = {key: last[key] for key in ("run_id", "flow", "policy") if key in last}
    digest = sha256 or hashlib.sha256(Path(report).read_bytes()).hexdigest()
    with AuditTrail(trail, signer, context=context) as audit:
        where = os.path.relpath(Path(report).resolve(), Path(trail).resolve().parent)
        audit.append("report", outputs={"sha256": digest}, params={"file": where})
    return RecordedReport(Path(report), digest, audit)


def report_run(
    run_dir: Path,
    signer: Signer,
    trail: Path,
    context: Mapping[str, Any],
    *,
    ledger: Path | None = None,
) -> RecordedReport:
    """What a flow does at its end (success or failure): write ``run_dir``'s report,
    verified against ``signer``'s own public key and the witness beside its keyring
    (``signer.signing_home``), then record its SHA-256 in the run's (closed) ``trail``."""
    home = signer.signing_home
    witness = witness_path(home) if home is not None else None
    public_key = signer.signing_public_key
    if ledger is not None and not Path(ledger).is_file():
        ledger = None  # a run that charged nothing (training.dp: false) has no ledger
    written, digest = _write(run_dir, public_key, witness=witness, ledger=ledger)
    return record_report(written, trail, signer, context, sha256=digest)


@contextlib.contextmanager
def report_on_failure(
    run_dir: Path,
    signer: Signer,
    trail: Path,
    context: Mapping[str, Any],
    *,
    enabled: bool = True,
) -> Iterator[None]:
    """Around a flow's work (entered before its audit trail, so left after the trail is
    closed and signed): when the work fails, write the failed run's report (NOT
    RELEASABLE, with the failing row) before the error goes on. A report that cannot be
    written never hides the run's own error."""
    try:
        yield
    except BaseException:
        if enabled and Path(trail).is_file():
            with contextlib.suppress(Exception):
                report_run(run_dir, signer, trail, context)
        raise
