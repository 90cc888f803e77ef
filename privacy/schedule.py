"""Scheduled runs' bookkeeping: one dated folder per run, and the record of the last
successful run that lets an unchanged input be skipped (``schedule.skip_unchanged``).

Plain files and digests (the input's keyed, never a plain hash of raw content); the
flow that uses them is ``flows/serve.py``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

from privacy._atomic import private_dir
from privacy.layout import MANIFEST_FILE

__all__ = [
    "MANIFEST_FILE",
    "SKIPS_FILE",
    "STATE_FILE",
    "make_run_folder",
    "read_json",
    "read_skips",
    "record_skip",
    "run_folder_name",
    "unchanged_since",
]

STATE_FILE = "latest.json"
SKIPS_FILE = "skipped.jsonl"  # one line per run skipped as unchanged, for the schedule report
_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{6}Z(-\d+)?$")


def run_folder_name(moment: dt.datetime) -> str:
    """``2026-11-29T074512Z``: the UTC second a run started, safe in any file system."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ")


def make_run_folder(root: Path, moment: dt.datetime | None = None) -> Path:
    """Create and return a new dated folder under ``root``; never one that exists.

    ``mkdir`` without ``exist_ok`` is the claim, so two runs (or two serving
    processes) starting in the same second get ``STAMP`` and ``STAMP-2``. Folders it
    creates are 0700.
    """
    stamp = run_folder_name(moment or dt.datetime.now(dt.UTC))
    private_dir(root)
    for n in itertools.count(1):
        folder = root / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            private_dir(folder, exist_ok=False)
        except FileExistsError:
            continue
        return folder
    raise AssertionError("unreachable")  # pragma: no cover


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when it is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def unchanged_since(root: Path, input_hmac: str, key_id: str, policy_sha256: str) -> str | None:
    """The folder name of the last successful run if it processed this very input (by
    its keyed digest, HMAC-SHA256 under the content key ``key_id``: see
    :mod:`privacy.hashing`) under this very policy, else None.

    ``ROOT/latest.json`` says which run succeeded last; that run's own manifest must
    still be there and record the same keyed digest, key id and policy hash. Anything
    missing or unreadable means "changed": the run goes ahead. So does a manifest
    written before input digests were keyed (``input.sha256``): it is reprocessed once.
    """
    state = read_json(root / STATE_FILE)
    if state is None or not isinstance(state.get("run"), str) or not _FOLDER.match(state["run"]):
        return None
    manifest = read_json(root / state["run"] / MANIFEST_FILE)
    if manifest is None:
        return None
    recorded = manifest.get("input") or {}
    recorded_policy = (manifest.get("policy") or {}).get("sha256")
    if (
        recorded.get("hmac_sha256") == input_hmac
        and recorded.get("key_id") == key_id
        and recorded_policy == policy_sha256
    ):
        return str(state["run"])
    return None


def record_skip(root: Path, entry: dict[str, Any]) -> None:
    """Append ``entry`` (time, the last run, the input's keyed digest, the policy hash:
    never a value) to ``ROOT/skipped.jsonl``. A skipped run writes no run folder, so
    this line is what the schedule report shows of it. It is bookkeeping, not evidence:
    a skip publishes nothing, and a forged or deleted line changes no release."""
    private_dir(root)
    line = (json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
    descriptor = os.open(root / SKIPS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)


def read_skips(root: Path) -> list[dict[str, Any]]:
    """The skipped runs ``record_skip`` recorded under ``root`` (unreadable lines left out)."""
    try:
        lines = (root / SKIPS_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out
