"""The schedule page knows what the witness knows (issue 30, item 3): a dated run
folder removed with `rm -rf`, or a trail emptied where it stood, stays on the page as
"missing", with the number of records and the time the witness recorded, and NOT
RELEASABLE. Nothing vanishes from the page."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from privacy.integrity import witness_path
from privacy.report import build_schedule_report
from tests._demo import leaky_people
from tests.conftest import KEYRING

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


def _runs(text: str) -> dict[str, str]:
    """Each row of the runs table: its id and its text."""
    return {
        key: re.sub(r"<[^>]+>", " ", body)
        for key, body in re.findall(r'<tr id="run-([^"]+)">(.*?)</tr>', text, flags=re.S)
    }


def test_attack_a_failed_run_s_folder_removed_and_a_trail_emptied(
    tmp_path: Path,
    people,
    demo_policy_path: Path,
    session_keyring: Any,  # type: ignore[no-untyped-def]
) -> None:
    from flows.serve import scheduled_sanitize_flow
    from privacy.errors import PrivacyGuaranteeError

    data = yaml.safe_load(demo_policy_path.read_text())
    data["schedule"] = {"skip_unchanged": False}
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(data, sort_keys=False))
    source, root = tmp_path / "people.csv", tmp_path / "root"

    def run() -> dict[str, Any]:
        return scheduled_sanitize_flow(
            input_path=str(source),
            policy_path=str(policy),
            out_root=str(root),
            keyring_path=str(KEYRING),
        )

    people.write_csv(source)
    good = run()["run"]
    leaky_people(people).write_csv(source)
    with pytest.raises(PrivacyGuaranteeError):
        run()
    failed = next(p for p in root.iterdir() if p.is_dir() and p.name != good)
    records = len((failed / "audit.jsonl").read_bytes().splitlines())
    key, witness = session_keyring.signing_public_key, witness_path(KEYRING)
    before = _runs(build_schedule_report(root, key, witness=witness))
    assert set(before) == {good, failed.name}

    shutil.rmtree(failed)  # the insider's rm -rf
    text = build_schedule_report(root, key, witness=witness)
    rows = _runs(text)
    assert set(rows) == {good, failed.name}  # still on the page
    assert "NOT RELEASABLE" in rows[failed.name]
    assert re.search(
        rf"missing: the witness recorded {records} records, the last at \d{{4}}-", rows[failed.name]
    )
    assert "RELEASABLE" in rows[good] and "NOT RELEASABLE" not in rows[good]

    (root / "latest.json").write_text(json.dumps({"run": failed.name}))  # a convenience copy
    text = build_schedule_report(root, key, witness=witness)
    assert f"{good} (latest.json names {failed.name}, which the signed records do not" in text

    (root / good / "audit.jsonl").write_bytes(b"")  # emptied where it stood
    rows = _runs(build_schedule_report(root, key, witness=witness))
    assert "NOT RELEASABLE" in rows[good] and "missing: the witness recorded" in rows[good]
    assert "emptied or cut" in rows[good]
