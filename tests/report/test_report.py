"""The reviewer's report, of a `privpipe run` and of a `serve` schedule: the verdict
and every guarantee row with its evidence, column by column, every chart, the failed
run's NOT RELEASABLE, the report's SHA-256 in the trail, and (with headless Chromium)
rendering without console errors or requests, a PDF, and a screenshot of each section
that is not blank."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.cli import main
from privacy.report import CHARTS, SCHEDULE_CHARTS, SECTIONS
from tests._demo import leaky_people
from tests.conftest import KEYRING

pytestmark = pytest.mark.prefect  # runs flows: Prefect's temporary server

ROWS = (  # every guarantee row a complete run of the demo policy shows
    "k",
    "l",
    "suppression",
    "undeclared-pii",
    "residual-pii",
    "columns",
    "verbatim-identifiers",
    "epsilon",
    "budget",
    "audit-sanitize",
    "audit-train",
    "policy-signature",
    "sanitize-success",
    "train-success",
    "model-data",
)


@pytest.fixture(scope="module")
def run_dir(people, demo_policy_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("run")
    source = folder / "people.csv"
    people.write_csv(source)
    out = folder / "out"
    args = ["-q", "run", str(source), "--policy", str(demo_policy_path), "--out", str(out)]
    assert main([*args, "--ledger", str(folder / "ledger.json")]) == 0
    return out


@pytest.fixture(scope="module")
def schedule_root(
    people, demo_policy_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A serve root as a schedule leaves it: a good run, a skipped unchanged input, and
    a run the gate refused."""
    from flows.serve import scheduled_sanitize_flow
    from privacy.errors import PrivacyGuaranteeError

    folder = tmp_path_factory.mktemp("schedule")
    data = yaml.safe_load(demo_policy_path.read_text())
    data["schedule"] = {"skip_unchanged": True}
    policy = folder / "policy.yaml"
    policy.write_text(yaml.safe_dump(data, sort_keys=False))
    source, root = folder / "people.csv", folder / "root"
    people.write_csv(source)

    def run() -> dict[str, Any]:
        return scheduled_sanitize_flow(
            input_path=str(source),
            policy_path=str(policy),
            out_root=str(root),
            keyring_path=str(KEYRING),
        )

    good = run()
    assert good["status"] == "ok"
    assert run()["status"] == "skipped"
    leaked = people.get_column("email")[7]
    leaky_people(people).write_csv(source)
    with pytest.raises(PrivacyGuaranteeError, match="verbatim"):
        run()
    failed = sorted(p for p in root.iterdir() if p.is_dir() and p.name != good["run"])
    assert len(failed) == 1
    return {"root": root, "good": root / good["run"], "failed": failed[0], "leaked": leaked}


def _visible(text: str) -> str:
    """The page without its collapsed exact values, styles and SVG (what a reader reads)."""
    text = re.sub(r"<details>.*?</details>", "", text, flags=re.S)
    text = re.sub(r"<style>.*?</style>", "", text, flags=re.S)
    return re.sub(r"<svg.*?</svg>", "", text, flags=re.S)


def _row(text: str, key: str) -> str:
    found = re.search(rf'<tr id="g-{re.escape(key)}">(.*?)</tr>', text, flags=re.S)
    assert found, f"no guarantee row {key}"
    return found.group(1)


# --------------------------------------------------------------------------- one run


def test_the_report_opens_with_the_verdict_and_a_row_per_guarantee(run_dir: Path) -> None:
    text = (run_dir / "report.html").read_text()
    verdict = text.index('data-verdict="releasable"')
    assert verdict < text.index('<section id="summary">')
    assert ">RELEASABLE</p>" in text and "NOT RELEASABLE" not in text
    for key in ROWS:
        row = _row(text, key)
        cells = re.findall(r"<td>(.*?)</td>", row, flags=re.S)
        assert len(cells) == 5, (key, cells)  # guarantee, required, achieved, result, evidence
        assert cells[4] and cells[4] != "—", (key, "no evidence")
        if key != "policy-signature":  # the demo policy does not ask for a signature
            assert "pass" in cells[3], (key, cells)
    assert re.search(r"audit #\d+ \(anonymize, sanitize trail\), counts.k_achieved", text)
    # the figures come from the signed records, not from the convenience copies
    assert re.search(r"audit #\d+ \(train, train trail\), params.epsilon", text)
    assert re.search(r"audit #\d+ \(publish, sanitize trail\), params.columns", text)
    card = json.loads((run_dir / "model" / "model_card.json").read_text())
    assert f"{card['privacy']['ledger']['budget']:g}" in _row(text, "budget")
    for section in SECTIONS:
        assert f'<section id="{section}">' in text


def test_every_chart_is_drawn_with_labelled_axes(run_dir: Path) -> None:
    text = (run_dir / "report.html").read_text()
    for name in CHARTS:
        found = re.search(rf'<figure id="chart-{name}">(.*?)</figure>', text, flags=re.S)
        assert found, f"chart {name} is missing"
        assert "<svg" in found.group(1) and "<figcaption>" in found.group(1)
    # the budget chart reads the ledger: one bar per charge of the data set, every kind
    assert "releases charged to the data set" in text
    ledger = re.search(r'<figure id="chart-ledger">(.*?)</figure>', text, flags=re.S)
    assert ledger is not None
    for kind in ("model", "synthetic", "statistics"):
        assert f"{kind}" in ledger.group(1)


def test_numbers_are_rounded_for_people_and_exact_in_the_details(run_dir: Path) -> None:
    text = (run_dir / "report.html").read_text()
    visible = _visible(text)
    assert not re.search(r"\d\.\d{5,}", visible), re.findall(r".{30}\d\.\d{5,}.{10}", visible)
    # no Python float repr (but hex ids and UUIDs may hold "13e-83")
    assert not re.search(r"(?<![\w-])\d(?:\.\d+)?e-\d+(?![\w-])", visible)
    assert "None" not in visible and "{'" not in visible and "True" not in visible
    assert "suppression" in visible
    card = json.loads((run_dir / "model" / "model_card.json").read_text())
    assert str(card["privacy"]["epsilon"]) in text  # exact, in a collapsible detail
    assert "<details><summary>Exact values</summary>" in text


def test_column_by_column_says_what_each_rule_did(run_dir: Path) -> None:
    text = (run_dir / "report.html").read_text()

    def column(name: str) -> str:
        found = re.search(rf'<tr id="col-{name}">(.*?)</tr>', text, flags=re.S)
        assert found, name
        return found.group(1)

    assert "dropped" in column("ssn") and "100 %" in column("ssn")
    assert "masked, last 4 kept" in column("email")
    assert "keyed token" in column("person_id")
    assert "shifted up to 30 days per person" in column("birth_date")
    notes = column("notes")
    assert re.search(r"[\d,]+ spans replaced: ", notes) and "DATE_TIME" in notes
    zip_code = column("zip")
    assert "generalized for k-anonymity" in zip_code
    assert re.search(r"[\d,]+ distinct values → [\d,]+ labels", zip_code)
    assert "of records suppressed" in zip_code


def test_each_report_s_sha256_is_recorded_in_its_trail(run_dir: Path) -> None:
    from privacy.audit import read_trail

    for report, trail in (
        (run_dir / "sanitized" / "report.html", run_dir / "sanitized" / "audit.jsonl"),
        (run_dir / "model" / "report.html", run_dir / "model" / "audit.jsonl"),
        (run_dir / "stats" / "report.html", run_dir / "stats" / "audit.jsonl"),
        (run_dir / "report.html", run_dir / "stats" / "audit.jsonl"),  # the run's last trail
    ):
        digest = hashlib.sha256(report.read_bytes()).hexdigest()
        recorded = [r["outputs"]["sha256"] for r in read_trail(trail) if r["step"] == "report"]
        assert digest in recorded, report
    assert main(["audit", "verify", str(run_dir / "model" / "audit.jsonl")]) == 0


def test_a_report_edited_after_the_run_fails_audit_verify(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The insider with write access to the output folder turns a verdict around: the
    signed trail's record of the report no longer matches, and `audit verify` says so."""
    report = run_dir / "stats" / "report.html"
    original = report.read_bytes()
    trail = str(run_dir / "stats" / "audit.jsonl")
    try:
        report.write_bytes(original.replace(b">RELEASABLE</p>", b">RELEASABLE (reviewed)</p>"))
        assert main(["audit", "verify", trail]) == 3
        err = capsys.readouterr().err
        assert f"{report}: changed since the run recorded its SHA-256" in err
    finally:
        report.write_bytes(original)
    assert main(["audit", "verify", trail]) == 0
    assert "2 of 2 recorded report(s) match" in capsys.readouterr().out


def test_a_guarantee_the_run_missed_fails_its_row_and_the_verdict(
    run_dir: Path, session_keyring
) -> None:  # type: ignore[no-untyped-def]
    """The verdict's judgement on the recorded figures: each guarantee, broken in the
    records, turns its row and the verdict."""
    from privacy.report import load_run, verdict

    base = load_run(run_dir, session_keyring.signing_public_key)
    assert verdict(base).releasable

    def broken(step: str, change: Any) -> Any:
        run = copy.deepcopy(base)
        for trail in run.trails:
            for record in trail.records:
                if record.get("step") == step:
                    change(record)
        return verdict(run)

    def t_far(record: dict[str, Any]) -> None:
        record["params"]["t_closeness"] = {"t": 0.2, "distance": "auto"}
        record["counts"]["t_achieved"] = 0.35

    def k_short(record: dict[str, Any]) -> None:
        record["counts"]["k_achieved"] = 3

    def over_suppressed(record: dict[str, Any]) -> None:
        record["counts"]["suppressed"] = record["counts"]["records_in"] // 10

    def residual(record: dict[str, Any]) -> None:
        record["counts"]["residual_pii"] = {"notes": {"PERSON": 2}}

    for step, change, key in (
        ("anonymize", t_far, "t"),
        ("anonymize", k_short, "k"),
        ("anonymize", over_suppressed, "suppression"),
        ("gate", residual, "residual-pii"),
    ):
        result = broken(step, change)
        assert not result.releasable, key
        assert [g.key for g in result.rows if g.passed is False] == [key]

    def overspent(record: dict[str, Any]) -> None:
        record["params"]["ledger"]["spent_after"] = 3.5

    assert [g.key for g in broken("train", overspent).rows if g.passed is False] == ["budget"]
    card_only = copy.deepcopy(base)  # the card is a convenience copy: it earns nothing
    assert card_only.card is not None
    card_only.card["privacy"]["ledger"]["spent_after"] = 3.5
    assert verdict(card_only).releasable
    unverified = load_run(run_dir, None)
    assert not verdict(unverified).releasable  # no trusted key: nothing is verified


def test_a_tampered_trail_shows_as_failed(run_dir: Path, tmp_path: Path, session_keyring) -> None:  # type: ignore[no-untyped-def]
    from privacy.report import build_report

    copied = tmp_path / "copy"
    shutil.copytree(run_dir / "sanitized", copied)
    trail = copied / "audit.jsonl"
    trail.write_text(trail.read_text().replace('"ingest"', '"ingesT"', 1))
    text = build_report(copied, session_keyring.signing_public_key)
    assert "Verification FAILED" in text and "NOT RELEASABLE" in text
    assert "FAIL" in _row(text, "audit-sanitize")


def test_a_trail_cut_back_shows_as_failed_against_the_witness(  # type: ignore[no-untyped-def]
    run_dir: Path, tmp_path: Path, session_keyring
) -> None:
    """A copy of the run folder whose trail lost its last steps (and its .head): every
    hash and signature left checks out; only the witness knows the trail was longer."""
    from privacy.integrity import witness_path
    from privacy.report import build_report

    copied = tmp_path / "cut"
    shutil.copytree(run_dir / "sanitized", copied)
    trail = copied / "audit.jsonl"
    lines = trail.read_bytes().splitlines(keepends=True)
    checkpoints = [i for i, line in enumerate(lines) if b'"type":"checkpoint"' in line]
    trail.write_bytes(b"".join(lines[: checkpoints[1] + 1]))  # back to an earlier one
    (copied / "audit.jsonl.head").unlink()
    key, witness = session_keyring.signing_public_key, witness_path(session_keyring.path)
    plain = build_report(copied, key)
    assert "Verification FAILED" not in plain, re.findall(r"Verification FAILED[^<]*", plain)
    text = build_report(copied, key, witness=witness)
    assert "Verification FAILED" in text and f"recorded {len(lines)} records" in text
    intact = build_report(run_dir, key, witness=witness)
    assert "Verification FAILED" not in intact and "the witness recorded" in intact


# --------------------------------------------------------------------------- a failed run


def test_a_run_the_gate_refused_is_not_releasable_with_the_failing_row(
    schedule_root: dict[str, Any],
) -> None:
    from privacy.audit import read_trail

    failed = schedule_root["failed"]
    assert not (failed / "manifest.json").exists()  # nothing was published
    report = failed / "report.html"  # written by the failed flow itself
    text = report.read_text()
    assert 'data-verdict="not-releasable"' in text and ">NOT RELEASABLE</p>" in text
    row = _row(text, "verbatim-identifiers")
    assert "FAIL" in row and re.search(r"audit #\d+ \(gate, sanitize trail\)", row)
    assert "not reached" in _row(text, "residual-pii")  # and never a pass
    assert "FAIL" in _row(text, "residual-pii")
    assert "pass" in _row(text, "k") and "pass" in _row(text, "audit-sanitize")
    assert "&#x27;email&#x27; in &#x27;workclass&#x27;" in text  # places, not values
    assert schedule_root["leaked"] not in text
    records = read_trail(failed / "audit.jsonl")
    gate = next(r for r in records if r["step"] == "gate")
    assert gate["outcome"] == "failed" and gate["params"]["guarantee"] == "verbatim-identifiers"
    digest = hashlib.sha256(report.read_bytes()).hexdigest()
    assert any(r["step"] == "report" and r["outputs"]["sha256"] == digest for r in records)


def test_the_cli_reports_a_failed_run_folder(
    schedule_root: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "failed.html"
    assert main(["report", str(schedule_root["failed"]), "-o", str(out)]) == 0
    assert "NOT RELEASABLE" in out.read_text()
    assert f"wrote {out} (sha256 " in capsys.readouterr().err


# --------------------------------------------------------------------------- a schedule


def test_the_schedule_page_lists_each_run_the_skips_and_the_trends(
    schedule_root: dict[str, Any], tmp_path: Path
) -> None:
    root, good, failed = schedule_root["root"], schedule_root["good"], schedule_root["failed"]
    out = tmp_path / "schedule.html"
    assert main(["report", str(root), "-o", str(out)]) == 0
    text = out.read_text()
    good_row = re.search(rf'<tr id="run-{good.name}">(.*?)</tr>', text, flags=re.S)
    failed_row = re.search(rf'<tr id="run-{failed.name}">(.*?)</tr>', text, flags=re.S)
    assert good_row and failed_row
    assert ">RELEASABLE<" in good_row.group(1) and "500 → 500" in good_row.group(1)
    assert f'href="{good.name}/report.html"' in good_row.group(1)
    assert "NOT RELEASABLE" in failed_row.group(1)
    assert "gate: PrivacyGuaranteeError (verbatim-identifiers)" in failed_row.group(1)
    skipped = re.search(r'<section id="skipped">(.*?)</section>', text, flags=re.S)
    assert skipped and good.name in skipped.group(1)  # unchanged since the good run
    for name in SCHEDULE_CHARTS:
        assert f'<figure id="chart-{name}">' in text, name
    assert schedule_root["leaked"] not in text


# --------------------------------------------------------------------------- PDF


def test_pdf_without_chromium_says_how_to_get_it(
    run_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PRIVPIPE_CHROMIUM", str(tmp_path / "no-such-browser"))
    pdf = tmp_path / "report.pdf"
    assert main(["report", str(run_dir), "--pdf", str(pdf)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "apt-get install chromium" in err
    assert not pdf.exists()


def _chromium() -> str | None:
    from privacy.report._pdf import chromium

    return chromium()


needs_chromium = pytest.mark.skipif(
    _chromium() is None,
    reason="headless Chromium is not installed here (.ci/run installs Debian's chromium)",
)


@needs_chromium
def test_pdf_is_printed_with_chromium(run_dir: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    assert main(["report", str(run_dir), "--pdf", str(pdf)]) == 0
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 20_000
    assert len(re.findall(rb"/Type\s*/Page\b", data)) >= 3  # the whole report, paginated


# --------------------------------------------------------------------------- in a browser


def _browser(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    from privacy.report._pdf import browser_args

    browser = _chromium()
    assert browser is not None
    command = [*browser_args(browser), f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def page_requests(page: Path, tmp_path: Path) -> tuple[list[str], list[str]]:
    """What Chromium asked for on behalf of ``page`` (every URL the page's network
    isolation key is the file's), and the console messages it logged."""
    log = tmp_path / "net.json"
    done = _browser(
        "--enable-logging=stderr",
        "--v=0",
        f"--log-net-log={log}",
        "--dump-dom",
        page.resolve().as_uri(),
        profile=tmp_path / "profile",
    )
    urls = []
    for event in json.loads(log.read_text())["events"]:
        params = event.get("params") or {}
        if "url" in params and str(params.get("network_isolation_key", "")).startswith("file:"):
            urls.append(params["url"])
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return urls, console


@needs_chromium
def test_the_request_check_catches_a_page_that_fetches(tmp_path: Path) -> None:
    """The check below is real: a page that loads an image from elsewhere is caught."""
    page = tmp_path / "fetches.html"
    page.write_text('<!DOCTYPE html><img src="http://127.0.0.1:9/x.png"><p>hi</p>')
    urls, _ = page_requests(page, tmp_path)
    assert "http://127.0.0.1:9/x.png" in urls


def _sections_are_not_blank(page: Path, sections: tuple[str, ...], tmp_path: Path) -> None:
    """A screenshot of each section alone (the others hidden): ink in each."""
    from matplotlib import image

    html = page.read_text()
    for key in sections:
        alone = tmp_path / f"only-{key}.html"
        hide = f"<style>body>*:not(#{key}){{display:none!important}}</style></head>"
        alone.write_text(html.replace("</head>", hide, 1))
        shot = tmp_path / f"{key}.png"
        _browser(
            f"--screenshot={shot}",
            "--window-size=1100,900",
            alone.resolve().as_uri(),
            profile=tmp_path / "profile",
        )
        pixels = image.imread(shot)[..., :3]
        ink = float((pixels.mean(axis=2) < 0.85).mean())
        assert ink > 0.01, f"section {key} renders blank ({ink:.4f} of pixels inked)"


@needs_chromium
def test_chromium_renders_the_run_report_whole_and_fetching_nothing(
    run_dir: Path, tmp_path: Path
) -> None:
    page = run_dir / "report.html"
    urls, console = page_requests(page, tmp_path)
    assert [u for u in urls if not u.startswith(("file:", "data:"))] == []
    assert console == []
    dom = _browser("--dump-dom", page.resolve().as_uri(), profile=tmp_path / "profile").stdout
    for section in SECTIONS:
        assert f'id="{section}"' in dom
    _sections_are_not_blank(page, SECTIONS, tmp_path)


@needs_chromium
def test_chromium_renders_the_schedule_page_whole_and_fetching_nothing(
    schedule_root: dict[str, Any], tmp_path: Path
) -> None:
    from privacy.report._schedule import SCHEDULE_SECTIONS

    page = tmp_path / "schedule.html"
    assert main(["report", str(schedule_root["root"]), "-o", str(page)]) == 0
    urls, console = page_requests(page, tmp_path)
    assert [u for u in urls if not u.startswith(("file:", "data:"))] == []
    assert console == []
    _sections_are_not_blank(page, SCHEDULE_SECTIONS, tmp_path)
