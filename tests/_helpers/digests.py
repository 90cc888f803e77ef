"""The attack on unkeyed digests: a one-line SSN file among 10,000 candidates."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

PLANTED_SSN = "219-42-4242"
SSN_CANDIDATES = [f"219-42-{n:04d}" for n in range(10_000)]  # the planted one among them


def one_line_input(value: str) -> bytes:
    """The whole input file for one SSN: a single JSON Lines record."""
    return json.dumps({"ssn": value}).encode() + b"\n"


def brute_force(blob: bytes, candidates: list[str], file_of: Callable[[str], bytes]) -> list[str]:
    """The candidates whose unkeyed digest appears anywhere in ``blob``: SHA-256 (and
    SHA-512, BLAKE2b) of the whole file, of the value alone and of the value's line, as
    hex (any case) or raw bytes. What an attacker holding only the trail tries first."""
    text = blob.decode("latin-1").lower()
    hexes = set(re.findall(r"[0-9a-f]{64,128}", text))
    found = []
    for value in candidates:
        for data in (file_of(value), value.encode(), value.encode() + b"\n"):
            for fn in (hashlib.sha256, hashlib.sha512, hashlib.blake2b):
                digest = fn(data)
                if any(digest.hexdigest() in h for h in hexes) or digest.digest() in blob:
                    found.append(value)
    return sorted(set(found))


def run_artifacts(out: Path) -> bytes:
    """Every byte a run leaves in its folder (trail, head, manifest, report, vault and
    published files, sealed headers included)."""
    return b"".join(p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file())
