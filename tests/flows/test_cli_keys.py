"""keys, encrypt and decrypt from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import main
from privacy.crypto import Keyring
from tests._keys import FAST_SCRYPT

CLI_PASSPHRASE = "cli test passphrase"


@pytest.fixture
def ring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A keyring made as `keys init` makes it, at the lowest scrypt cost (the default
    costs ~0.5 s for every command that opens it); test_init_list_rotate runs init."""
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", CLI_PASSPHRASE)
    monkeypatch.delenv("PRIVPIPE_KEYRING", raising=False)
    monkeypatch.delenv("PRIVPIPE_NEW_PASSPHRASE", raising=False)
    path = tmp_path / "ring.json"
    Keyring.create(path, CLI_PASSPHRASE, scrypt_n=FAST_SCRYPT)
    return path


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_init_list_rotate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", CLI_PASSPHRASE)
    ring = tmp_path / "cli-ring.json"
    assert main(["keys", "init", "--keyring", str(ring)]) == 0
    init = capsys.readouterr()
    assert init.out.startswith(f"created {ring}: ") and init.err == ""  # not a weak one
    assert json.loads(ring.read_text())["kdf"]["n"] == 2**17
    assert main(["keys", "list", "--keyring", str(ring), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["scopes"] == ["vault", "pseudonym", "published", "audit"]
    assert [(k["scope"], k["active"]) for k in first["keys"]] == [
        ("vault", True),
        ("published", True),
    ]
    assert main(["keys", "rotate", "--keyring", str(ring), "--scope", "published"]) == 0
    assert main(["keys", "list", "--keyring", str(ring), "--json"]) == 0
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(k["scope"], k["active"]) for k in second["keys"]] == [
        ("vault", True),
        ("published", False),
        ("published", True),
    ]
    assert second["keys"][1]["id"] == first["keys"][1]["id"]
    assert ring.stat().st_mode & 0o777 == 0o600


def test_encrypt_rotate_rewrap_decrypt(
    tmp_path: Path, ring: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_bytes(b"name,ssn\nAda,123-45-6789\n" * 1000)
    sealed = tmp_path / "plain.csv.sealed"
    k = ["--keyring", str(ring)]
    assert main(["encrypt", str(plain), str(sealed), *k, "--ad", "dataset=d1"]) == 0
    assert b"123-45-6789" not in sealed.read_bytes()
    assert main(["keys", "rotate", *k]) == 0
    assert main(["keys", "rewrap", str(sealed), *k]) == 0
    assert " -> kek-" in capsys.readouterr().out
    back = tmp_path / "back.csv"
    assert main(["decrypt", str(sealed), str(back), *k, "--expect", "dataset=d1"]) == 0
    assert back.read_bytes() == plain.read_bytes()
    # every key operation is on the keyring's signed trail
    capsys.readouterr()
    assert main(["audit", "verify", str(tmp_path / "audit.jsonl"), *k]) == 0
    assert ": intact: " in capsys.readouterr().out
    from privacy.audit import read_trail

    steps = [r["step"] for r in read_trail(tmp_path / "audit.jsonl")]
    assert steps == ["encrypt", "keys.rotate", "keys.rewrap", "decrypt"]
    assert b"123-45-6789" not in (tmp_path / "audit.jsonl").read_bytes()


def test_tampered_file_one_line_and_no_output(
    tmp_path: Path, ring: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.bin"
    plain.write_bytes(bytes(range(256)) * 20000)  # 5 segments of 1 MiB
    sealed = tmp_path / "s.sealed"
    assert main(["encrypt", str(plain), str(sealed), "--keyring", str(ring)]) == 0
    data = bytearray(sealed.read_bytes())
    data[-(1 << 20)] ^= 1  # inside the last full segment
    sealed.write_bytes(bytes(data))
    capsys.readouterr()
    out = tmp_path / "out.bin"
    assert main(["decrypt", str(sealed), str(out), "--keyring", str(ring)]) == 2
    assert "integrity check failed at segment" in _one_error_line(capsys)
    assert not out.exists()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "audit.jsonl",
        "audit.jsonl.head",
        "plain.bin",
        "ring.json",
        "ring.json.lock",
        "ring.json.witness",
        "s.sealed",
    ]


def test_wrong_passphrase_and_moved_file(
    tmp_path: Path, ring: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "p.txt"
    plain.write_text("x")
    sealed = tmp_path / "p.sealed"
    assert main(["encrypt", str(plain), str(sealed), "-k", str(ring), "--ad", "dataset=a"]) == 0
    capsys.readouterr()
    assert (
        main(
            ["decrypt", str(sealed), str(tmp_path / "o"), "-k", str(ring), "--expect", "dataset=b"]
        )
        == 2
    )
    assert "associated data mismatch" in _one_error_line(capsys)
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", "nope")
    assert main(["keys", "list", "-k", str(ring)]) == 2
    assert "wrong passphrase" in _one_error_line(capsys)


def test_no_passphrase_without_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PRIVPIPE_PASSPHRASE", raising=False)
    assert main(["keys", "init", "--keyring", str(tmp_path / "r.json")]) == 2
    assert "set PRIVPIPE_PASSPHRASE or run in a terminal" in _one_error_line(capsys)
    assert not (tmp_path / "r.json").exists()


def test_crypto_commands_load_no_heavy_library(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "os.environ['PRIVPIPE_PASSPHRASE'] = 'p'\n"
        "from flows.cli import main\n"
        f"assert main(['keys', 'init', '-k', {str(tmp_path / 'r.json')!r}]) == 0\n"
        f"open({str(tmp_path / 'a')!r}, 'w').write('a')\n"
        f"assert main(['encrypt', {str(tmp_path / 'a')!r}, {str(tmp_path / 'b')!r},"
        f" '-k', {str(tmp_path / 'r.json')!r}]) == 0\n"
        "print(sorted(m for m in ('torch', 'prefect', 'presidio_analyzer', 'spacy', 'polars')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def _one_warning_line(err: str, why: str, secret: str) -> None:
    assert err.count("\n") == 1 and err.startswith("warning: "), err
    assert why in err and secret not in err


def test_init_warns_of_a_weak_passphrase_and_still_creates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", "Tiny7!")
    path = tmp_path / "weak.json"
    assert main(["keys", "init", "--keyring", str(path)]) == 0
    _one_warning_line(capsys.readouterr().err, "fewer than 12 characters", "Tiny7!")
    assert Keyring.open(path, "Tiny7!").generation == 1


def test_passphrase_change_warns_upgrades_scrypt_and_is_audited(
    tmp_path: Path, ring: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    monkeypatch.setenv("PRIVPIPE_NEW_PASSPHRASE", "Password123")
    assert main(["keys", "passphrase", "--keyring", str(ring)]) == 0
    done = capsys.readouterr()
    _one_warning_line(done.err, "guessed first", "Password123")
    assert "re-wrapped under the new passphrase (scrypt n = 2^17); generation 2" in done.out
    assert json.loads(ring.read_text())["kdf"]["n"] == 2**17
    assert main(["keys", "list", "--keyring", str(ring)]) == 2  # the old one no longer opens
    assert "wrong passphrase" in _one_error_line(capsys)
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", "Password123")
    assert main(["audit", "verify", str(tmp_path / "audit.jsonl"), "-k", str(ring)]) == 0
    from privacy.audit import read_trail

    (record,) = read_trail(tmp_path / "audit.jsonl")
    assert record["step"] == "keys.passphrase"
    assert record["params"]["generation"] == 2
    assert "Password123" not in (tmp_path / "audit.jsonl").read_text()


def test_export_warns_of_a_weak_passphrase(
    tmp_path: Path, ring: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    monkeypatch.setenv("PRIVPIPE_NEW_PASSPHRASE", "onlylowercaseletters")
    out = tmp_path / "analyst.json"
    argv = ["keys", "export", "-k", str(ring), "--scope", "published", "--out", str(out)]
    assert main(argv) == 0
    _one_warning_line(capsys.readouterr().err, "one kind of character", "onlylowercaseletters")
    assert Keyring.open(out, "onlylowercaseletters").scopes == {"published"}
