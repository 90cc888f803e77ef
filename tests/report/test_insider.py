"""The insider who can write the output folders, without the passphrase, against the
verdict a reviewer signs (issue 30, items 1 and 2).

Each test copies one real `privpipe run` (sanitize, then DP training, with a ledger),
changes what such a writer can change, and asks the report and `audit verify`. Every
one of these was RELEASABLE, or "intact", while the verdict read the manifest and the
model card: a value a reviewer relies on now comes from a signed record, or from a file
whose hash a signed record carries. The untouched copy stays RELEASABLE, so each
verdict below is the change's doing."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.cli import main
from privacy.integrity import witness_path
from privacy.report import build_report
from tests.conftest import KEYRING

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


@pytest.fixture(scope="module")
def original(
    people, model_only_policy_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("insider")
    source = folder / "people.csv"
    people.write_csv(source)
    out = folder / "out"
    args = ["-q", "run", str(source), "--policy", str(model_only_policy_path), "--out", str(out)]
    assert main([*args, "--ledger", str(folder / "ledger.jsonl")]) == 0
    return folder


@pytest.fixture
def run(original: Path, tmp_path: Path) -> Path:
    """A copy of the run's output folder (and its ledger), to tamper with."""
    shutil.copytree(original / "out", tmp_path / "out")
    for ledger in original.glob("ledger.jsonl*"):  # with its signed head
        shutil.copy(ledger, tmp_path / ledger.name)
    return tmp_path / "out"


def _report(folder: Path, session_keyring: Any, ledger: Path | None = None) -> str:
    key = session_keyring.signing_public_key
    return build_report(folder, key, witness=witness_path(KEYRING), ledger=ledger)


def _releasable(text: str) -> bool:
    assert ('data-verdict="releasable"' in text) != ('data-verdict="not-releasable"' in text)
    return 'data-verdict="releasable"' in text


def _failing(text: str) -> dict[str, str]:
    """Each failing guarantee row: its key and its text (tags stripped)."""
    rows = re.findall(r'<tr id="g-([^"]+)">(.*?)</tr>', text, flags=re.S)
    return {
        key: html.unescape(re.sub(r"<[^>]+>", " ", body))
        for key, body in rows
        if re.search(r"<td>\s*(?:<[^>]+>\s*)*FAIL", body)
    }


def _verify(trail: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["audit", "verify", str(trail)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_untouched_copy_is_releasable_and_intact(
    run: Path, session_keyring: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _report(run, session_keyring, run.parent / "ledger.jsonl")
    assert _releasable(text), _failing(text)
    for trail in (run / "sanitized" / "audit.jsonl", run / "model" / "audit.jsonl"):
        code, said = _verify(trail, capsys)
        assert code == 0, said
        assert "recorded file(s) match their signed SHA-256" in said


def test_attack_a_failed_run_given_another_run_s_manifest(
    run: Path,
    tmp_path: Path,
    session_keyring: Any,
    people,
    demo_policy_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """A run that failed at ingest, its folder given the good run's manifest with the
    run id changed to the failed run's: no signed publish, so nothing was released."""
    bad = tmp_path / "bad.csv"
    people.drop("age").write_csv(bad)  # a declared column missing: ingest fails
    failed = tmp_path / "failed"
    args = ["-q", "sanitize", str(bad), "--policy", str(demo_policy_path), "--out", str(failed)]
    assert main(args) != 0
    trail = [json.loads(line) for line in (failed / "audit.jsonl").read_text().splitlines()]
    run_id = next(r["run_id"] for r in trail if r.get("type") == "step")
    manifest = json.loads((run / "sanitized" / "manifest.json").read_text())
    manifest["run_id"] = run_id
    (failed / "manifest.json").write_text(json.dumps(manifest))
    text = _report(failed, session_keyring)
    assert not _releasable(text)
    failing = _failing(text)
    assert "sanitize-success" in failing or any("ingest" in v for v in failing.values())
    assert "manifest-file" in failing and "manifest.json" in failing["manifest-file"]


def test_attack_a_folder_made_from_nothing(
    tmp_path: Path, session_keyring: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    made = tmp_path / "made"
    made.mkdir()
    (made / "manifest.json").write_text("{}")
    (made / "audit.jsonl").write_text("")
    text = _report(made, session_keyring)
    assert not _releasable(text)
    assert "no records" in text
    code, said = _verify(made / "audit.jsonl", capsys)
    assert code == 3 and "no records: an empty trail is no evidence" in said


def test_attack_a_copy_whose_trail_was_emptied_and_its_head_deleted(
    run: Path, session_keyring: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """At another path the witness knows no trail: an empty one has no first record to
    be known by, and is still no evidence."""
    trail = run / "sanitized" / "audit.jsonl"
    trail.write_bytes(b"")
    (run / "sanitized" / "audit.jsonl.head").unlink()
    text = _report(run / "sanitized", session_keyring)
    assert not _releasable(text)
    code, said = _verify(trail, capsys)
    assert code == 3 and "no records" in said


def test_attack_the_published_file_replaced_and_the_manifest_hash_updated(
    run: Path, session_keyring: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sealed raw copy (a real sealed file, the custodian can open it) put in place
    of the published data, and manifest.output.sha256 set to its hash: the signed
    publish record holds the real SHA-256 of both files."""
    import hashlib

    sanitized = run / "sanitized"
    published = sanitized / "data.parquet.sealed"
    raw = sanitized / "vault" / "people.csv.sealed"
    published.write_bytes(raw.read_bytes())
    manifest = json.loads((sanitized / "manifest.json").read_text())
    manifest["output"]["sha256"] = hashlib.sha256(published.read_bytes()).hexdigest()
    (sanitized / "manifest.json").write_text(json.dumps(manifest))
    text = _report(run, session_keyring)
    assert not _releasable(text)
    failing = " ".join(_failing(text).values())
    assert "data.parquet.sealed" in failing and "changed since the run recorded" in failing
    code, said = _verify(sanitized / "audit.jsonl", capsys)
    assert code == 3 and "data.parquet.sealed" in said


def test_attack_the_model_card_edited_to_a_smaller_epsilon(
    run: Path, session_keyring: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ε the report prints is the signed train record's, and the edited card is a
    failing row naming the card; `audit verify` of the model trail exits 3."""
    card_path = run / "model" / "model_card.json"
    card = json.loads(card_path.read_text())
    signed = card["privacy"]["epsilon"]
    card["privacy"]["epsilon"] = 0.1
    card_path.write_text(json.dumps(card))
    text = _report(run, session_keyring)
    assert not _releasable(text)
    failing = _failing(text)
    assert "card-file" in failing and "model_card.json" in failing["card-file"]
    epsilon = re.search(r'<tr id="g-epsilon">(.*?)</tr>', text, flags=re.S)
    assert epsilon and "0.1 " not in epsilon.group(1) and "params.epsilon" in epsilon.group(1)
    assert f"ε = {signed:.3g}" in epsilon.group(1)
    code, said = _verify(run / "model" / "audit.jsonl", capsys)
    assert code == 3 and "model_card.json" in said


def test_a_card_that_lacks_a_field_is_a_failing_row_not_a_crash(
    run: Path, session_keyring: Any
) -> None:
    card_path = run / "model" / "model_card.json"
    card = json.loads(card_path.read_text())
    del card["privacy"], card["data"]
    card_path.write_text(json.dumps(card))
    text = _report(run, session_keyring)
    assert not _releasable(text)
    assert "card-file" in _failing(text)
    (run / "sanitized" / "manifest.json").write_text("{}")  # and a manifest that lacks all
    text = _report(run, session_keyring)
    assert not _releasable(text) and "manifest-file" in _failing(text)


def test_attack_a_non_private_model_presented_as_private(
    tmp_path: Path,
    session_keyring: Any,
    people,
    demo_policy_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """training.dp: false, then the card edited to private, ε 0.5: the row comes from
    the signed train record (not private), and the card is a failing row."""
    data = yaml.safe_load(demo_policy_path.read_text())
    data["training"]["dp"] = False
    policy = tmp_path / "plain.yaml"
    policy.write_text(yaml.safe_dump(data, sort_keys=False))
    source, out = tmp_path / "people.csv", tmp_path / "plain"
    people.write_csv(source)
    assert main(["-q", "run", str(source), "--policy", str(policy), "--out", str(out)]) == 0
    card_path = out / "model" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["privacy"].update(private=True, epsilon=0.5, delta=1e-6, accountant="prv")
    card_path.write_text(json.dumps(card))
    text = _report(out, session_keyring)
    assert not _releasable(text)
    epsilon = re.search(r'<tr id="g-epsilon">(.*?)</tr>', text, flags=re.S)
    assert epsilon and "NOT differentially private" in epsilon.group(1)
    assert "params.private" in epsilon.group(1) and "0.5" not in epsilon.group(1)
    assert "card-file" in _failing(text)


def test_attack_forged_ledger_charges_are_a_failing_row(run: Path, session_keyring: Any) -> None:
    """A charge edited in the ledger the report is given: the ledger does not verify,
    so its charges are not shown as evidence, and the verdict fails on it."""
    ledger = run.parent / "ledger.jsonl"
    lines = ledger.read_text().splitlines(keepends=True)
    charge = next(i for i, line in enumerate(lines) if '"step":"charge"' in line)
    lines[charge] = re.sub(r'"epsilon":[0-9.e-]+', '"epsilon":0.01', lines[charge], count=1)
    ledger.write_text("".join(lines))
    text = _report(run, session_keyring, ledger)
    assert not _releasable(text)
    assert "ledger" in _failing(text)


def test_attack_a_trail_cut_back_to_before_publish_shown_without_the_witness(
    run: Path, session_keyring: Any
) -> None:
    """Cut at the signed checkpoint after the gate, .head deleted, and the report asked
    on a machine without the witness: every record left verifies and every guarantee
    they report passes, but no signed publish says this run released anything."""
    trail = run / "sanitized" / "audit.jsonl"
    lines = trail.read_bytes().splitlines(keepends=True)
    records = [json.loads(line) for line in lines]
    gate = next(i for i, r in enumerate(records) if r.get("step") == "gate")
    trail.write_bytes(b"".join(lines[: gate + 2]))  # the gate and its checkpoint
    (run / "sanitized" / "audit.jsonl.head").unlink()
    text = build_report(run / "sanitized", session_keyring.signing_public_key)
    assert not _releasable(text)
    failing = _failing(text)
    assert "sanitize-success" in failing and "no signed successful publish" in str(failing)
    assert "manifest-file" in failing  # present, but not this run's: nothing signed it


def test_attack_another_run_s_model_folder_copied_in(
    run: Path, tmp_path: Path, session_keyring: Any, model_only_policy_path: Path
) -> None:
    """A model folder from another run (other people, its own verified trail, ε and
    budget) put in this run's place: its train record names data this run never wrote."""
    from privacy.synth import synthesize

    source, other = tmp_path / "others.csv", tmp_path / "other"
    synthesize(500, seed=77).write_csv(source)
    args = ["-q", "run", str(source), "--policy", str(model_only_policy_path), "--out", str(other)]
    assert main(args) == 0
    assert _releasable(_report(other, session_keyring))
    shutil.rmtree(run / "model")
    shutil.copytree(other / "model", run / "model")
    text = _report(run, session_keyring)
    assert not _releasable(text)
    failing = _failing(text)
    assert "model-data" in failing and "which this run's publish did not write" in str(failing)
