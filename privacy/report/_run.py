"""What a run leaves, read for the report: each audit trail (verified against the
trusted key, or not), the manifest and the model card held to the SHA-256 their signed
records carry, every other file those records name, and the ledger's charges.

A run folder is a `privpipe run` folder (``sanitized/``, ``model/`` and the DP
releases ``synthetic/`` and ``stats/``), a sanitize output, a model or release folder,
or what a failed run left: an audit trail alone. Evidence is
only what is signed: the run is the trail's last run (never the manifest's ``run_id``),
a guarantee's figures come from that run's records in a trail that verified, and the
manifest and the card are shown only when their bytes are the ones the signed record
names; otherwise each is a problem the verdict fails on, naming the file."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privacy.audit import (
    RecordedFile,
    last_run,
    read_trail,
    recorded_files,
    run_records,
    verify_trail,
)
from privacy.errors import InputError, PrivpipeError
from privacy.layout import STATISTICS_CARD, SYNTHETIC_CARD

__all__ = ["Check", "Problem", "Run", "Trail", "find_run", "load_run"]

_AUDIT, _MANIFEST, _CARD = "audit.jsonl", "manifest.json", "model_card.json"
# Each flow's folder in a `privpipe run` folder, and the convenience copy it writes.
FOLDERS = {
    "sanitize": ("sanitized", _MANIFEST),
    "train": ("model", _CARD),
    "synthesize": ("synthetic", SYNTHETIC_CARD),
    "statistics": ("stats", STATISTICS_CARD),
}
RELEASES = ("synthesize", "statistics")  # the DP releases beside a model


@dataclass(frozen=True)
class Problem:
    """Something a file says that its signed record does not: a failing verdict row."""

    key: str  # the row's id
    name: str
    what: str  # what was found, in one line
    evidence: str


@dataclass
class Check:
    """The verification of one trail: ``ok`` True (verified), False (failed) or None
    (not verified: no trusted key was given)."""

    ok: bool | None
    text: str
    signer: str = ""
    records: int = 0
    checkpoints: int = 0
    witnessed: int | None = None


@dataclass
class Trail:
    """One audit trail (``flow``: sanitize or train) and the step records of its last
    run. ``records`` holds them only when the trail verified under the trusted key:
    an unverified record is no evidence. ``files`` are the files those records name,
    re-hashed now."""

    flow: str
    path: Path
    records: list[dict[str, Any]]
    check: Check
    run_id: str | None = None
    files: list[RecordedFile] = field(default_factory=list)

    def step(self, name: str) -> dict[str, Any] | None:
        """The last record of step ``name`` (None when the run did not reach it)."""
        found = [r for r in self.records if r.get("step") == name]
        return found[-1] if found else None

    def succeeded(self, name: str) -> dict[str, Any] | None:
        """The last record of step ``name`` if it is a success, else None."""
        record = self.step(name)
        return record if record is not None and record.get("outcome") == "ok" else None

    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("outcome") == "failed"]

    def file(self, name: str) -> RecordedFile | None:
        return next((f for f in self.files if f.name == name), None)


@dataclass
class Run:
    """A run as the report reads it. ``manifest`` and ``card`` are set only when their
    bytes are the ones their trail's signed record names; ``problems`` says what is not
    (each a failing row). ``charges`` only from a ledger that verified."""

    folder: Path
    manifest: dict[str, Any] | None
    card: dict[str, Any] | None
    trails: list[Trail] = field(default_factory=list)
    charges: list[dict[str, Any]] | None = None  # the ledger's charges of this data set
    ledger: Check | None = None  # the ledger's verification, when one was given
    problems: list[Problem] = field(default_factory=list)
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)  # flow -> its card

    def trail(self, flow: str) -> Trail | None:
        return next((t for t in self.trails if t.flow == flow), None)

    def step(self, name: str) -> tuple[Trail, dict[str, Any]] | None:
        """The record of step ``name`` in whichever trail holds it."""
        for trail in self.trails:
            record = trail.step(name)
            if record is not None:
                return trail, record
        return None

    @property
    def failures(self) -> list[tuple[Trail, dict[str, Any]]]:
        return [(t, r) for t in self.trails for r in t.failed()]


def find_run(run_dir: Path) -> dict[str, Path | None]:
    """The folder of each flow's output in a run folder (``sanitize``, ``train``,
    ``synthesize``, ``statistics``; any may be absent; a folder with only an audit trail
    is a run that failed)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: not a folder")
    found: dict[str, Path | None] = {}
    for flow, (name, document) in FOLDERS.items():
        found[flow] = None
        for candidate in (run_dir, run_dir / name):
            if (candidate / document).is_file() or _flow_of(candidate) == flow:
                found[flow] = candidate
    if not any(found.values()):
        raise InputError(
            f"{run_dir}: no manifest.json, model_card.json, release card or audit.jsonl: not "
            "a run folder (give a sanitize output, a model or release folder, a `privpipe "
            "run` folder or a serve root)"
        )
    return found


def _flow_of(folder: Path) -> str | None:
    """The flow that wrote ``folder/audit.jsonl`` (its first step record's), if any."""
    path = folder / _AUDIT
    if not path.is_file():
        return None
    records = read_trail(path)
    return str(records[0].get("flow")) if records else None


def _verify(
    path: Path, public_key: bytes | None, witness: Path | None
) -> tuple[Check, list[dict[str, Any]]]:
    """The trail's check and, when it verified, the very step records the walk checked."""
    if public_key is None:
        return Check(None, "not verified: no trusted public signing key was given"), []
    consulted = witness if witness is not None and witness.is_file() else None
    records: list[dict[str, Any]] = []
    try:
        checked = verify_trail(path, public_key, witness=consulted, collect=records)
    except PrivpipeError as exc:
        return Check(False, f"verification FAILED: {exc}"), []
    if not records:
        return Check(
            False,
            f"{path}: no records: an empty trail is no evidence of any run (emptied, or "
            "made by hand)",
            signer=checked.signer,
        ), []
    seen = (
        f"; the witness recorded {checked.witnessed} of them"
        if consulted is not None
        else "; no witness was consulted"
    )
    if checked.supersedes:
        seen += f"; {checked.superseded()}"
    return Check(
        True,
        f"verified: {checked.records:,} records, every hash link and {checked.checkpoints} "
        f"signed checkpoint(s) check out{seen}",
        signer=checked.signer,
        records=checked.records,
        checkpoints=checked.checkpoints,
        witnessed=checked.witnessed if consulted is not None else None,
    ), records


def _trail(flow: str, folder: Path, key: bytes | None, witness: Path | None) -> Trail | None:
    path = folder / _AUDIT
    if not path.is_file() and not path.is_symlink():
        return None
    check, records = _verify(path, key, witness)
    run_id = last_run(records, flow)  # the run is the trail's, never the manifest's
    return Trail(
        flow,
        path,
        run_records(records, run_id, flow),
        check,
        run_id,
        recorded_files(path, records, run_id=run_id) if run_id is not None else [],
    )


# The signed record that names each convenience copy, and the fields compared with it.
_DOCS = {
    "sanitize": (_MANIFEST, "publish", "manifest"),
    "train": (_CARD, "train", "model card"),
    "synthesize": (SYNTHETIC_CARD, "synthesize", "synthetic table's card"),
    "statistics": (STATISTICS_CARD, "statistics", "statistics card"),
}


def _document_key(flow: str) -> str:
    return {"sanitize": "manifest-file", "train": "card-file"}.get(flow, f"{flow}-card-file")


def _document(run: Run, trail: Trail, folder: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The manifest (or the card) when its bytes are the ones the signed record names,
    and what is wrong with it otherwise."""
    name, step, title = _DOCS[trail.flow]
    key = _document_key(trail.flow)
    path = folder / name
    if trail.check.ok is not True:
        return None, []  # nothing is evidence; the trail's own row says why
    record = trail.succeeded(step)
    if record is None:
        if path.exists() or path.is_symlink():
            return None, [
                Problem(
                    key,
                    f"{title} held to its signed record",
                    f"{path}: present, but run {trail.run_id} of {trail.path} has no signed "
                    f"successful {step}: it is not this run's",
                    f"{trail.path.name} ({trail.flow})",
                )
            ]
        return None, []
    recorded = trail.file(name)
    if recorded is None:
        return None, [
            Problem(
                key,
                f"{title} held to its signed record",
                f"{path}: audit #{record.get('seq')} ({step}) names no SHA-256 for it",
                f"audit #{record.get('seq')} ({step}, {trail.flow} trail)",
            )
        ]
    if not recorded.ok:
        return None, [
            Problem(key, f"{title} held to its signed record", recorded.problem(), recorded.cite())
        ]
    try:  # read once: the bytes parsed are the bytes hashed (no swap in between)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return None, [Problem(key, f"{title} readable", f"{path}: {exc.strerror}", recorded.cite())]
    if hashlib.sha256(data).hexdigest() != recorded.sha256:
        return None, [
            Problem(
                key,
                f"{title} held to its signed record",
                f"{path}: changed while it was read (its SHA-256 is no longer the one "
                "the run recorded)",
                recorded.cite(),
            )
        ]
    try:
        value = json.loads(data)
    except ValueError:  # matches its hash, so privpipe wrote it: not expected
        value = None
    if not isinstance(value, dict):
        return None, [
            Problem(key, f"{title} readable", f"{path}: not a JSON object", recorded.cite())
        ]
    return value, []


def _file_problems(trail: Trail) -> list[Problem]:
    """A failing row for every other file the run's signed records name that is not
    the file they name (the manifest and the card have their own rows)."""
    docs = {name for name, _, _ in _DOCS.values()}
    return [
        Problem(
            f"file-{trail.flow}-{f.name}",
            f"{f.name} held to its signed SHA-256",
            f.problem(),
            f.cite(),
        )
        for f in trail.files
        if not f.ok and f.name not in docs
    ]


def load_run(
    run_dir: Path,
    public_key: bytes | None,
    *,
    witness: Path | None = None,
    ledger: Path | None = None,
) -> Run:
    """Everything the report reads of the run in ``run_dir``."""
    found = find_run(run_dir)
    run = Run(Path(run_dir), None, None)
    for flow in FOLDERS:
        folder = found[flow]
        if folder is None:
            continue
        trail = _trail(flow, folder, public_key, witness)
        if trail is None:
            name = _DOCS[flow][0]
            if (folder / name).exists():
                run.problems.append(
                    Problem(
                        f"{flow}-trail",
                        f"{flow} audit trail present",
                        f"{folder / name}: no audit trail beside it: nothing signed says "
                        "any run wrote it",
                        "—",
                    )
                )
            continue
        run.trails.append(trail)
        document, problems = _document(run, trail, folder)
        run.problems += problems + _file_problems(trail)
        if flow == "sanitize":
            run.manifest = document
        elif flow == "train":
            run.card = document
        elif document is not None:
            run.releases[flow] = document
    if ledger is not None:
        run.ledger, run.charges = _charges(ledger, run, public_key, witness)
    return run


def _charges(
    ledger: Path, run: Run, public_key: bytes | None, witness: Path | None
) -> tuple[Check, list[dict[str, Any]] | None]:
    """The ledger's verification and, when it verified, its charges of the data set the
    signed train (or release) record names, in order: every kind of release."""
    if not ledger.is_file():
        raise InputError(f"{ledger}: ledger not found")
    check, records = _verify(ledger, public_key, witness)
    if check.ok is not True:
        return check, None
    dataset = None
    for flow in ("train", *RELEASES):
        trail = run.trail(flow)
        record = trail.succeeded(flow) if trail is not None else None
        dataset = dataset or ((record or {}).get("params") or {}).get("ledger", {}).get("dataset")
    out = []
    for entry in records:
        params = entry.get("params") or {}
        if entry.get("step") == "charge" and dataset in (params.get("datasets") or []):
            out.append({"time": entry.get("time"), "seq": entry.get("seq"), **params})
    return check, out
