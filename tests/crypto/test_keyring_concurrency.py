"""Concurrent key commands on one keyring: each waits its turn under the keyring's lock,
and none is told of a rollback that did not happen (issue 30, item 8). A real rollback
(an older copy put back) is still refused, with the same words.

What a user gets when a key command waited out a passphrase change: it unlocks the
keyring under the lock, when its turn comes, so it is refused in one line as a wrong
passphrase, and nothing is saved; never as an older copy. A change that kept the
passphrase (``keys passphrase`` given the same one, to raise the scrypt cost) stops no
one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flows.cli import main
from privacy.audit import read_trail
from privacy.crypto import Keyring, _keyring, seal_bytes, unseal_bytes
from privacy.crypto._keyring import KekInfo
from privacy.errors import IntegrityError, KeyAccessError
from tests._keys import FAST_SCRYPT, PASSPHRASE

ROLLBACK = "older copy"
NEW_PASSPHRASE = "a new passphrase, 3 words"

# A worker as a sanitize or a train starts one: it unlocks the keyring with
# PRIVPIPE_PASSPHRASE, again and again here, while rotations save.
OPENER = """
import os, sys
from privacy.crypto import Keyring
for _ in range(int(sys.argv[2])):
    Keyring.open(sys.argv[1], os.environ["PRIVPIPE_PASSPHRASE"])
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRIVPIPE_")}
    return env | {"PRIVPIPE_PASSPHRASE": PASSPHRASE} | extra


def _start(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "keys", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(**env),
    )


def _start_opener(ring: Path, times: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", OPENER, str(ring), str(times)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def _finish(procs: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    done = []
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        done.append((proc.returncode, err))
    return done


def _all_succeeded(done: list[tuple[int, str]]) -> None:
    for code, err in done:
        assert ROLLBACK not in err, err
        assert code == 0, err


def _keks(path: Path, scope: str = "vault", passphrase: str = PASSPHRASE) -> list[str]:
    return [k.id for k in Keyring.open(path, passphrase).list_keys() if k.scope == scope]


def _trail(ring: Path) -> list[dict[str, Any]]:
    return list(read_trail(ring.parent / "audit.jsonl"))


@pytest.fixture
def ring(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "ring.json"
    Keyring.create(path, PASSPHRASE, scrypt_n=FAST_SCRYPT)
    return path


def test_attack_eight_concurrent_rotations_are_told_of_a_rollback(ring: Path) -> None:
    _all_succeeded(
        _finish([_start("rotate", "-k", str(ring), "--scope", "vault") for _ in "x" * 8])
    )
    assert len(_keks(ring)) == 9
    assert len(_keks(ring, "published")) == 1
    document = json.loads(ring.read_text())
    assert document["generation"] == 9
    assert sum(k["active"] for k in document["keys"] if k.get("scope") == "vault") == 1
    # each rotation replaced the key the one before it made: one unbroken line of nine
    lines = [r for r in _trail(ring) if r["step"] == "keys.rotate"]
    moves = [r["params"]["keys"]["vault"].split(" -> ") for r in lines]
    assert len(moves) == 8 and sorted(r["params"]["generation"] for r in lines) == [*range(2, 10)]
    chain = {old: new for old, new in moves}
    kek, seen = _keks(ring)[0], 1
    while kek in chain:
        kek, seen = chain[kek], seen + 1
    assert seen == 9


def test_attack_a_rotation_saved_while_a_keyring_opens_is_called_an_older_copy(
    ring: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window, made certain: another process's rotation saves the file and its
    witness entry after this open read the file, before it read the witness."""
    other = Keyring.open(ring, PASSPHRASE)
    real, saved = _keyring._derive, list[KekInfo]()

    def derive_while_another_rotates(*args: Any) -> bytes:
        key = real(*args)
        if not saved:
            saved.extend(other.rotate("vault"))
        return key

    monkeypatch.setattr(_keyring, "_derive", derive_while_another_rotates)
    opened = Keyring.open(ring, PASSPHRASE)
    assert opened.generation == 2
    assert opened.active_kek("vault") == saved[0].id  # the file as it stands, not as read


def test_a_passphrase_changed_while_a_keyring_opens_is_a_wrong_passphrase(
    ring: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Keyring.open(ring, PASSPHRASE)
    real, changed = _keyring._derive, list[bool]()

    def derive_while_the_passphrase_changes(*args: Any) -> bytes:
        key = real(*args)
        if not changed:
            changed.append(True)
            other.rewrap(NEW_PASSPHRASE, scrypt_n=FAST_SCRYPT)
        return key

    monkeypatch.setattr(_keyring, "_derive", derive_while_the_passphrase_changes)
    with pytest.raises(KeyAccessError, match=r"ring\.json: wrong passphrase") as caught:
        Keyring.open(ring, PASSPHRASE)
    assert "\n" not in str(caught.value) and ROLLBACK not in str(caught.value)
    assert Keyring.open(ring, NEW_PASSPHRASE).generation == 2


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_attack_an_older_copy_put_back_between_rotations_is_still_refused(
    ring: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRIVPIPE_PASSPHRASE", PASSPHRASE)
    aside = ring.with_name("aside.json")
    shutil.copy2(ring, aside)
    assert main(["keys", "rotate", "-k", str(ring)]) == 0
    shutil.copy2(aside, ring)  # the older copy put back
    capsys.readouterr()
    for command in (["keys", "rotate", "-k", str(ring)], ["keys", "list", "-k", str(ring)]):
        assert main(command) == 2  # refused: a user-caused error, one line
        line = _one_error_line(capsys.readouterr().err)
        assert line.endswith(
            "ring.json: generation 1 is older than generation 2 the witness recorded "
            "(an older copy of the keyring?)"
        ), line
    assert ring.read_bytes() == aside.read_bytes()  # nothing saved over it
    with pytest.raises(IntegrityError, match=ROLLBACK), Keyring.open_to_change(ring, PASSPHRASE):
        pass


def test_rotations_exports_and_unlocks_at_once_all_succeed(ring: Path, tmp_path: Path) -> None:
    exports = [tmp_path / f"analyst-{n}.json" for n in range(2)]
    procs = [_start("rotate", "-k", str(ring)) for _ in range(3)]
    procs += [
        _start(
            "export",
            "-k",
            str(ring),
            "--scope",
            "published",
            "-o",
            str(out),
            PRIVPIPE_NEW_PASSPHRASE=NEW_PASSPHRASE,
        )
        for out in exports
    ]
    procs += [_start("list", "-k", str(ring)), _start_opener(ring, 5)]
    _all_succeeded(_finish(procs))
    assert len(_keks(ring)) == 4
    published = _keks(ring, "published")
    assert len(published) == 4
    for out in exports:
        held = _keks(out, "published", NEW_PASSPHRASE)
        assert held and set(held) <= set(published)  # what it had when its turn came


def test_a_passphrase_change_among_rotations_refuses_the_late_ones_as_a_wrong_passphrase(
    ring: Path, tmp_path: Path
) -> None:
    procs = [_start("rotate", "-k", str(ring), "--scope", "vault") for _ in range(3)]
    procs.insert(1, _start("passphrase", "-k", str(ring), PRIVPIPE_NEW_PASSPHRASE=NEW_PASSPHRASE))
    procs.append(
        _start(
            "export",
            "-k",
            str(ring),
            "--scope",
            "vault",
            "-o",
            str(tmp_path / "v.json"),
            PRIVPIPE_NEW_PASSPHRASE=NEW_PASSPHRASE,
        )
    )
    done = _finish(procs)
    assert done[1][0] == 0, done[1][1]
    rotated = 0
    for n, (code, err) in enumerate(done):
        assert ROLLBACK not in err, err
        if code == 0:
            rotated += n not in (1, len(done) - 1)
            continue
        assert code == 2, err
        line = _one_error_line(err)
        assert line == f"error: {ring}: wrong passphrase, or the keyring was altered", line
    assert len(_keks(ring, passphrase=NEW_PASSPHRASE)) == 1 + rotated


def test_a_rotation_with_the_old_passphrase_after_a_change_is_a_wrong_passphrase(
    ring: Path,
) -> None:
    Keyring.open(ring, PASSPHRASE).rewrap(NEW_PASSPHRASE, scrypt_n=FAST_SCRYPT)
    before = ring.read_bytes()
    ((code, err),) = _finish([_start("rotate", "-k", str(ring))])
    assert code == 2
    assert _one_error_line(err) == f"error: {ring}: wrong passphrase, or the keyring was altered"
    assert ring.read_bytes() == before


def test_rotations_while_a_run_holds_the_keyring_open(ring: Path) -> None:
    """A sanitize or a train holds the keyring for its whole run, and its workers unlock
    it again: rotations meanwhile neither stop the run nor lose a key."""
    held = Keyring.open(ring, PASSPHRASE)
    first = held.active_kek("vault")
    procs = [_start("rotate", "-k", str(ring), "--scope", "vault") for _ in range(3)]
    procs += [_start_opener(ring, 8) for _ in range(2)]
    sealed = seal_bytes(b"row", held.for_scope("vault"))  # under the key the run started with
    _all_succeeded(_finish(procs))
    now = Keyring.open(ring, PASSPHRASE)
    assert unseal_bytes(sealed, now) == b"row" and first in _keks(ring)
    (mine,) = held.rotate("vault")  # the run's own keyring saves after them, keeping theirs
    assert _keks(ring)[-1] == mine.id and len(_keks(ring)) == 5


def test_a_rotation_that_waited_out_a_re_salt_under_the_same_passphrase_goes_ahead(
    ring: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``keys passphrase`` given the same passphrase (to upgrade scrypt) lands while a
    rotation waits for the lock: the rotation unlocks the file as it is then."""
    other = Keyring.open(ring, PASSPHRASE)
    real, resalted = _keyring._derive, list[bool]()

    def derive_while_resalted(*args: Any) -> bytes:
        key = real(*args)
        if not resalted:
            resalted.append(True)
            other.rewrap(PASSPHRASE, scrypt_n=2 * FAST_SCRYPT)
        return key

    monkeypatch.setattr(_keyring, "_derive", derive_while_resalted)
    with Keyring.open_to_change(ring, PASSPHRASE) as changing:
        (made,) = changing.rotate("vault")
    assert json.loads(ring.read_text())["kdf"]["n"] == 2 * FAST_SCRYPT
    assert _keks(ring)[-1] == made.id and Keyring.open(ring, PASSPHRASE).generation == 3


def test_key_commands_around_passphrase_upgrades_under_the_same_passphrase_all_succeed(
    ring: Path, tmp_path: Path
) -> None:
    same = {"PRIVPIPE_NEW_PASSPHRASE": PASSPHRASE}
    out = tmp_path / "analyst.json"
    procs = [_start("rotate", "-k", str(ring), "--scope", "vault") for _ in range(3)]
    procs.insert(1, _start("passphrase", "-k", str(ring), **same))
    procs.insert(2, _start("export", "-k", str(ring), "--scope", "vault", "-o", str(out), **same))
    procs.append(_start("passphrase", "-k", str(ring), **same))
    _all_succeeded(_finish(procs))
    assert json.loads(ring.read_text())["kdf"]["n"] == 2**17
    assert len(_keks(ring)) == 4 and json.loads(ring.read_text())["generation"] == 6
    assert set(_keks(out)) <= set(_keks(ring))


def test_an_older_copy_is_refused_where_no_lock_can_be_taken(
    ring: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keyring in a folder this process cannot write: no lock file to take, so the
    file as read is judged, and an older copy is still refused as one."""
    aside = ring.with_name("aside.json")
    shutil.copy2(ring, aside)
    Keyring.open(ring, PASSPHRASE).rotate()
    shutil.copy2(aside, ring)

    def no_lock(path: Path) -> Any:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(_keyring, "_locked", no_lock)
    with pytest.raises(
        IntegrityError, match=r"generation 1 is older than generation 2 the witness"
    ):
        Keyring.open(ring, PASSPHRASE)
