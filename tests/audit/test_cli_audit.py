"""privpipe audit verify / show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.cli import main
from privacy.audit import AuditTrail
from privacy.crypto import Keyring
from privacy.integrity import witness_path
from tests._keys import FAST_SCRYPT, PASSPHRASE


@pytest.fixture
def trail(tmp_path: Path, keyring: Keyring) -> Path:
    path = tmp_path / "audit.jsonl"
    for run in ("r1", "r2"):
        with AuditTrail(path, keyring, context={"run_id": run, "flow": "sanitize"}) as t:
            t.append("ingest", counts={"rows_in": 5, "rows_out": 5}, duration_s=0.5)
            t.append("gate", outcome="failed", error="PrivacyGuaranteeError")
    return path


@pytest.fixture
def unlocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """PRIVPIPE_PASSPHRASE is the test keyring's."""
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", PASSPHRASE)


def test_verify_intact_exits_0_with_one_line(
    trail: Path, keyring: Keyring, unlocks: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "verify", str(trail), "--keyring", str(keyring.path)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "intact: 6 records (4 steps, 2 failed; 2 signed checkpoints), 2 runs" in out
    assert f"signer {keyring.signing_key_id} (authenticated by its passphrase)" in out
    assert f"witness {witness_path(keyring.path)}: 6 of 6 records witnessed" in out


def test_attack_public_key_swapped_in_the_keyring_file(
    trail: Path,
    tmp_path: Path,
    keyring: Keyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Swap signing.public_key in the keyring file for your own and sign a made-up trail
    with your key: --keyring trusts the file's key only once it proves itself."""
    forger = Keyring.create(tmp_path / "forger.json", PASSPHRASE, scrypt_n=FAST_SCRYPT)
    fake = tmp_path / "fake" / "audit.jsonl"
    with AuditTrail(fake, forger, context={"run_id": "fake"}, witness=None) as t:
        t.append("gate", counts={"rows_in": 5})
    document = json.loads(keyring.path.read_text())
    document["signing"]["public_key"] = forger.signing_public_key.hex()
    keyring.path.write_text(json.dumps(document))
    args = ["audit", "verify", str(fake), "--keyring", str(keyring.path)]

    monkeypatch.delenv("PRIVPIPE_PASSPHRASE")  # nothing proves the file's key: refused
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "only as trustworthy as the file: pin it with --signer" in err
    assert main([*args, "--signer", keyring.signing_key_id]) == 3  # the pin held out of band
    assert f"its signing key is {forger.signing_key_id}, not --signer" in capsys.readouterr().err
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", PASSPHRASE)  # the passphrase checks the file
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert "intact" not in out and "wrong passphrase, or the keyring was altered" in err


def test_verify_trusts_a_pinned_or_listed_signer(
    trail: Path, tmp_path: Path, keyring: Keyring, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("PRIVPIPE_PASSPHRASE")
    args = ["audit", "verify", str(trail), "--keyring", str(keyring.path)]
    assert main([*args, "--signer", keyring.signing_key_id]) == 0
    assert f"signer {keyring.signing_key_id} (pinned with --signer)" in capsys.readouterr().out
    signers = tmp_path / "signers.yaml"
    signers.write_text(
        f"signers:\n  - {{name: pipeline, public_key: {keyring.signing_public_key.hex()}}}\n"
    )
    assert main([*args, "--signers", str(signers)]) == 0
    assert f"(listed in {signers} as pipeline)" in capsys.readouterr().out
    monkeypatch.setenv("PRIVPIPE_AUDIT_SIGNERS", str(signers))
    assert main(args) == 0
    other = tmp_path / "other.yaml"
    other.write_text(f"signers:\n  - {{name: someone, public_key: {'ab' * 32}}}\n")
    assert main([*args, "--signers", str(other)]) == 3
    assert "is not listed in" in capsys.readouterr().err
    other.write_text("signers:\n  - {name: someone, public_key: nothex}\n")
    assert main([*args, "--signers", str(other)]) == 2
    assert f"error: {other}: signers.0.public_key" in capsys.readouterr().err


def test_verify_pins_a_head_taken_out_of_band(
    trail: Path, keyring: Keyring, unlocks: None, capsys: pytest.CaptureFixture[str]
) -> None:
    head = json.loads(trail.read_bytes().splitlines()[2])["hash"]
    args = ["audit", "verify", str(trail), "--keyring", str(keyring.path)]
    assert main([*args, "--expect-head", head[:16], "--expect-length", "3"]) == 0
    assert "--expect-head held at record 3" in capsys.readouterr().out
    assert main([*args, "--expect-length", "7"]) == 3
    assert "--expect-length 7: the trail holds 6" in capsys.readouterr().err
    assert main([*args, "--witness", str(trail.with_name("nowhere.witness"))]) == 2
    assert "witness file not found" in capsys.readouterr().err


def test_verify_fails_when_the_witness_knows_more(
    trail: Path, keyring: Keyring, unlocks: None, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = trail.read_bytes().splitlines(keepends=True)
    trail.write_bytes(b"".join(lines[:3]))  # back to run r1's checkpoint
    trail.with_name("audit.jsonl.head").unlink()
    args = ["audit", "verify", str(trail), "--public-key", keyring.signing_public_key.hex()]
    assert main(args) == 0  # without the witness, the cut cannot be seen
    assert "no witness consulted (--witness FILE)" in capsys.readouterr().out
    assert main([*args, "--witness", str(witness_path(keyring.path))]) == 3
    assert "recorded 6 records of this trail" in capsys.readouterr().err
    assert main(["audit", "verify", str(trail), "--keyring", str(keyring.path)]) == 3


def test_repair_cuts_a_torn_line_on_the_record(
    trail: Path, keyring: Keyring, unlocks: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with trail.open("ab") as handle:
        handle.write(b'{"seq":7,')
    assert main(["audit", "repair", str(trail), "--keyring", str(keyring.path)]) == 0
    out = capsys.readouterr().out
    assert "cut 1 lines (9 bytes" in out and "repair recorded" in out
    assert main(["audit", "verify", str(trail), "--keyring", str(keyring.path)]) == 0
    assert main(["audit", "repair", str(trail), "--keyring", str(keyring.path)]) == 0
    assert "nothing to repair" in capsys.readouterr().out


def test_verify_with_an_out_of_band_public_key(
    trail: Path, keyring: Keyring, capsys: pytest.CaptureFixture[str]
) -> None:
    key = keyring.signing_public_key.hex()
    assert main(["audit", "verify", str(trail), "--public-key", key]) == 0
    assert main(["audit", "verify", str(trail), "--public-key", "00" * 32]) == 3
    assert "bad signature" in capsys.readouterr().err
    assert (
        main(["audit", "verify", str(trail), "--public-key", key, "--signer", "sig-" + "0" * 16])
        == 3
    )
    assert f"--public-key is {keyring.signing_key_id}, not --signer" in capsys.readouterr().err
    assert main(["audit", "verify", str(trail), "--public-key", "xyz"]) == 2
    assert capsys.readouterr().err == "error: --public-key: not a hex string\n"
    assert main(["audit", "verify", str(trail), "--public-key", "abcd"]) == 2
    assert "an Ed25519 public key is 64 hex digits" in capsys.readouterr().err
    missing = trail.with_name("nobody.yaml")
    assert (
        main(["audit", "verify", str(trail), "-k", str(keyring.path), "--signers", str(missing)])
        == 2
    )
    assert f"error: {missing}: audit signers file not found\n" == capsys.readouterr().err


def test_verify_tampered_exits_3_naming_the_line(
    trail: Path, keyring: Keyring, unlocks: None, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = trail.read_bytes().splitlines(keepends=True)
    del lines[1]
    trail.write_bytes(b"".join(lines))
    assert main(["audit", "verify", str(trail), "--keyring", str(keyring.path)]) == 3
    err = capsys.readouterr().err
    assert (
        err == f"error: {trail}: line 2: out of sequence: expected record 2, found record 3 "
        "(records deleted, duplicated or reordered)\n"
    )


def test_show_latest_run_as_table_and_json(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "show", str(trail)]) == 0
    table = capsys.readouterr().out
    assert "run r2" in table and "ingest" in table and "PrivacyGuaranteeError" in table
    assert main(["audit", "show", str(trail), "--run", "r1", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["run_id"], r["step"]) for r in records] == [("r1", "ingest"), ("r1", "gate")]
    assert main(["audit", "show", str(trail), "--run", "nope"]) == 2


def test_a_trail_removed_on_purpose_is_retired_on_the_record(
    trail: Path, tmp_path: Path, keyring: Keyring, unlocks: None, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from privacy.audit import AppendRefused
    from privacy.errors import WitnessError
    from privacy.integrity import Witness

    kept = tmp_path / "kept" / "audit.jsonl"  # a copy the custodian archived
    shutil.copytree(trail.parent, kept.parent, ignore=shutil.ignore_patterns("*.witness", "ring*"))
    trail.with_name("audit.jsonl.head").unlink()
    trail.write_bytes(b"")  # emptied: refused (a trail that is gone is superseded instead)
    with pytest.raises(AppendRefused, match=r"privpipe audit retire .* --reason TEXT"):
        AuditTrail(trail, keyring)
    trail.unlink()
    args = ["audit", "retire", str(trail), "--keyring", str(keyring.path)]
    assert main([*args, "--reason", "  "]) == 2
    assert "retiring a trail needs a reason" in capsys.readouterr().err
    with pytest.raises(WitnessError, match="needs a reason"):
        Witness(witness_path(keyring.path), keyring).retire(trail, reason=" ")
    assert main([*args, "--reason", "output folder rebuilt"]) == 0
    out = capsys.readouterr().out
    assert "retired in" in out and "it had 6 records" in out
    entry = Witness(witness_path(keyring.path)).entries(keyring.signing_public_key)[-1]
    assert entry["kind"] == "retire" and entry["reason"] == "output folder rebuilt"
    assert entry["length"] == 6
    with AuditTrail(trail, keyring, context={"run_id": "r3"}) as t:  # a new trail may start
        t.append("ingest")
    assert main(["audit", "verify", str(trail), "--keyring", str(keyring.path)]) == 0
    # the old trail's heads still bind it wherever it turns up
    assert main(["audit", "verify", str(kept), "--keyring", str(keyring.path)]) == 0
    kept.write_bytes(b"".join(kept.read_bytes().splitlines(keepends=True)[:3]))
    kept.with_name("audit.jsonl.head").unlink()
    assert main(["audit", "verify", str(kept), "--keyring", str(keyring.path)]) == 3
    assert "recorded 6 records of this trail" in capsys.readouterr().err
    assert main([*args, "--reason", "again"]) == 2  # a trail that is there is not retired
    assert "the trail is still there" in capsys.readouterr().err
