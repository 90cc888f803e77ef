"""What a run leaves, read for the report: the manifest, the model card, each audit
trail (verified against the trusted key, or not), and the ledger's charges.

A run folder is a `privpipe run` folder (``sanitized/`` and ``model/``), a sanitize
output, a model folder, or what a failed run left: an audit trail alone. The trail's
records come first: they exist for failed runs too, and the report's evidence names
them by ``seq``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privacy.audit import read_trail, verify_trail
from privacy.errors import InputError, PrivpipeError

__all__ = ["Check", "Run", "Trail", "find_run", "load_run"]

_AUDIT, _MANIFEST, _CARD = "audit.jsonl", "manifest.json", "model_card.json"


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
    """One audit trail (``flow``: sanitize or train) and its step records of this run."""

    flow: str
    path: Path
    records: list[dict[str, Any]]
    check: Check

    def step(self, name: str) -> dict[str, Any] | None:
        """The last record of step ``name`` (None when the run did not reach it)."""
        found = [r for r in self.records if r.get("step") == name]
        return found[-1] if found else None

    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("outcome") == "failed"]


@dataclass
class Run:
    folder: Path
    manifest: dict[str, Any] | None
    card: dict[str, Any] | None
    trails: list[Trail] = field(default_factory=list)
    charges: list[dict[str, Any]] | None = None  # the ledger's charges of this data set

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


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not readable as JSON ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise InputError(f"{path}: not a JSON object")
    return value


def find_run(run_dir: Path) -> dict[str, Path | None]:
    """The sanitize output and the model folder of a run folder (either may be absent;
    a folder with only an audit trail is a run that failed)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: not a folder")
    sanitized = model = None
    for candidate in (run_dir, run_dir / "sanitized"):
        if (candidate / _MANIFEST).is_file() or _flow_of(candidate) == "sanitize":
            sanitized = candidate
    for candidate in (run_dir, run_dir / "model"):
        if (candidate / _CARD).is_file() or _flow_of(candidate) == "train":
            model = candidate
    if sanitized is None and model is None:
        raise InputError(
            f"{run_dir}: no manifest.json, model_card.json or audit.jsonl: not a run folder "
            "(give a sanitize output, a model folder, a `privpipe run` folder or a serve root)"
        )
    return {"sanitized": sanitized, "model": model}


def _flow_of(folder: Path) -> str | None:
    """The flow that wrote ``folder/audit.jsonl`` (its first step record's), if any."""
    path = folder / _AUDIT
    if not path.is_file():
        return None
    records = read_trail(path)
    return str(records[0].get("flow")) if records else None


def _verify(path: Path, public_key: bytes | None, witness: Path | None) -> Check:
    if public_key is None:
        return Check(None, "not verified: no trusted public signing key was given")
    consulted = witness if witness is not None and witness.is_file() else None
    try:
        checked = verify_trail(path, public_key, witness=consulted)
    except PrivpipeError as exc:
        return Check(False, f"verification FAILED: {exc}")
    seen = (
        f"; the witness recorded {checked.witnessed} of them"
        if consulted is not None
        else "; no witness was consulted"
    )
    return Check(
        True,
        f"verified: {checked.records:,} records, every hash link and {checked.checkpoints} "
        f"signed checkpoint(s) check out{seen}",
        signer=checked.signer,
        records=checked.records,
        checkpoints=checked.checkpoints,
        witnessed=checked.witnessed if consulted is not None else None,
    )


def _trail(
    flow: str, folder: Path, run_id: str | None, key: bytes | None, witness: Path | None
) -> Trail | None:
    path = folder / _AUDIT
    if not path.is_file():
        return None
    records = read_trail(path)
    if run_id is None and records:  # a failed run: its last run in the trail
        run_id = records[-1].get("run_id")
    mine = [r for r in records if r.get("run_id") == run_id and r.get("flow") == flow]
    return Trail(flow, path, mine, _verify(path, key, witness))


def load_run(
    run_dir: Path,
    public_key: bytes | None,
    *,
    witness: Path | None = None,
    ledger: Path | None = None,
) -> Run:
    """Everything the report reads of the run in ``run_dir``."""
    found = find_run(run_dir)
    sanitized, model = found["sanitized"], found["model"]
    manifest = card = None
    if sanitized is not None and (sanitized / _MANIFEST).is_file():
        manifest = _read_json(sanitized / _MANIFEST)
    if model is not None and (model / _CARD).is_file():
        card = _read_json(model / _CARD)
    run = Run(Path(run_dir), manifest, card)
    for flow, folder, doc in (("sanitize", sanitized, manifest), ("train", model, card)):
        if folder is not None:
            trail = _trail(flow, folder, doc.get("run_id") if doc else None, public_key, witness)
            if trail is not None:
                run.trails.append(trail)
    if ledger is not None and card is not None:
        run.charges = _charges(ledger, card)
    return run


def _charges(ledger: Path, card: dict[str, Any]) -> list[dict[str, Any]]:
    """The ledger's charges of the card's data set, in order (unverified here: the
    ledger's own verification is `privpipe budget verify`)."""
    if not ledger.is_file():
        raise InputError(f"{ledger}: ledger not found")
    dataset = (card.get("privacy") or {}).get("ledger", {}).get("dataset")
    out = []
    for record in read_trail(ledger):
        params = record.get("params") or {}
        if record.get("step") == "charge" and dataset in (params.get("datasets") or []):
            out.append({"time": record.get("time"), "seq": record.get("seq"), **params})
    return out
