"""The review report of a `privpipe run`: self-contained, every section with real
figures, and rendered by a real browser (headless Chromium, where it is installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from flows.cli import main
from privacy.report import SECTIONS

pytestmark = pytest.mark.prefect  # runs flows: Prefect's temporary server


@pytest.fixture(scope="module")
def run_dir(people, demo_policy_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("run")
    source = folder / "people.csv"
    people.write_csv(source)
    out = folder / "out"
    args = ["-q", "run", str(source), "--policy", str(demo_policy_path), "--out", str(out)]
    assert main([*args, "--ledger", str(folder / "ledger.json")]) == 0
    return out


def test_every_run_writes_a_self_contained_report_with_every_section(run_dir: Path) -> None:
    text = (run_dir / "report.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in text
    assert text.count("Verified:") == 2  # the sanitize and the train trails
    card = json.loads((run_dir / "model" / "model_card.json").read_text())
    assert str(card["privacy"]["epsilon"]) in text
    manifest = json.loads((run_dir / "sanitized" / "manifest.json").read_text())
    assert manifest["policy"]["sha256"] in text and manifest["output"]["sha256"] in text
    assert text.count("<svg") >= 4  # timeline, class sizes, budget, ε over steps, ROC
    # it fetches nothing: no scripts, stylesheets, images or frames from elsewhere
    assert not re.search(r"<(script|link|img|iframe)\b", text)
    assert not re.search(r"(src|href)=\"?https?:", text)
    assert (run_dir / "sanitized" / "report.html").is_file()
    assert (run_dir / "model" / "report.html").is_file()


def test_a_tampered_trail_shows_as_failed(run_dir: Path, tmp_path: Path, session_keyring) -> None:  # type: ignore[no-untyped-def]
    from privacy.report import build_report

    copy = tmp_path / "copy"
    shutil.copytree(run_dir / "sanitized", copy)
    trail = copy / "audit.jsonl"
    trail.write_text(trail.read_text().replace('"ingest"', '"ingesT"', 1))
    assert "Verification FAILED" in build_report(copy, session_keyring.signing_public_key)


def test_a_trail_cut_back_shows_as_failed_against_the_witness(  # type: ignore[no-untyped-def]
    run_dir: Path, tmp_path: Path, session_keyring
) -> None:
    """A copy of the run folder whose trail lost its last steps (and its .head): every
    hash and signature left checks out; only the witness knows the trail was longer."""
    from privacy.audit import witness_path
    from privacy.report import build_report

    copy = tmp_path / "cut"
    shutil.copytree(run_dir / "sanitized", copy)
    trail = copy / "audit.jsonl"
    lines = trail.read_bytes().splitlines(keepends=True)
    checkpoints = [i for i, line in enumerate(lines) if b'"type":"checkpoint"' in line]
    trail.write_bytes(b"".join(lines[: checkpoints[1] + 1]))  # back to an earlier one
    (copy / "audit.jsonl.head").unlink()
    key, witness = session_keyring.signing_public_key, witness_path(session_keyring.path)
    plain = build_report(copy, key)
    assert "Verification FAILED" not in plain, re.findall(r"Verification FAILED[^<]*", plain)
    text = build_report(copy, key, witness=witness)
    assert "Verification FAILED" in text and f"recorded {len(lines)} records" in text
    intact = build_report(run_dir, key, witness=witness)
    assert "Verification FAILED" not in intact and f"the witness {witness} recorded" in intact


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.skipif(
    _chromium() is None,
    reason="headless Chromium is not installed here (.ci/run installs Debian's chromium)",
)
def test_chromium_renders_every_section_and_a_screenshot_that_is_not_blank(
    run_dir: Path, tmp_path: Path
) -> None:
    browser = _chromium()
    assert browser is not None
    page = (run_dir / "report.html").resolve().as_uri()
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run(
        [*common, "--dump-dom", page], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    for section in SECTIONS:
        assert f'id="{section}"' in dom
    shot = tmp_path / "report.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1200,2400", page],
        capture_output=True,
        timeout=120,
        check=True,
    )
    from matplotlib import image

    pixels = image.imread(shot)
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1000
    assert float(pixels[..., :3].std()) > 0.05  # text, tables and plots, not a blank page
