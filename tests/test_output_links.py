"""No link is followed under an output folder (issue 30, item 6).

The insider can write a run's output folder but not the folders beside it. A symbolic
link planted there (``vault/``, a lock file, the trail's ``.head``, ``manifest.json``)
would carry privpipe's writes into a folder the insider chose: the sealed raw copy, the
training view, or a truncated file of someone else's. Each is refused with one line
naming the link, before anything is written through it; the link's target stays as it
was. The folder the user named is theirs to make a link (``/tmp`` on macOS): it is
followed, the folders below it are not.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from flows.cli import main
from privacy._atomic import atomic_path, open_lock, private_dir, refuse_links
from privacy.audit import AuditTrail
from privacy.crypto import Keyring
from privacy.dp import BudgetLedger, DataIdentity
from privacy.errors import OutputError
from privacy.hashing import ContentKey
from privacy.io import atomic_write_json, prepare_output_dir
from privacy.policy import load_policy
from privacy.stages import ingest
from privacy.stages.publish import write_training_view
from privacy.workspace import Workspace

DATA = DataIdentity("c" * 64, label="people")


def _attacker(tmp_path: Path) -> Path:
    folder = tmp_path / "attacker"
    folder.mkdir()
    return folder


# --------------------------------------------------------------------- the lowest layer


def test_a_linked_folder_under_the_root_is_refused_naming_it(tmp_path: Path) -> None:
    root, theirs = tmp_path / "out", _attacker(tmp_path)
    root.mkdir()
    (root / "vault").symlink_to(theirs, target_is_directory=True)
    target = root / "vault" / "people.csv.sealed"
    with pytest.raises(OutputError) as refused, atomic_path(target, root=root) as tmp:
        tmp.write_bytes(b"raw")
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{root / 'vault'}: is a symbolic link")
    assert list(theirs.iterdir()) == []
    with pytest.raises(OutputError, match="is a symbolic link"):
        private_dir(root / "vault" / "deeper", root=root)
    assert list(theirs.iterdir()) == []


def test_the_root_the_user_named_may_itself_be_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    named = tmp_path / "named"
    named.symlink_to(real, target_is_directory=True)
    with atomic_path(named / "sub" / "file.json", root=named) as tmp:
        tmp.write_bytes(b"{}")
    assert (real / "sub" / "file.json").read_bytes() == b"{}"
    refuse_links(named, named / "sub" / "file.json")  # nothing under it is a link


def test_a_link_in_place_of_the_file_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = _attacker(tmp_path) / "theirs.json"
    elsewhere.write_bytes(b"theirs")
    for name in ("manifest.json", "report.html"):
        (out / name).symlink_to(elsewhere)
        with pytest.raises(OutputError, match=f"^{out / name}: is a symbolic link"):
            atomic_write_json(out / name, {"run_id": "r"})
        assert (out / name).is_symlink()
    assert elsewhere.read_bytes() == b"theirs"


def test_overwrite_refuses_a_linked_output_rather_than_leaving_it(tmp_path: Path) -> None:
    out, theirs = tmp_path / "out", _attacker(tmp_path)
    out.mkdir()
    (out / "vault").symlink_to(theirs, target_is_directory=True)
    with pytest.raises(OutputError, match=f"^{out / 'vault'}: is a symbolic link"):
        prepare_output_dir(out, overwrite=True, outputs=("manifest.json",), folders=("vault",))
    (out / "vault").unlink()
    (out / "manifest.json").symlink_to(theirs / "m.json")
    with pytest.raises(OutputError, match=f"^{out / 'manifest.json'}: is a symbolic link"):
        prepare_output_dir(out, overwrite=True, outputs=("manifest.json",), folders=("vault",))
    assert list(theirs.iterdir()) == []


def test_a_folder_made_below_the_named_one_may_not_be_a_link(tmp_path: Path) -> None:
    out, theirs = tmp_path / "out", _attacker(tmp_path)
    out.mkdir()
    (out / "model").symlink_to(theirs, target_is_directory=True)
    with pytest.raises(OutputError, match=f"^{out / 'model'}: is a symbolic link"):
        prepare_output_dir(out / "model", overwrite=True, outputs=(), root=out)
    prepare_output_dir(out / "model", overwrite=True, outputs=())  # named by the user


# ------------------------------------------------------------------------ the stages


def test_ingest_refuses_a_linked_vault_folder(
    tmp_path: Path, ring: Keyring, demo_policy_path: Path, people_csv: Path
) -> None:
    out, theirs = tmp_path / "out", _attacker(tmp_path)
    out.mkdir()
    (out / "vault").symlink_to(theirs, target_is_directory=True)
    policy = load_policy(demo_policy_path)
    with pytest.raises(OutputError, match=f"^{out / 'vault'}: is a symbolic link"):
        ingest(
            people_csv,
            policy,
            ring,
            out / "vault",
            content=ContentKey.from_master(b"k" * 32),
            save=lambda _offset, _frame: None,
        )
    assert list(theirs.iterdir()) == []


def test_the_training_view_refuses_a_linked_vault_folder(
    tmp_path: Path, ring: Keyring, demo_policy_path: Path
) -> None:
    out, theirs = tmp_path / "out", _attacker(tmp_path)
    out.mkdir()
    (out / "vault").symlink_to(theirs, target_is_directory=True)
    policy = load_policy(demo_policy_path)
    with pytest.raises(OutputError, match=f"^{out / 'vault'}: is a symbolic link"):
        write_training_view(
            pl.DataFrame({"a": [1]}),
            policy,
            out,
            keys=ring,
            input_digest={"hmac_sha256": "0" * 64, "key_id": "k"},
        )
    assert list(theirs.iterdir()) == []


def test_a_workspace_in_place_of_a_link_is_refused(tmp_path: Path, ring: Keyring) -> None:
    theirs = _attacker(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "privpipe-work-x").symlink_to(theirs, target_is_directory=True)
    before = theirs.stat().st_mode
    with (
        pytest.raises(OutputError, match="privpipe-work-x: is a symbolic link"),
        Workspace(ring, work / "privpipe-work-x", run_id="x") as space,
    ):
        space.save("part", pl.DataFrame({"a": [1]}))
    assert list(theirs.iterdir()) == []
    assert theirs.stat().st_mode == before  # not chmod-ed through the link


# --------------------------------------------------------------------------- the locks


def test_open_lock_refuses_a_link_and_leaves_its_target_alone(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    lock = tmp_path / "x.lock"
    lock.symlink_to(target)
    with pytest.raises(OutputError, match=f"^{lock}: is a symbolic link"):
        open_lock(lock)
    assert not target.exists()
    os.close(open_lock(tmp_path / "y.lock"))
    assert (tmp_path / "y.lock").stat().st_mode & 0o777 == 0o600


def test_a_linked_ledger_lock_refuses_the_charge(tmp_path: Path, ring: Keyring) -> None:
    path = tmp_path / "ledger.jsonl"
    target = _attacker(tmp_path) / "theirs"
    target.write_bytes(b"keep me")
    path.with_name("ledger.jsonl.lock").symlink_to(target)
    with pytest.raises(OutputError) as refused:
        BudgetLedger(path, ring).charge(DATA, epsilon=1.0, delta=1e-6, budget=3.0, run_id="r")
    assert str(refused.value).startswith(f"{path}.lock: is a symbolic link")
    assert target.read_bytes() == b"keep me"
    missing = tmp_path / "attacker" / "missing"
    path.with_name("ledger.jsonl.lock").unlink()
    path.with_name("ledger.jsonl.lock").symlink_to(missing)
    with pytest.raises(OutputError, match="is a symbolic link"):
        BudgetLedger(path, ring).charge(DATA, epsilon=1.0, delta=1e-6, budget=3.0, run_id="r")
    assert not missing.exists()  # not created through the link


def test_a_linked_keyring_lock_refuses_the_change(tmp_path: Path, ring: Keyring) -> None:
    target = _attacker(tmp_path) / "missing"
    lock = ring.path.with_name(ring.path.name + ".lock")
    lock.unlink(missing_ok=True)
    lock.symlink_to(target)
    before = ring.path.read_bytes()
    with pytest.raises(OutputError, match=f"^{lock}: is a symbolic link"):
        ring.rotate("vault")
    assert not target.exists()
    assert ring.path.read_bytes() == before


def test_a_linked_trail_head_is_refused_and_its_target_untouched(
    tmp_path: Path, ring: Keyring
) -> None:
    path = tmp_path / "run" / "audit.jsonl"
    target = _attacker(tmp_path) / "theirs.head"
    target.write_bytes(b'{"seq": 99}')
    path.parent.mkdir()
    path.with_name("audit.jsonl.head").symlink_to(target)
    with (
        pytest.raises(OutputError, match=f"^{path}.head: is a symbolic link"),
        AuditTrail(path, ring) as trail,
    ):
        trail.append("step")
    assert target.read_bytes() == b'{"seq": 99}'


# ------------------------------------------------------------------- a real sanitize


@pytest.mark.prefect
@pytest.mark.slow
def test_sanitize_refuses_an_output_whose_vault_is_a_link(
    tmp_path: Path,
    demo_policy_path: Path,
    people_csv: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, theirs = tmp_path / "out", _attacker(tmp_path)
    args = ["-q", "sanitize", "--policy", str(demo_policy_path), "--out", str(out)]
    assert main([*args, str(people_csv)]) == 0, capsys.readouterr().err
    shutil.rmtree(out / "vault")  # the insider who writes the folder swaps it for a link
    (out / "vault").symlink_to(theirs, target_is_directory=True)
    capsys.readouterr()
    assert main([*args, "--overwrite", str(people_csv)]) != 0
    said = capsys.readouterr().err.strip()
    assert said == (
        f"error: {out / 'vault'}: is a symbolic link; privpipe follows no link under "
        f"the output folder {out}"
    )
    assert list(theirs.iterdir()) == []


@pytest.mark.prefect
@pytest.mark.slow
def test_run_refuses_a_model_folder_that_is_a_link(
    tmp_path: Path,
    demo_policy_path: Path,
    people_csv: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`privpipe run` makes model/ below the folder the user named: a link there is
    refused, and the model, encoder and card never reach the link's target."""
    out, theirs = tmp_path / "out", _attacker(tmp_path)
    out.mkdir()
    (out / "model").symlink_to(theirs, target_is_directory=True)
    args = ["-q", "run", str(people_csv), "--policy", str(demo_policy_path), "--out", str(out)]
    capsys.readouterr()
    assert main([*args, "--overwrite"]) != 0
    said = capsys.readouterr().err
    assert f"{out / 'model'}: is a symbolic link; privpipe follows no link" in said
    assert list(theirs.iterdir()) == []
