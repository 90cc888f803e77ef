"""The files a trail's signed records name, held to the SHA-256 those records carry.

A step that writes an artifact records it as ``outputs.files``: its path relative to
the trail's folder and the SHA-256 of the bytes written (taken from memory as they were
written, never read back). The ``report`` step names its file as ``params.file`` with
``outputs.sha256``. The run whose files these are is the trail's *last* run: a later run
into the same folder (``--overwrite``) replaced the earlier run's files, and who cannot
sign cannot append a run.

Whoever can write the folder can replace any of these files, and the manifest or
model card beside them too; none of that changes a signed record. So a verifier that
re-hashes each one (:func:`recorded_files`) says which file was replaced, deleted or
made a link, and a reader that takes a value from a file first checks it here.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RecordedFile", "last_run", "recorded_files", "run_records", "sha256_of"]

_BLOCK = 1 << 20


@dataclass(frozen=True)
class RecordedFile:
    """One file a signed record names, and what is there now: ``status`` is
    ``matches``, ``changed`` (other bytes: replaced or edited), ``missing``, ``link``
    (a symbolic link on the way: not the file the run wrote) or ``outside`` (an
    absolute path: privpipe names its files relative to the trail's folder)."""

    name: str  # as the record names it, relative to the trail's folder
    path: Path
    sha256: str
    seq: int
    step: str
    status: str

    @property
    def ok(self) -> bool:
        return self.status == "matches"

    def cite(self) -> str:
        return f"audit #{self.seq} ({self.step}), outputs.files[{self.name!r}]"

    def problem(self) -> str:
        """One line on what is wrong with the file (for a failing row or exit 3)."""
        what = {
            "changed": "changed since the run recorded its SHA-256: not the bytes the run "
            "wrote (replaced or edited)",
            "missing": "missing",
            "link": "a symbolic link, not the file the run wrote",
            "outside": "named outside the trail's folder: not read",
        }.get(self.status, self.status)
        return f"{self.path}: {what}; the signed SHA-256 is {self.sha256[:16]}… ({self.cite()})"


def last_run(records: Sequence[Mapping[str, Any]], flow: str | None = None) -> str | None:
    """The run id of the trail's last step record (of ``flow``, if given)."""
    for record in reversed(records):
        if record.get("run_id") and (flow is None or record.get("flow") == flow):
            return str(record["run_id"])
    return None


def run_records(
    records: Iterable[Mapping[str, Any]], run_id: str | None, flow: str | None = None
) -> list[dict[str, Any]]:
    """The step records of one run (of ``flow``, if given), in order."""
    return [
        dict(r)
        for r in records
        if run_id is not None
        and r.get("run_id") == run_id
        and (flow is None or r.get("flow") == flow)
    ]


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks (bounded memory), without following
    a link in its last component."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _named(record: Mapping[str, Any]) -> dict[str, str]:
    outputs = record.get("outputs") or {}
    files = outputs.get("files")
    out = (
        {str(k): str(v) for k, v in files.items() if isinstance(v, str)}
        if isinstance(files, Mapping)
        else {}
    )
    if record.get("step") == "report":
        name, digest = (record.get("params") or {}).get("file"), outputs.get("sha256")
        if name and isinstance(digest, str):
            out[str(name)] = digest
    return out


def _status(folder: Path, name: str, digest: str) -> tuple[Path, str]:
    path = folder / name
    if os.path.isabs(name):  # privpipe names its files relative to the trail's folder
        return path, "outside"
    step = folder
    for part in Path(name).parts[:-1]:  # a linked folder on the way is not the run's
        step = step / part
        try:
            if stat.S_ISLNK(os.lstat(step).st_mode):
                return path, "link"
        except FileNotFoundError:
            return path, "missing"
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path, "missing"
    if stat.S_ISLNK(info.st_mode):
        return path, "link"
    if not stat.S_ISREG(info.st_mode):
        return path, "changed"
    try:
        found = sha256_of(path)
    except OSError:
        return path, "missing"
    return path, "matches" if found == digest else "changed"


def recorded_files(
    trail: str | Path,
    records: Sequence[Mapping[str, Any]],
    *,
    run_id: str | None = None,
) -> list[RecordedFile]:
    """Each file the records of ``run_id`` (default: the trail's last run) name, the
    last record naming it winning, re-hashed now. ``records`` are the trail's step
    records, as read after the trail verified."""
    folder = Path(os.path.abspath(Path(trail).parent))
    run = run_id if run_id is not None else last_run(records)
    latest: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for record in run_records(records, run):
        if record.get("outcome", "ok") != "ok":
            continue
        for name, digest in _named(record).items():
            latest[name] = (digest, record)
    out = []
    for name, (digest, named_by) in latest.items():
        path, status = _status(folder, name, digest)
        out.append(
            RecordedFile(
                name,
                path,
                digest,
                int(named_by.get("seq") or 0),
                str(named_by.get("step")),
                status,
            )
        )
    return out
