"""Keyring integrity against an insider: concurrent rotations, older copies, edited
generations (issue 15, item 6)."""

from __future__ import annotations

import base64
import json
import multiprocessing
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from privacy.crypto import Keyring, passphrase_weakness, seal_bytes, unseal_bytes
from privacy.crypto._keyring import _canonical, _public_part
from privacy.errors import IntegrityError, KeyAccessError
from privacy.integrity import Witness, witness_path
from tests._keys import FAST_SCRYPT, PASSPHRASE


def _rotate_in_a_process(path: str, barrier: object, rounds: int, out: object) -> None:
    """Open the keyring, wait until the other process has opened it too, then rotate
    ``rounds`` times, each time sealing a file under each new KEK."""
    ring = Keyring.open(path, PASSPHRASE)
    barrier.wait()  # type: ignore[attr-defined]
    made = []
    for _ in range(rounds):
        for info in ring.rotate():
            assert info.scope is not None
            sealed = seal_bytes(info.id.encode(), ring.for_scope(info.scope))
            Path(f"{path}.{info.id}.sealed").write_bytes(sealed)
            made.append(info.id)
    out.put(made)  # type: ignore[attr-defined]


def test_attack_two_keys_rotate_at_once_lose_a_key(keyring: Keyring) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_rotate_in_a_process, args=(str(keyring.path), barrier, 3, out))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    made = [out.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    created = {kek for ids in made for kek in ids}
    assert len(created) == 12
    final = Keyring.open(keyring.path, PASSPHRASE)
    held = {k.id for k in final.list_keys()}
    assert created <= held, f"lost {sorted(created - held)}"
    assert sum(k.active for k in final.list_keys()) == 2  # one per scope, still
    for kek in created:
        sealed = Path(f"{keyring.path}.{kek}.sealed").read_bytes()
        assert unseal_bytes(sealed, final) == kek.encode()


def test_attack_an_older_copy_of_a_keyring_opens_silently(keyring: Keyring) -> None:
    copy = keyring.path.with_name("old-copy.json")
    shutil.copy2(keyring.path, copy)
    old_vault = keyring.active_kek("vault")
    (new_vault, _) = keyring.rotate()
    shutil.copy2(copy, keyring.path)  # the older copy put back where the keyring lives
    with pytest.raises(
        IntegrityError,
        match=r"ring\.json: generation 1 is older than generation 2 the witness recorded "
        r"\(an older copy of the keyring\?\)$",
    ):
        Keyring.open(keyring.path, PASSPHRASE)
    # the old KEK does not become active: the keyring held in memory will not save over it
    with pytest.raises(IntegrityError, match="older than generation 2"):
        keyring.rotate()
    assert old_vault != new_vault.id


def test_attack_an_edited_generation_fails_the_passphrase_check(keyring: Keyring) -> None:
    keyring.rotate()
    document = json.loads(keyring.path.read_text())
    assert document["generation"] == 2
    document["generation"] = 7
    keyring.path.write_text(json.dumps(document))
    with pytest.raises(KeyAccessError, match="wrong passphrase, or the keyring was altered"):
        Keyring.open(keyring.path, PASSPHRASE)


def _rewrite(path: Path, derived: bytes, edit: Callable[[dict, dict], None]) -> None:
    """Re-seal the keyring file at ``path`` after ``edit(public fields, secrets)``: what
    only someone holding the passphrase-derived key could write."""
    document = json.loads(path.read_text())
    material = json.loads(
        AESGCM(derived).decrypt(
            base64.b64decode(document["nonce"]),
            base64.b64decode(document["secrets"]),
            _canonical(_public_part(document)),
        )
    )
    public = _public_part(document)
    edit(public, material)
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(derived).encrypt(nonce, _canonical(material), _canonical(public))
    public |= {
        "nonce": base64.b64encode(nonce).decode(),
        "secrets": base64.b64encode(sealed).decode(),
    }
    path.write_text(json.dumps(public))


def _kdf_edit(name: str, value: object, **also: object) -> Callable[[dict], None]:
    def edit(kdf: dict) -> None:
        kdf[name] = value
        kdf.update(also)

    return edit


@pytest.mark.parametrize(
    ("edit", "parameter"),
    [
        pytest.param(_kdf_edit("n", 2**13), "n is out of bounds", id="n-below"),
        pytest.param(_kdf_edit("n", 2**21, r=1), "n is out of bounds", id="n-above"),
        pytest.param(_kdf_edit("n", 3 * 2**14), "n is not a power of two", id="n-not-power-of-two"),
        pytest.param(_kdf_edit("n", "16384"), "n is out of bounds", id="n-string"),
        pytest.param(_kdf_edit("n", True), "n is out of bounds", id="n-bool"),
        pytest.param(_kdf_edit("r", 0), "r is out of bounds", id="r-below"),
        pytest.param(_kdf_edit("r", 33), "r is out of bounds", id="r-above"),
        pytest.param(_kdf_edit("p", 0), "p is out of bounds", id="p-below"),
        pytest.param(_kdf_edit("p", 17), "p is out of bounds", id="p-above"),
        pytest.param(_kdf_edit("length", 16), "length is out of bounds", id="length-short"),
        pytest.param(_kdf_edit("length", 33), "length is out of bounds", id="length-long"),
        pytest.param(
            _kdf_edit("salt", base64.b64encode(b"s" * 15).decode()),
            "salt is 15 bytes",
            id="salt-short",
        ),
        pytest.param(
            _kdf_edit("salt", base64.b64encode(b"s" * 65).decode()),
            "salt is 65 bytes",
            id="salt-long",
        ),
        pytest.param(_kdf_edit("salt", "not base64!"), "salt is not base64", id="salt-not-base64"),
        pytest.param(
            _kdf_edit("name", "pbkdf2"), "unsupported key derivation 'pbkdf2'", id="not-scrypt"
        ),
    ],
)
def test_scrypt_parameters_are_bounded_before_any_derivation(
    keyring: Keyring, edit: Callable[[dict], None], parameter: str
) -> None:
    document = json.loads(keyring.path.read_text())
    edit(document["kdf"])
    keyring.path.write_text(json.dumps(document))
    with pytest.raises(
        KeyAccessError, match=rf"^{keyring.path}: .*{re.escape(parameter)}"
    ) as caught:
        Keyring.open(keyring.path, PASSPHRASE)
    assert "\n" not in str(caught.value)


def test_creation_has_the_same_lower_bound_as_opening(tmp_path: Path) -> None:
    with pytest.raises(KeyAccessError, match=r"low\.json: keyring scrypt parameter n is out"):
        Keyring.create(tmp_path / "low.json", PASSPHRASE, scrypt_n=2**13)
    assert not (tmp_path / "low.json").exists()
    Keyring.create(tmp_path / "floor.json", PASSPHRASE, scrypt_n=2**14)
    assert Keyring.open(tmp_path / "floor.json", PASSPHRASE).generation == 1


def test_new_keyrings_cost_scrypt_2_17_and_rewrap_upgrades_an_older_one(tmp_path: Path) -> None:
    fresh = Keyring.create(tmp_path / "new.json", PASSPHRASE)
    assert json.loads(fresh.path.read_text())["kdf"]["n"] == 2**17
    older = Keyring.create(tmp_path / "old.json", PASSPHRASE, scrypt_n=2**15)  # as before
    keks = [k.id for k in Keyring.open(older.path, PASSPHRASE).list_keys()]
    older.rewrap("a new passphrase, 2 of them")
    kdf = json.loads(older.path.read_text())["kdf"]
    assert (kdf["n"], kdf["r"], kdf["p"]) == (2**17, 8, 1)
    with pytest.raises(KeyAccessError, match="wrong passphrase"):
        Keyring.open(older.path, PASSPHRASE)
    again = Keyring.open(older.path, "a new passphrase, 2 of them")
    assert [k.id for k in again.list_keys()] == keks
    assert again.pseudonym_key() == older.pseudonym_key() and again.generation == 2


def test_rotate_refuses_when_the_passphrase_changed_meanwhile(keyring: Keyring) -> None:
    other = Keyring.open(keyring.path, PASSPHRASE)
    other.rewrap("another passphrase 42", scrypt_n=FAST_SCRYPT)
    with pytest.raises(KeyAccessError, match=r"ring\.json: its passphrase was changed since") as e:
        keyring.rotate()
    assert "\n" not in str(e.value)
    after = Keyring.open(keyring.path, "another passphrase 42")
    assert [k.id for k in after.list_keys()] == [k.id for k in keyring.list_keys()][:2]


def test_a_rollback_under_a_held_keyring_is_refused_even_without_a_witness(
    keyring: Keyring,
) -> None:
    copy = keyring.path.with_name("copy.json")
    shutil.copy2(keyring.path, copy)
    keyring.rotate()
    shutil.copy2(copy, keyring.path)
    witness_path(keyring.path).unlink()  # the insider removed the witness too
    with pytest.raises(
        IntegrityError, match=r"generation 1 is older than generation 2 this process read"
    ):
        keyring.rotate()
    assert Keyring.open(keyring.path, PASSPHRASE).generation == 1  # nothing saved over it


def test_another_keyring_in_the_file_is_refused_on_rotate(keyring: Keyring) -> None:
    stranger = Ed25519PrivateKey.generate()

    def swap(public: dict, material: dict) -> None:
        raw = stranger.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        material["signing"] = base64.b64encode(raw).decode()
        public["generation"] = 5

    _rewrite(keyring.path, keyring._derived, swap)
    with pytest.raises(KeyAccessError, match=r"another keyring now stands in this file"):
        keyring.rotate()


def test_a_keyring_without_a_generation_opens_as_0_and_is_upgraded(keyring: Keyring) -> None:
    _rewrite(keyring.path, keyring._derived, lambda public, _: public.pop("generation"))
    witness_path(keyring.path).unlink()  # a keyring from before witnesses
    legacy = Keyring.open(keyring.path, PASSPHRASE)
    assert legacy.generation == 0
    legacy.rotate()
    assert json.loads(keyring.path.read_text())["generation"] == 1
    witness = Witness(witness_path(keyring.path))
    assert witness.latest_generation(keyring.signing_public_key) == 1


@pytest.mark.parametrize("value", ["7", -1, 1.5, None, True])
def test_a_malformed_generation_is_refused(keyring: Keyring, value: object) -> None:
    document = json.loads(keyring.path.read_text())
    document["generation"] = value
    keyring.path.write_text(json.dumps(document))
    with pytest.raises(KeyAccessError, match=r"ring\.json: keyring is malformed$"):
        Keyring.open(keyring.path, PASSPHRASE)


def test_every_save_is_witnessed_under_a_0600_lock(keyring: Keyring) -> None:
    keyring.rotate()
    keyring.rotate("published")
    lock = keyring.path.with_name("ring.json.lock")
    assert lock.stat().st_mode & 0o777 == 0o600
    entries = Witness(witness_path(keyring.path)).entries(keyring.signing_public_key)
    assert [(e["kind"], e["generation"]) for e in entries] == [
        ("keyring", 1),
        ("keyring", 2),
        ("keyring", 3),
    ]
    assert {e["subject"] for e in entries} == {str(keyring.path.resolve())}
    assert Keyring.open(keyring.path, PASSPHRASE).generation == keyring.generation == 3


def test_a_new_keyring_never_starts_beside_an_earlier_ones_witness(keyring: Keyring) -> None:
    keyring.path.unlink()
    with pytest.raises(KeyAccessError, match=r"the witness of an earlier keyring"):
        Keyring.create(keyring.path, PASSPHRASE, scrypt_n=FAST_SCRYPT)
    assert not keyring.path.exists()


def test_export_holds_a_key_another_process_rotated_in(keyring: Keyring, tmp_path: Path) -> None:
    other = Keyring.open(keyring.path, PASSPHRASE)
    (published,) = other.rotate("published")
    analyst = keyring.export(tmp_path / "analyst.json", "analyst passphrase 7", ["published"])
    assert analyst.for_scope("published").active_kek_id == published.id
    assert Keyring.open(keyring.path, PASSPHRASE).for_scope("published").active_kek_id == (
        published.id
    )
    assert Keyring.open(analyst.path, "analyst passphrase 7").generation == 1


@pytest.mark.parametrize(
    ("passphrase", "why"),
    [
        ("Short1!", "fewer than 12 characters"),
        ("alllowercaseletters", "one kind of character"),
        ("123456789012345", "one kind of character"),
        ("Password123", "guessed first"),
        ("correct horse battery staple", "guessed first"),
        ("P a s s w o r d", "guessed first"),
    ],
)
def test_weak_passphrases_are_named(passphrase: str, why: str) -> None:
    reason = passphrase_weakness(passphrase)
    assert reason is not None and why in reason and passphrase not in reason


@pytest.mark.parametrize(
    "passphrase", ["cli test passphrase", "Tr0ub4dor&3-extended", "blue-river-stone"]
)
def test_strong_enough_passphrases_pass(passphrase: str) -> None:
    assert passphrase_weakness(passphrase) is None


def test_an_empty_new_passphrase_is_refused(keyring: Keyring) -> None:
    before = keyring.path.read_bytes()
    with pytest.raises(KeyAccessError, match="the keyring's new passphrase is empty"):
        keyring.rewrap("")
    assert keyring.path.read_bytes() == before
