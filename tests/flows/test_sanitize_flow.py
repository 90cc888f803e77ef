"""The sanitize flow end to end, run by Prefect (one embedded server for the session)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import polars as pl
import pytest
import yaml

from flows.cli import main
from privacy.policy import load_policy
from tests._helpers.digests import (
    PLANTED_SSN,
    SSN_CANDIDATES,
    brute_force,
    one_line_input,
    run_artifacts,
)

pytestmark = pytest.mark.prefect


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sanitize(input_path: Path, policy: Path, out: Path, *extra: str) -> int:
    return main(["sanitize", str(input_path), "--policy", str(policy), "--out", str(out), *extra])


def _assert_nothing_published(out: Path) -> None:
    """None of the names ``publish`` writes (the data, plain or sealed, and the manifest)
    nor a temporary of one is there."""
    from privacy.stages import DATA_FILE, MANIFEST_FILE, SEALED_DATA_FILE

    for name in (DATA_FILE, SEALED_DATA_FILE, MANIFEST_FILE):
        assert not (out / name).exists(), name
        assert not list(out.glob(f".{name}.*")), name  # an atomic write's temporary


def test_sanitize_publishes_sealed_data_vault_and_manifest(
    tmp_path: Path,
    people_csv: Path,
    demo_policy_path: Path,
    session_keyring,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from privacy.crypto import is_sealed, unseal_bytes
    from privacy.stages import published_associated_data

    before = _sha(people_csv)
    out = tmp_path / "out"
    assert _sanitize(people_csv, demo_policy_path, out, "--json") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "ok" and summary["rows_in"] == 500
    anonymity = summary["anonymization"]
    assert summary["rows_out"] == 500 - anonymity["suppressed"] >= 475  # max_suppression 5 %
    assert anonymity["k_achieved"] >= 5 and anonymity["l_achieved"] >= 2
    qis = set(load_policy(demo_policy_path).columns_with_role("quasi_identifier"))
    # the demo policy recodes per class (Mondrian): no lattice node, but every
    # quasi-identifier is reported with what the release keeps of it
    assert anonymity["algorithm"] == "mondrian" and anonymity["node"] is None
    assert set(anonymity["quasi_identifiers"]) == set(anonymity["information"]) == qis
    assert anonymity["risk_after"]["prosecutor_highest"] <= 1 / 5
    assert anonymity["risk_before"]["prosecutor_highest"] == 1.0  # raw records are unique
    assert summary["outputs"]["data"] == str(out / "data.parquet.sealed")
    uuid.UUID(summary["run_id"])  # Prefect's flow-run id
    assert sorted(p.name for p in out.iterdir()) == [
        "audit.jsonl",
        "audit.jsonl.head",
        "data.parquet.sealed",
        "manifest.json",
        "report.html",
        "vault",
    ]

    policy = load_policy(demo_policy_path)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run_id"] == summary["run_id"]
    assert manifest["policy"]["sha256"] == policy.hash
    from privacy.hashing import content_key

    content = content_key(session_keyring)
    assert _sha(people_csv) == before  # input untouched
    assert manifest["input"]["hmac_sha256"] == content.file_digest(people_csv)  # keyed
    assert manifest["input"]["key_id"] == content.key_id
    assert manifest["output"]["sha256"] == _sha(out / "data.parquet.sealed")
    assert manifest["vault"]["sha256"] == _sha(out / manifest["vault"]["path"])  # hashed as sealed
    assert manifest["output"]["sealed"] is True
    # the published data under the published scope's key, the vault under the vault's
    assert manifest["output"]["kek_id"] == session_keyring.for_scope("published").active_kek_id
    assert manifest["vault"]["kek_id"] == session_keyring.for_scope("vault").active_kek_id
    assert manifest["columns"]["ssn"]["rule"] == "drop"
    assert [s["stage"] for s in manifest["stages"]] == [
        "ingest",
        "detect",
        "transform",
        "anonymize",
        "gate",
        "publish",
    ]

    # the vault holds the raw input, sealed, bound to its hash
    vault = out / manifest["vault"]["path"]
    assert is_sealed(vault) and vault.stat().st_mode & 0o777 == 0o600
    expected = {"artifact": "vault", "input_hmac_sha256": manifest["input"]["hmac_sha256"]}
    assert unseal_bytes(vault, session_keyring, expected=expected) == people_csv.read_bytes()

    # the run's audit trail verifies, and its records tie the hashes together
    from privacy.audit import read_trail, verify_trail

    trail = out / "audit.jsonl"
    assert manifest["audit"]["trail"] == str(trail)
    summary_ = verify_trail(trail, session_keyring.signing_public_key)
    assert summary_.runs == {summary["run_id"]} and summary_.failed_steps == 0
    steps = read_trail(trail, run_id=summary["run_id"])
    assert [r["step"] for r in steps] == [
        "ingest",
        "vault",
        "detect",
        "transform",
        "anonymize",
        "gate",
        "publish",
        "report",  # the report's SHA-256, recorded once it is written
    ]
    by_step = {r["step"]: r for r in steps}
    assert by_step["report"]["outputs"]["sha256"] == _sha(out / "report.html")
    assert by_step["vault"]["outputs"]["vault"] == manifest["vault"]["sha256"]
    assert by_step["publish"]["outputs"]["sha256"] == manifest["output"]["sha256"]
    assert by_step["transform"]["inputs"]["raw"] == by_step["ingest"]["outputs"]["sha256"]
    assert all(r["policy"]["sha256"] == policy.hash for r in steps)

    plain = unseal_bytes(
        out / "data.parquet.sealed", session_keyring, expected=published_associated_data(policy)
    )
    assert hashlib.sha256(plain).hexdigest() == manifest["output"]["content_sha256"]
    data = pl.read_parquet(io.BytesIO(plain))
    assert data.height == summary["rows_out"] == manifest["output"]["rows"]
    # the independent re-count: every class of the published quasi-identifiers has >= k
    qis = policy.columns_with_role("quasi_identifier")
    assert data.group_by(qis).len().get_column("len").min() >= policy.privacy.k
    assert not {"name", "ssn", "address"} & set(data.columns)
    assert data.get_column("person_id").str.starts_with("p_").all()
    assert (data.get_column("phone") == "[REDACTED]").all()


def test_plaintext_output_when_the_policy_says_so(
    tmp_path: Path, people, demo_policy_path: Path, session_keyring
) -> None:
    policy = yaml.safe_load(demo_policy_path.read_text())
    policy["outputs"]["seal"] = False
    policy_path = tmp_path / "plain.yaml"
    policy_path.write_text(yaml.safe_dump(policy))
    sealed_input = tmp_path / "people.csv.sealed"
    from privacy.io import write_frame

    write_frame(people, sealed_input, keys=session_keyring)  # a sealed input is read in memory
    out = tmp_path / "out"
    assert _sanitize(sealed_input, policy_path, out) == 0
    assert pl.read_parquet(out / "data.parquet").height >= 475
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["output"]["sealed"] is False and manifest["vault"]["path"] == (
        "vault/people.csv.sealed"
    )


def test_failed_run_publishes_nothing_and_says_one_line(
    tmp_path: Path, people_csv: Path, demo_policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = people_csv.read_text().splitlines(keepends=True)
    lines.insert(40, "only,three,fields\n")
    people_csv.write_text("".join(lines))
    before = _sha(people_csv)
    out = tmp_path / "out"
    assert _sanitize(people_csv, demo_policy_path, out) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f"error: {people_csv}: row 40 (line 41) has 3 fields, the header has 19"
    )
    assert "Traceback" not in err
    _assert_nothing_published(out)
    assert _sha(people_csv) == before
    from privacy.audit import read_trail, verify_trail
    from privacy.crypto import read_public_signing_key

    public = read_public_signing_key(os.environ["PRIVPIPE_KEYRING"])[1]
    assert verify_trail(out / "audit.jsonl", public).failed_steps == 1
    failed, reported = read_trail(out / "audit.jsonl")
    assert (failed["step"], failed["outcome"], failed["error"]) == (
        "ingest",
        "failed",
        "InputError",
    )
    # the failed run's report says so, and is recorded like any other
    assert "NOT RELEASABLE" in (out / "report.html").read_text()
    assert reported["step"] == "report"
    assert reported["outputs"]["sha256"] == _sha(out / "report.html")


def test_gate_fails_closed_on_a_verbatim_identifier(
    tmp_path: Path, people, demo_policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = yaml.safe_load(demo_policy_path.read_text())
    # a copy of the e-mail, kept by mistake, and waved through detection by mistake too
    policy["columns"]["contact"] = {"rule": "keep", "acknowledge_pii": ["EMAIL_ADDRESS"]}
    policy_path = tmp_path / "leaky.yaml"
    policy_path.write_text(yaml.safe_dump(policy))
    data = tmp_path / "people.parquet"
    people.with_columns(contact=pl.col("email")).write_parquet(data)
    out = tmp_path / "out"
    assert _sanitize(data, policy_path, out) == 2
    err = capsys.readouterr().err
    assert (
        "gate: values of protected columns appear verbatim in the output ('email' in 'contact')"
        in err
    )
    _assert_nothing_published(out)


def test_keyring_problems_are_user_errors_before_any_work(
    tmp_path: Path,
    people_csv: Path,
    demo_policy_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", "not the passphrase")
    assert _sanitize(people_csv, demo_policy_path, out) == 2
    assert "wrong passphrase, or the keyring was altered" in capsys.readouterr().err
    monkeypatch.delenv("PRIVPIPE_KEYRING")
    assert _sanitize(people_csv, demo_policy_path, out) == 2
    assert "error: a keyring is needed" in capsys.readouterr().err
    assert not out.exists()


def test_overwrite_replaces_a_previous_run(
    tmp_path: Path, people_csv: Path, demo_policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _sanitize(people_csv, demo_policy_path, out, "--json") == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_id"]
    assert _sanitize(people_csv, demo_policy_path, out) == 2
    assert _sanitize(people_csv, demo_policy_path, out, "--overwrite", "--json") == 0
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_id"]
    assert first != second
    assert json.loads((out / "manifest.json").read_text())["run_id"] == second


def test_demo_command_from_a_fresh_process(tmp_path: Path) -> None:
    """What the README's demo does, in its own process with its own Prefect home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVPIPE_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    env["PRIVPIPE_HOME"] = str(tmp_path / "privpipe-home")  # no server of the developer's
    command = ["demo", "--out", str(tmp_path / "demo"), "--rows", "300"]
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    demo = tmp_path / "demo"
    assert (demo / "sanitized" / "data.parquet.sealed").exists()
    assert (demo / "keys" / "keyring.json").stat().st_mode & 0o777 == 0o600
    assert "sanitized 300 rows" in done.stdout and "demo-only" in done.stdout
    verified = re.search(
        r"audit trail verified: (\d+) records, (\d+) signed checkpoints", done.stdout
    )
    assert verified is not None, done.stdout
    lines = [json.loads(x) for x in (demo / "sanitized" / "audit.jsonl").read_text().splitlines()]
    assert int(verified[1]) == len(lines) and lines[-1]["type"] == "checkpoint"
    assert (
        int(verified[2]) == sum(r["type"] == "checkpoint" for r in lines) > 1
    )  # signed as it goes
    from privacy.crypto import is_sealed

    assert is_sealed(demo / "raw" / "people.csv.sealed")
    assert not [p for p in demo.rglob("*") if p.is_file() and p.suffix in (".csv", ".parquet")]


BAD_INPUTS = {
    "empty file": (lambda people: "", "input file is empty"),
    "missing column": (
        lambda people: people.drop("notes").write_csv(),
        "column 'notes' declared in the policy is missing from the input",
    ),
    "extra column": (
        lambda people: people.with_columns(pl.lit("x").alias("extra")).write_csv(),
        "column 'extra' is not declared in the policy",
    ),
    "wrong type": (
        lambda people: (
            people.with_columns(pl.col("hours_per_week").cast(pl.String))
            .with_columns(
                pl.when(pl.int_range(pl.len()) == 5)
                .then(pl.lit("forty"))
                .otherwise(pl.col("hours_per_week"))
                .alias("hours_per_week")
            )
            .write_csv()
        ),
        "row 6, column 'hours_per_week': value is not a valid integer",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_through_the_cli_is_one_line_exit_2(
    case: str,
    tmp_path: Path,
    people,
    demo_policy_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make, expected = BAD_INPUTS[case]
    source = tmp_path / "in.csv"
    source.write_text(make(people))
    out = tmp_path / "out"
    assert _sanitize(source, demo_policy_path, out, "--json") == 2
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and captured.err.startswith("error: ")
    assert expected in captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["status"] == "error" and expected in result["message"]
    _assert_nothing_published(out)


def test_invalid_utf8_through_the_cli(
    tmp_path: Path, people, demo_policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.csv"
    lines = people.write_csv().encode().splitlines(keepends=True)
    lines[9] = lines[9].replace(b"a", b"\xe9", 1)  # a Latin-1 byte in UTF-8
    source.write_bytes(b"".join(lines))
    assert _sanitize(source, demo_policy_path, tmp_path / "out") == 2
    assert capsys.readouterr().err == (
        f"error: {source}: line 10 is not UTF-8 (it looks like Latin-1 or Windows-1252): "
        f'save it as UTF-8 (Excel: "CSV UTF-8") or convert it: iconv -f WINDOWS-1252 '
        f"-t UTF-8 {source} > utf8.csv\n"
    )


def test_an_excel_csv_utf8_file_is_sanitized(
    tmp_path: Path, people, demo_policy_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Excel's "CSV UTF-8": a byte-order mark and CRLF line ends."""
    source = tmp_path / "excel.csv"
    text = people.write_csv().replace("\n", "\r\n")
    source.write_bytes(b"\xef\xbb\xbf" + text.encode())
    before = _sha(source)
    assert _sanitize(source, demo_policy_path, tmp_path / "out") == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["input"]["rows"] == people.height and _sha(source) == before


def _with_notes(people, notes: dict[int, str]):  # type: ignore[no-untyped-def]
    frame = people.clone()
    for row, text in notes.items():
        frame[row, "notes"] = text
    return frame


def test_presidio_scrubs_spans_no_column_explains(
    tmp_path: Path, people, demo_policy_path: Path, session_keyring
) -> None:
    from privacy.crypto import unseal_bytes

    other = "Spoke with Margaret Thornton on 415.555.0132x77 about her claim."
    source = tmp_path / "in.parquet"
    _with_notes(people, {7: other}).write_parquet(source)
    out = tmp_path / "out"
    assert _sanitize(source, demo_policy_path, out) == 0
    data = pl.read_parquet(io.BytesIO(unseal_bytes(out / "data.parquet.sealed", session_keyring)))
    note = data.get_column("notes")[7]
    assert note == "Spoke with <PERSON> on <PHONE_NUMBER> about her claim."


def test_detect_fails_a_kept_column_holding_pii(
    tmp_path: Path, people_csv: Path, demo_policy_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = yaml.safe_load(demo_policy_path.read_text())
    policy["columns"]["notes"] = {"rule": "keep"}
    policy_path = tmp_path / "keep-notes.yaml"
    policy_path.write_text(yaml.safe_dump(policy))
    out = tmp_path / "out"
    assert _sanitize(people_csv, policy_path, out) == 2
    err = capsys.readouterr().err
    assert "detect: column 'notes' is declared keep but holds" in err
    assert "columns.notes.acknowledge_pii" in err
    assert not (out / "data.parquet.sealed").exists()
    from privacy.audit import read_trail

    failed = [r for r in read_trail(out / "audit.jsonl") if r["outcome"] == "failed"]
    assert [(r["step"], r["error"]) for r in failed] == [("detect", "PrivacyGuaranteeError")]


@pytest.mark.parametrize(
    "ssn",
    [
        "536-22-1874",
        "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in "536-22-1874"),  # full width
    ],
    ids=["ascii", "full-width"],
)
def test_gate_fails_when_a_planted_ssn_survives(
    tmp_path: Path, people, demo_policy_path: Path, capsys: pytest.CaptureFixture[str], ssn: str
) -> None:
    """A policy that scrubs everything but SSNs and phone numbers (some region's numbering
    plan accepts 536-22-1874), a policy mistake: the SSN survives scrub, and the gate,
    reading the same normalized view (full-width digits included), fails the run."""
    policy = yaml.safe_load(demo_policy_path.read_text())
    from privacy.detect import DEFAULT_ENTITIES

    policy["columns"]["notes"]["entities"] = [
        e for e in DEFAULT_ENTITIES if e not in ("US_SSN", "PHONE_NUMBER")
    ]
    policy_path = tmp_path / "no-ssn.yaml"
    policy_path.write_text(yaml.safe_dump(policy))
    source = tmp_path / "in.parquet"
    _with_notes(people, {3: f"Her husband's SSN is {ssn}, on file."}).write_parquet(source)
    out = tmp_path / "out"
    assert _sanitize(source, policy_path, out) == 2
    err = capsys.readouterr().err
    assert "gate: residual PII in output column 'notes': US_SSN in 1 checked cells" in err
    assert ssn not in err and "536-22-1874" not in err
    assert not (out / "data.parquet.sealed").exists() and not (out / "manifest.json").exists()
    trail = (out / "audit.jsonl").read_bytes()
    assert ssn.encode() not in trail and b"536-22-1874" not in trail


# --------------------------------------------------------------------------- keyed digests


def ssn_policy(folder: Path, rule: str) -> Path:
    """A policy for the one-line SSN file: its one column under ``rule``."""
    policy = folder / "ssn.yaml"
    document = {
        "name": "ssn-file",
        "input": {"format": "jsonl"},
        "columns": {"ssn": {"rule": rule}},
    }
    policy.write_text(yaml.safe_dump(document))
    return policy


def test_attack_brute_force_of_a_one_line_input_from_its_digests(
    tmp_path: Path, session_keyring, capsys: pytest.CaptureFixture[str]
) -> None:
    """A one-line SSN file's plain SHA-256 in the trail, manifest or vault header is
    found among 10k candidates in well under a second; keyed digests are not."""
    source = tmp_path / "ssn.jsonl"
    source.write_bytes(one_line_input(PLANTED_SSN))
    policy = ssn_policy(tmp_path, "pseudonymize")
    out = tmp_path / "out"
    assert _sanitize(source, policy, out) == 0, capsys.readouterr().err
    assert brute_force(run_artifacts(out), SSN_CANDIDATES, one_line_input) == []

    # the digests are still there, keyed: the custodian recomputes them
    from privacy.crypto import read_header, unseal_bytes
    from privacy.hashing import content_key

    key = content_key(session_keyring)
    digest = key.file_digest(source)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input"]["hmac_sha256"] == digest and "sha256" not in manifest["input"]
    assert manifest["input"]["key_id"] == key.key_id
    vault = out / manifest["vault"]["path"]
    with vault.open("rb") as handle:
        bound = read_header(handle).associated_data
    assert bound["input_hmac_sha256"] == digest and bound["input_key_id"] == key.key_id
    assert unseal_bytes(vault, session_keyring, expected=bound) == source.read_bytes()
    trail = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    by_step = {r["step"]: r for r in trail if r.get("step")}
    assert by_step["ingest"]["inputs"] == {"input_hmac": digest}
    assert by_step["vault"]["inputs"] == {"input_hmac": digest}


def test_the_content_key_is_stable_across_rotation_and_keyed_by_the_pseudonym_secret(
    tmp_path: Path, keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    from privacy.crypto import EnvKeyProvider, StaticKeyProvider
    from privacy.errors import ScopeError
    from privacy.hashing import ContentKey, content_key

    source = tmp_path / "ssn.jsonl"
    source.write_bytes(one_line_input(PLANTED_SSN))
    before = content_key(keyring)
    keyring.rotate()
    assert content_key(keyring) == before  # a KEK rotation changes no keyed digest
    assert before.key_id != keyring.pseudonym_key_id  # a subkey, never the secret itself
    assert before.file_digest(source) != _sha(source)
    assert "secret" not in repr(before)
    other = content_key(StaticKeyProvider(b"\x07" * 32))
    assert other.file_digest(source) != before.file_digest(source)
    # a policy's keys.pseudonym_key_env: that key is the master
    monkeypatch.setenv("PRIVPIPE_TEST_CONTENT_KEY", (b"\x07" * 32).hex())
    assert content_key(EnvKeyProvider("PRIVPIPE_TEST_CONTENT_KEY")) == other
    assert ContentKey.from_master(b"\x07" * 32) == other
    # a keyring without the pseudonym scope cannot key a digest: refused, saying how on
    narrow = keyring.export(tmp_path / "narrow.json", "x", ["vault", "published", "audit"])
    with pytest.raises(ScopeError, match=r"keys.pseudonym_key_env") as caught:
        content_key(narrow)
    assert caught.value.scope == "pseudonym" and "does not hold the 'pseudonym' scope" in str(
        caught.value
    )


def test_a_keyring_without_the_pseudonym_scope_is_refused_before_any_work(
    tmp_path: Path, keyring, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Even where no column needs a token, the raw input's digest needs the content key:
    no unkeyed digest is ever the fallback."""
    source = tmp_path / "ssn.jsonl"
    source.write_bytes(one_line_input(PLANTED_SSN))
    policy = ssn_policy(tmp_path, "redact")
    narrow = keyring.export(tmp_path / "narrow.json", "narrow", ["vault", "published", "audit"])
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", "narrow")
    out = tmp_path / "out"
    assert _sanitize(source, policy, out, "--keyring", str(narrow.path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not hold the 'pseudonym' scope" in err, err
    assert not (out / "manifest.json").exists() and not (out / "vault").exists()


def test_a_sealed_input_is_known_by_its_plaintext(
    tmp_path: Path, session_keyring, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same raw data sealed twice (fresh data key, fresh nonces) is the same data:
    the keyed digest is of the plaintext, so the ledger and skip_unchanged see it."""
    from privacy.crypto import seal_bytes
    from privacy.hashing import content_key

    plain = tmp_path / "ssn.jsonl"
    plain.write_bytes(one_line_input(PLANTED_SSN))
    first, second = tmp_path / "a.jsonl.sealed", tmp_path / "b.jsonl.sealed"
    for path in (first, second):
        path.write_bytes(seal_bytes(plain.read_bytes(), session_keyring, {"artifact": "raw"}))
    assert first.read_bytes() != second.read_bytes()
    key = content_key(session_keyring)
    expected = key.file_digest(plain)
    assert key.record(first, session_keyring)["hmac_sha256"] == expected
    assert key.record(second, session_keyring)["hmac_sha256"] == expected
    assert key.record(first)["hmac_sha256"] != expected  # no keys: the container's bytes

    policy = ssn_policy(tmp_path, "redact")
    out = tmp_path / "out"
    assert _sanitize(first, policy, out) == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input"]["hmac_sha256"] == expected
