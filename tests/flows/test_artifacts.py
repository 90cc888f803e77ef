"""Every sanitize run publishes Prefect artifacts: a markdown summary and tables of
counts, levels and hashes, attached to its flow run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.cli import main

pytestmark = pytest.mark.prefect  # runs flows: Prefect's temporary server


def test_sanitize_publishes_a_summary_and_tables_to_prefect(
    people_csv: Path, demo_policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["sanitize", str(people_csv), "--policy", str(demo_policy_path), "--out", str(out)]
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[summary["run_id"]])
            )
        )
    by_key = {a.key: a for a in found}
    assert set(by_key) >= {
        "privpipe-sanitize-summary",
        "privpipe-sanitize-stages",
        "privpipe-sanitize-generalization",
    }
    markdown = str(by_key["privpipe-sanitize-summary"].data)
    assert summary["policy"]["sha256"] in markdown and "k-anonymity: k" in markdown
    # the trail's signed head, held by Prefect outside the run folder: a pin for later
    last = json.loads((out / "audit.jsonl").read_text().splitlines()[-1])
    assert last["type"] == "checkpoint" and summary["audit"]["head"] == last["hash"]
    assert f"signed head `{last['hash']}`" in markdown
    assert f"--expect-length {last['seq']}" in markdown
    pin = ["--expect-head", last["hash"], "--expect-length", str(last["seq"])]
    assert main(["audit", "verify", str(out / "audit.jsonl"), *pin]) == 0
    stages = by_key["privpipe-sanitize-stages"].data
    rows = json.loads(stages) if isinstance(stages, str) else stages
    assert [r["stage"] for r in rows] == [
        "ingest",
        "detect",
        "transform",
        "anonymize",
        "gate",
        "publish",
    ]
    assert rows[-1]["rows_out"] == summary["rows_out"]
    table = by_key["privpipe-sanitize-generalization"].data
    kept = json.loads(table) if isinstance(table, str) else table
    anonymity = summary["anonymization"]
    assert [r["quasi_identifier"] for r in kept] == anonymity["quasi_identifiers"]
    assert all(
        r["distinct_after"] == anonymity["information"][r["quasi_identifier"]]["distinct_after"]
        for r in kept
    )


def test_quiet_silences_progress_but_not_the_result(
    people_csv: Path, demo_policy_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["sanitize", str(people_csv), "--policy", str(demo_policy_path)]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    loud = capsys.readouterr()
    assert "✓ anonymize" in loud.err
    assert main(["--quiet", *args, "--out", str(tmp_path / "b")]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == ""
    assert "sanitized 500 rows" in quiet.out
