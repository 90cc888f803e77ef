"""The footprint follows the work: a policy with nothing for Presidio loads no spaCy model.

Each case runs the sanitize stages (detect, transform, anonymize, gate) in a fresh
interpreter and reports which heavy libraries it imported: the test process itself has
them loaded already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = r"""
import json, sys, tempfile
from pathlib import Path
import polars as pl
from privacy import stages
from privacy.crypto import Keyring
from privacy.detect import TextScanner
from privacy.policy import policy_from_dict

columns = {
    "id": {"rule": "pseudonymize"},
    "name": {"rule": "drop"},
    "age": {"rule": "keep", "type": "integer", "role": "quasi_identifier",
            "hierarchy": {"kind": "intervals", "widths": [10, 20]}},
    "score": {"rule": "keep", "type": "float"},
}
extra = json.loads(sys.argv[1])
columns.update(extra)
policy = policy_from_dict({"version": 1, "name": "footprint", "columns": columns,
                           "privacy": {"k": 2}})
rows = 60
data = {
    "id": [f"u{i}" for i in range(rows)],
    "name": ["Ann Lee"] * rows,
    "age": [20 + i % 30 for i in range(rows)],
    "score": [i / 3 for i in range(rows)],
}
if "city" in extra:
    data["city"] = ["Springfield", "Shelbyville"] * (rows // 2)
frame = pl.DataFrame(data)
ring = Keyring.create(Path(tempfile.mkdtemp()) / "r.json", "footprint-pass", scrypt_n=2**14)
scanner = TextScanner.for_policy(policy)
stages.detect(frame, policy, scanner)
out, _ = stages.transform(frame, policy, ring, scanner)
out, _ = stages.anonymize(out, policy)
stages.gate(frame, out, policy, scanner)
heavy = ("spacy", "presidio_analyzer", "torch", "prefect")
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(heavy))))
"""


def _loaded(extra: dict[str, object]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(extra)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_a_policy_without_text_for_presidio_loads_neither_presidio_nor_spacy() -> None:
    # the generalized age ("20-29") is a string in the output, but no text column
    assert _loaded({}) == []


def test_a_kept_text_column_is_audited_with_presidio_and_its_model() -> None:
    loaded = _loaded({"city": {"rule": "keep", "acknowledge_pii": ["LOCATION"]}})
    assert "presidio_analyzer" in loaded and "spacy" in loaded
    assert "torch" not in loaded and "prefect" not in loaded


def test_needs_presidio_names_the_policies_with_text_to_scan() -> None:
    from privacy.detect import needs_presidio
    from privacy.policy import policy_from_dict

    def policy(**columns: dict[str, object]) -> object:
        return policy_from_dict({"version": 1, "name": "p", "columns": columns})

    assert not needs_presidio(
        policy(id={"rule": "pseudonymize"}, n={"rule": "keep", "type": "integer"})
    )
    assert needs_presidio(policy(city={"rule": "keep"}))
    assert needs_presidio(policy(notes={"rule": "scrub"}))
    assert not needs_presidio(policy(email={"rule": "mask"}, ssn={"rule": "drop"}))
