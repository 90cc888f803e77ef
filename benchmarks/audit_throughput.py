"""Figure: audit records appended and verified per second (1,000,000 records).

Anchor: a plain loop that builds the same record, serializes it with orjson, chains it
with hashlib SHA-256 and writes the line (append); and one that reads the lines back,
parses each and checks the chain (verify). privpipe's figures include what the loop
leaves out: sorted-key canonical JSON, the flock, batched fsyncs, and an Ed25519-signed
checkpoint every 10,000 records (and their verification).
Usage: python benchmarks/audit_throughput.py [--records N]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

import orjson
from _common import bench_keyring, interleaved, report

from privacy.audit import AuditTrail, actor, verify_trail
from privacy.crypto import Keyring
from privacy.integrity import GENESIS

COUNTS = {"rows_in": 1000, "rows_out": 990, "suppressed": 10}
PARAMS = {"status": "ok", "rule": "generalize", "kek_id": "kek-0123456789ab"}
CONTEXT = {
    "run_id": "0b8a43c4-6f6e-4b8a-9d55-2a8f5b0c2d11",
    "flow": "sanitize",
    "policy": {"id": "bench", "sha256": "ab" * 32},
}


def ours_append(path: Path, ring: Keyring, n: int) -> None:
    with AuditTrail(path, ring, context=CONTEXT) as trail:
        for _ in range(n):
            trail.append(
                "transform",
                duration_s=0.25,
                counts=COUNTS,
                params=PARAMS,
                outputs={"sha256": "cd" * 32},
                inputs={"raw": "ef" * 32},
            )


def anchor_append(path: Path, n: int) -> None:
    who = actor()
    prev = GENESIS
    with path.open("wb") as handle:
        for i in range(n):
            record = {
                "type": "step",
                "time": "2026-11-29T00:00:00.000000Z",
                "step": "transform",
                "actor": who,
                "tool": "privpipe",
                **CONTEXT,
                "outcome": "ok",
                "error": None,
                "duration_s": 0.25,
                "inputs": {"raw": "ef" * 32},
                "outputs": {"sha256": "cd" * 32},
                "counts": COUNTS,
                "params": PARAMS,
                "seq": i + 1,
                "prev": prev,
            }
            line = orjson.dumps(record)
            prev = hashlib.sha256(line).hexdigest()
            handle.write(line + b"\n")


def anchor_verify(path: Path) -> None:
    prev = GENESIS
    with path.open("rb") as handle:
        for line in handle:
            record = orjson.loads(line)
            if record["prev"] != prev:
                raise AssertionError("chain broken")
            prev = hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ring = bench_keyring(root)
        counter = iter(range(1000))

        def ours() -> None:
            ours_append(root / f"trail-{next(counter)}.jsonl", ring, n)

        t = interleaved(
            2,
            {
                "append": ours,
                "anchor_append": lambda: anchor_append(root / "anchor.jsonl", n),
            },
        )
        trail = root / "trail-0.jsonl"
        v = interleaved(
            2,
            {
                "verify": lambda: verify_trail(trail, ring.signing_public_key),
                "anchor_verify": lambda: anchor_verify(root / "anchor.jsonl"),
            },
        )
        summary = verify_trail(trail, ring.signing_public_key)
    report(
        f"audit append: {n:,} records",
        n / t["append"],
        n / t["anchor_append"],
        "records/s",
        "orjson + hashlib chain loop",
    )
    report(
        f"audit verify: {n:,} records",
        n / v["verify"],
        n / v["anchor_verify"],
        "records/s",
        "orjson parse + hashlib chain check",
    )
    print(f"  ({summary.checkpoints} signed checkpoints in the trail)")


if __name__ == "__main__":
    main()
