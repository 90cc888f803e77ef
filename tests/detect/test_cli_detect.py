"""privpipe scan and detect-text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flows.cli import main


def test_scan_json_never_prints_a_value(
    tmp_path: Path, people_csv: Path, people, capsys: pytest.CaptureFixture[str]
) -> None:
    draft = tmp_path / "draft.yaml"
    code = main(
        ["scan", str(people_csv), "--json", "--sample", "100", "--suggest-policy", str(draft)]
    )
    assert code == 0
    out = capsys.readouterr().out
    result = json.loads(out)
    assert {c["column"] for c in result["columns"]} == set(people.columns)
    for column in ("name", "email", "ssn", "phone", "address", "notes"):
        for value in people.get_column(column).head(50).to_list():
            assert value not in out
    assert main(["policy", "check", str(draft)]) == 0
    assert yaml.safe_load(draft.read_text())["columns"]["ssn"]["rule"] == "drop"


def test_detect_text_offsets_and_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "in.jsonl"
    texts = {"a": "Write to ann.lee@example.org or call 221.883.2051x8247.", "b": "Nothing."}
    corpus.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in texts.items()))
    out = tmp_path / "out.jsonl"
    assert main(["detect-text", str(corpus), "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["a", "b"] and lines[1]["spans"] == []
    found = {(s["entity_type"], texts["a"][s["start"] : s["end"]]) for s in lines[0]["spans"]}
    assert found == {
        ("EMAIL_ADDRESS", "ann.lee@example.org"),
        ("PHONE_NUMBER", "221.883.2051x8247"),
    }
    assert set(lines[0]["spans"][0]) == {"start", "end", "entity_type", "score"}


def test_detect_text_uses_the_policys_detector_and_original_offsets(tmp_path: Path) -> None:
    """With --policy, detect-text finds what that policy's sanitize run would (here: only
    e-mail addresses), and offsets are those of the original text, full-width forms and
    zero-width spaces included."""
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\nname: t\ncolumns: {notes: {rule: scrub}}\n"
        "detection: {entities: [EMAIL_ADDRESS]}\n"
    )
    mail = "".join(chr(ord(c) + 0xFEE0) for c in "ann@x.org")  # full-width
    text = f"Ann Lee \u200b(tel 221-883-2051): {mail} ok"
    corpus = tmp_path / "in.jsonl"
    corpus.write_text(json.dumps({"id": 1, "text": text}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["detect-text", str(corpus), "--out", str(out), "--policy", str(policy)]) == 0
    (line,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(s["entity_type"], text[s["start"] : s["end"]]) for s in line["spans"]] == [
        ("EMAIL_ADDRESS", mail)
    ]


def test_detect_text_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "in.jsonl"
    corpus.write_text('{"id": 1, "text": "ok"}\n{"id": 2, "txt": "typo"}\n')
    assert main(["detect-text", str(corpus), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert 'line 2: expected {"id": ..., "text": "..."}' in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_scan_loads_neither_prefect_nor_torch(people_csv: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from flows.cli import main\n"
        f"sys.argv = ['privpipe', 'scan', {str(people_csv)!r}, '--json', '--sample', '20']\n"
        "assert main() == 0\n"
        "print(sorted(m for m in ('prefect', 'torch', 'opacus') if sys.modules.get(m)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
