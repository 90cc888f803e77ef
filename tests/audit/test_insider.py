"""The insider who can write the run folder: each attack the security review ran, as a
test. Every one of these verified "intact" before appends verified their tail and heads
were witnessed beside the keyring."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from privacy.audit import AppendRefused, AuditTrail, AuditVerificationError, verify_trail
from privacy.crypto import Keyring
from privacy.errors import WitnessError
from privacy.integrity import Witness, serialize, witness_path
from tests._keys import FAST_SCRYPT, PASSPHRASE


def _run(path: Path, ring: Keyring, run: str, steps: int = 3) -> None:
    with AuditTrail(path, ring, context={"run_id": run}) as trail:
        for i in range(steps):
            trail.append(f"step{i}", counts={"rows_in": i})


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _forge_after(path: Path, **fields: object) -> None:
    """Append one well-chained record by hand: record hashes are unkeyed, no key needed."""
    last = orjson.loads(_lines(path)[-1])
    record = {"seq": last["seq"] + 1, "prev": last["hash"], "type": "step", **fields}
    with path.open("ab") as handle:
        handle.write(serialize(record)[0])


def _verify(path: Path, ring: Keyring, **kwargs: object) -> object:
    return verify_trail(path, ring.signing_public_key, witness=witness_path(ring.path), **kwargs)


def _refused(path: Path, ring: Keyring, pattern: str) -> None:
    before = path.read_bytes() if path.exists() else None
    with pytest.raises(AppendRefused, match=pattern) as info:
        _run(path, ring, "legit")
    assert info.value.exit_code == 3
    assert (path.read_bytes() if path.exists() else None) == before  # nothing appended


@pytest.fixture
def trail(tmp_path: Path, keyring: Keyring) -> Path:
    path = tmp_path / "run" / "audit.jsonl"
    _run(path, keyring, "run-0")
    _run(path, keyring, "run-1")
    return path


def test_every_signed_head_is_witnessed_beside_the_keyring(trail: Path, keyring: Keyring) -> None:
    witness = witness_path(keyring.path)
    assert witness.parent == keyring.path.parent and witness.stat().st_mode & 0o777 == 0o600
    seen = Witness(witness).sightings(keyring.signing_public_key, trail, None)
    assert [s.length for s in seen] == [4, 8]
    assert seen[-1].head == orjson.loads(_lines(trail)[-1])["hash"]
    summary = _verify(trail, keyring)
    assert summary.witnessed == 8 and summary.records == 8  # type: ignore[attr-defined]


def test_attack_writer_appends_forged_record_then_a_run_signs_it(
    trail: Path, keyring: Keyring
) -> None:
    _forge_after(trail, step="gate", outcome="ok", run_id="run-1")
    _refused(trail, keyring, r"line 9: records after the last signed checkpoint")
    with pytest.raises(AuditVerificationError, match="truncated tail"):
        _verify(trail, keyring)


def test_attack_fabricated_trail_with_head_deleted_then_a_run_appends(
    tmp_path: Path, keyring: Keyring
) -> None:
    path = tmp_path / "fake" / "audit.jsonl"
    path.parent.mkdir()
    prev = "0" * 64
    lines = []
    for seq in (1, 2):
        line, prev = serialize({"seq": seq, "prev": prev, "type": "step", "step": "gate"})
        lines.append(line)
    path.write_bytes(b"".join(lines))
    _refused(path, keyring, r"records after the last signed checkpoint")


def test_attack_trail_re_signed_by_another_key_is_not_extended(
    tmp_path: Path, keyring: Keyring
) -> None:
    forger = Keyring.create(tmp_path / "forger.json", PASSPHRASE, scrypt_n=FAST_SCRYPT)
    path = tmp_path / "audit.jsonl"
    _run(path, forger, "fake")
    _refused(path, keyring, r"line 4: the last checkpoint is signed by sig-\w+, not by sig-\w+")


def test_attack_last_runs_cut_and_head_deleted(trail: Path, keyring: Keyring) -> None:
    trail.write_bytes(b"".join(_lines(trail)[:4]))  # back to run-0's signed checkpoint
    trail.with_name("audit.jsonl.head").unlink()
    verify_trail(trail, keyring.signing_public_key)  # without the witness: looks intact
    with pytest.raises(AuditVerificationError, match=r"witness .* recorded 8 records .* holds 4"):
        _verify(trail, keyring)
    _refused(trail, keyring, r"witness recorded 8 records of this trail .* holds 4")


def test_attack_older_checkpoint_put_into_the_head_file(trail: Path, keyring: Keyring) -> None:
    head = trail.with_name("audit.jsonl.head")
    older = orjson.loads(_lines(trail)[3])  # run-0's checkpoint, validly signed
    trail.write_bytes(b"".join(_lines(trail)[:4]))
    head.write_bytes(orjson.dumps(older))
    verify_trail(trail, keyring.signing_public_key)
    with pytest.raises(AuditVerificationError, match="cut, emptied or rolled back"):
        _verify(trail, keyring)


def test_attack_trail_emptied(trail: Path, keyring: Keyring) -> None:
    trail.write_bytes(b"")
    trail.with_name("audit.jsonl.head").unlink()
    verify_trail(trail, keyring.signing_public_key)
    with pytest.raises(AuditVerificationError, match=r"recorded 8 records .* holds 0"):
        _verify(trail, keyring)
    _refused(trail, keyring, r"the trail is empty, but the witness .* recorded 8 records")


def test_attack_head_file_deleted(trail: Path, keyring: Keyring) -> None:
    trail.with_name("audit.jsonl.head").unlink()
    with pytest.raises(AuditVerificationError, match=r"\.head: missing, but the witness"):
        _verify(trail, keyring)


def test_attack_run_folder_rolled_back_to_an_older_copy(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "run" / "audit.jsonl"
    _run(path, keyring, "run-0")
    shutil.copytree(path.parent, tmp_path / "copy")
    _run(path, keyring, "run-1")
    shutil.rmtree(path.parent)
    shutil.copytree(tmp_path / "copy", path.parent)
    verify_trail(path, keyring.signing_public_key)
    with pytest.raises(AuditVerificationError, match="recorded 8 records"):
        _verify(path, keyring)


def test_attack_trail_replaced_by_another_signed_trail(tmp_path: Path, keyring: Keyring) -> None:
    """A different, genuinely signed trail (another run folder's) put where this one was."""
    path = tmp_path / "a" / "audit.jsonl"
    other = tmp_path / "b" / "audit.jsonl"
    _run(path, keyring, "a-0", steps=6)
    _run(other, keyring, "b-0", steps=9)
    for name in ("audit.jsonl", "audit.jsonl.head"):
        shutil.copy(other.with_name(name), path.with_name(name))
    verify_trail(path, keyring.signing_public_key)
    with pytest.raises(AuditVerificationError, match="line 7: not the history the witness"):
        _verify(path, keyring)


def test_a_moved_trail_is_still_recognized_by_its_first_record(
    trail: Path, tmp_path: Path, keyring: Keyring
) -> None:
    moved = tmp_path / "review" / "audit.jsonl"
    shutil.copytree(trail.parent, moved.parent)
    assert _verify(moved, keyring).witnessed == 8  # type: ignore[attr-defined]
    moved.write_bytes(b"".join(_lines(moved)[:4]))
    moved.with_name("audit.jsonl.head").unlink()
    with pytest.raises(AuditVerificationError, match="recorded 8 records"):
        _verify(moved, keyring)


def test_a_torn_last_line_is_reported_then_repaired_on_the_record(
    trail: Path, keyring: Keyring
) -> None:
    with trail.open("ab") as handle:
        handle.write(b'{"seq":9,"prev":"')  # a write cut off
    _refused(trail, keyring, r"line 9: the last line is incomplete .*`privpipe audit repair ")
    cut = AuditTrail(trail, keyring, check=False).repair()
    assert cut["cut_lines"] == 1 and cut["cut_bytes"] == len(b'{"seq":9,"prev":"')
    assert Path(cut["saved_to"]).read_bytes() == b'{"seq":9,"prev":"'
    summary = _verify(trail, keyring)
    steps = [orjson.loads(line).get("step") for line in _lines(trail)]
    assert steps[-2] == "audit-repair" and summary.records == 10  # type: ignore[attr-defined]
    _run(trail, keyring, "run-2")  # appends again


def test_repair_never_cuts_below_what_the_witness_recorded(trail: Path, keyring: Keyring) -> None:
    lines = _lines(trail)
    last = orjson.loads(lines[-1])
    last["signature"] = "00" * 64  # the last checkpoint no longer verifies
    last.pop("hash")
    trail.write_bytes(b"".join(lines[:-1]) + serialize(last)[0])
    with pytest.raises(AppendRefused, match="line 8: not the history the witness recorded"):
        AuditTrail(trail, keyring, check=False).repair()


def test_a_head_pinned_out_of_band(trail: Path, keyring: Keyring) -> None:
    head = orjson.loads(_lines(trail)[3])["hash"]
    summary = verify_trail(
        trail, keyring.signing_public_key, expect_length=4, expect_head=head[:16]
    )
    assert summary.pinned == 4
    verify_trail(trail, keyring.signing_public_key, expect_head=head)
    with pytest.raises(AuditVerificationError, match="line 4: not the history --expect-head"):
        verify_trail(trail, keyring.signing_public_key, expect_length=4, expect_head="ab" * 8)
    with pytest.raises(AuditVerificationError, match="--expect-length 9: the trail holds 8"):
        verify_trail(trail, keyring.signing_public_key, expect_length=9)
    with pytest.raises(AuditVerificationError, match="--expect-head: no record hashes to"):
        verify_trail(trail, keyring.signing_public_key, expect_head="cd" * 8)


def test_a_forged_witness_entry_is_refused(trail: Path, keyring: Keyring) -> None:
    witness = witness_path(keyring.path)
    lines = witness.read_bytes().splitlines(keepends=True)
    entry = orjson.loads(lines[-1])
    entry["length"] = 2
    witness.write_bytes(b"".join(lines[:-1]) + orjson.dumps(entry) + b"\n")
    with pytest.raises(AuditVerificationError, match=f"line {len(lines)}: entry edited"):
        _verify(trail, keyring)
    with pytest.raises(WitnessError, match="entry edited"):
        _run(trail, keyring, "run-2")


def test_a_witness_cut_while_read_is_caught(trail: Path, keyring: Keyring) -> None:
    witness = Witness(witness_path(keyring.path))
    witness.entries(keyring.signing_public_key)
    witness.path.write_bytes(witness.path.read_bytes().splitlines(keepends=True)[0])
    with pytest.raises(WitnessError, match="shorter than when it was read"):
        witness.entries(keyring.signing_public_key)


# ------------------------------------------------ each refusal on its own (mutation-checked)


def _rewrite_last(path: Path, edit: object, *, rehash: bool) -> None:
    """Edit the trail's last record; ``rehash`` recomputes its hash (so only the edited
    field is wrong), otherwise the old hash stays."""
    lines = _lines(path)
    record = orjson.loads(lines[-1])
    edit(record)  # type: ignore[operator]
    if rehash:
        record.pop("hash")
        line = serialize(record)[0]
    else:
        line = orjson.dumps(record) + b"\n"
    path.write_bytes(b"".join(lines[:-1]) + line)


def test_attack_narrow_keyring_extends_the_pipeline_trail(
    trail: Path, tmp_path: Path, keyring: Keyring
) -> None:
    """An analyst's keyring (no 'audit' scope) signs trails of its own only."""
    from privacy.errors import ScopeError

    narrow = keyring.export(tmp_path / "analyst.json", PASSPHRASE, ["published"])
    before = trail.read_bytes()
    with pytest.raises(ScopeError, match="needs the 'audit' scope"):
        AuditTrail(trail, narrow)
    assert trail.read_bytes() == before


def test_attack_last_checkpoint_edited_in_place(trail: Path, keyring: Keyring) -> None:
    _rewrite_last(trail, lambda r: r.update(time="2020-01-01T00:00:00Z"), rehash=False)
    _refused(trail, keyring, r"line 8: the last checkpoint does not match its hash")


def test_attack_checkpoint_claims_a_shorter_chain(trail: Path, keyring: Keyring) -> None:
    """A re-hashed checkpoint whose length says fewer records than precede it."""
    _rewrite_last(trail, lambda r: r.update(length=3), rehash=True)
    _refused(trail, keyring, r"line 8: the last checkpoint does not match the chain before it")


def test_attack_checkpoint_signs_another_head(trail: Path, keyring: Keyring) -> None:
    _rewrite_last(trail, lambda r: r.update(head="ab" * 32), rehash=True)
    _refused(trail, keyring, r"line 8: the last checkpoint does not match the chain before it")


def test_attack_checkpoint_with_a_forged_signature(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "run" / "audit.jsonl"
    _run(path, keyring, "run-0")
    _rewrite_last(path, lambda r: r.update(signature="00" * 64), rehash=True)
    _refused(path, keyring, r"line 4: the last checkpoint's signature does not verify")


def test_attack_another_signed_trail_put_where_the_writer_wrote(
    tmp_path: Path, keyring: Keyring
) -> None:
    """The writer, not only the verifier, sees that the trail at its path is not the one
    the witness recorded there (even when the other trail is longer and witnessed)."""
    path = tmp_path / "a" / "audit.jsonl"
    other = tmp_path / "b" / "audit.jsonl"
    _run(path, keyring, "a-0", steps=6)
    _run(other, keyring, "b-0", steps=9)
    for name in ("audit.jsonl", "audit.jsonl.head"):
        shutil.copy(other.with_name(name), path.with_name(name))
    _refused(path, keyring, r"line 7: not the history the witness recorded at .* \(replaced")


def test_repair_needs_a_checkpoint_of_its_own_key(tmp_path: Path, keyring: Keyring) -> None:
    forger = Keyring.create(tmp_path / "forger.json", PASSPHRASE, scrypt_n=FAST_SCRYPT)
    path = tmp_path / "audit.jsonl"
    _run(path, forger, "fake")
    before = path.read_bytes()
    with pytest.raises(AppendRefused, match=r"no checkpoint signed by sig-\w+ to cut back to"):
        AuditTrail(path, keyring, check=False).repair()
    assert path.read_bytes() == before


def _witness_lines(keyring: Keyring) -> tuple[Path, list[bytes]]:
    path = witness_path(keyring.path)
    return path, path.read_bytes().splitlines(keepends=True)


def _rewitness(path: Path, lines: list[bytes], number: int, **fields: object) -> None:
    """Replace entry ``number`` (1-based) with edited fields and a matching hash, so only
    the edited field is wrong."""
    import hashlib

    from privacy.integrity import canonical_json

    entry = orjson.loads(lines[number - 1])
    entry.update(fields)
    entry["hash"] = hashlib.sha256(canonical_json(entry, without=("signature", "hash"))).hexdigest()
    lines[number - 1] = orjson.dumps(entry) + b"\n"
    path.write_bytes(b"".join(lines))


def test_witness_torn_last_line_is_reported(trail: Path, keyring: Keyring) -> None:
    path, lines = _witness_lines(keyring)
    path.write_bytes(b"".join(lines) + b'{"seq":%d,' % (len(lines) + 1))
    with pytest.raises(WitnessError, match=f"line {len(lines) + 1}: incomplete last line"):
        Witness(path).entries(keyring.signing_public_key)
    with pytest.raises(WitnessError, match=r"the last line is incomplete .* nothing recorded"):
        Witness(path, keyring).record(kind="trail", subject=trail)


def test_witness_entry_out_of_sequence(trail: Path, keyring: Keyring) -> None:
    path, lines = _witness_lines(keyring)
    _rewitness(path, lines, 2, seq=5)
    with pytest.raises(WitnessError, match="line 2: out of sequence: expected entry 2, found 5"):
        Witness(path).entries(keyring.signing_public_key, signatures=False)


def test_witness_chain_broken(trail: Path, keyring: Keyring) -> None:
    path, lines = _witness_lines(keyring)
    _rewitness(path, lines, 2, prev="cd" * 32)
    with pytest.raises(WitnessError, match="line 2: chain broken"):
        Witness(path).entries(keyring.signing_public_key, signatures=False)


def test_witness_entry_by_another_signer(trail: Path, tmp_path: Path, keyring: Keyring) -> None:
    """A well-chained entry signed by some other key is not the keyring's witness."""
    import hashlib

    from privacy.integrity import canonical_json

    forger = Keyring.create(tmp_path / "forger.json", PASSPHRASE, scrypt_n=FAST_SCRYPT)
    path, lines = _witness_lines(keyring)
    last = orjson.loads(lines[-1])
    entry = {k: v for k, v in last.items() if k not in ("signature", "hash")}
    entry.update(seq=len(lines) + 1, prev=last["hash"], signer=forger.signing_key_id)
    entry["signature"] = forger.sign(canonical_json(entry, without=("signature", "hash"))).hex()
    entry["hash"] = hashlib.sha256(canonical_json(entry, without=("signature", "hash"))).hexdigest()
    path.write_bytes(b"".join(lines) + orjson.dumps(entry) + b"\n")
    with pytest.raises(WitnessError, match=rf"line {len(lines) + 1}: signed by sig-\w+, not sig-"):
        Witness(path).entries(keyring.signing_public_key)


def test_witness_records_only_with_a_signing_key(tmp_path: Path, trail: Path) -> None:
    with pytest.raises(WitnessError, match="recording in a witness needs its signing key"):
        Witness(tmp_path / "w.witness").record(kind="trail", subject=trail)
    assert not (tmp_path / "w.witness").exists()


def test_attack_first_record_edited_in_place(trail: Path, keyring: Keyring) -> None:
    """The first record is what the witness knows the trail by: an edit of it that keeps
    every later line (and so the last checkpoint) intact is refused."""
    lines = _lines(trail)
    lines[0] = lines[0].replace(b'"rows_in":0', b'"rows_in":7')
    trail.write_bytes(b"".join(lines))
    _refused(trail, keyring, r"line 1: the first record does not match its hash")


def test_a_first_line_that_is_not_json_is_refused(trail: Path, keyring: Keyring) -> None:
    lines = _lines(trail)
    trail.write_bytes(b"#!not json\n" + b"".join(lines[1:]))
    _refused(trail, keyring, r"line 1: the first record does not match its hash")


def test_a_last_line_that_is_not_a_record_is_refused(trail: Path, keyring: Keyring) -> None:
    with trail.open("ab") as handle:
        handle.write(b"not a record\n")
    _refused(trail, keyring, r"the last line is not an audit record")


def test_a_witness_deleted_after_it_was_read_is_caught(trail: Path, keyring: Keyring) -> None:
    witness = Witness(witness_path(keyring.path))
    witness.entries(keyring.signing_public_key)
    witness.path.unlink()
    with pytest.raises(WitnessError, match="the witness is gone"):
        witness.entries(keyring.signing_public_key)


def test_a_malformed_witness_line_is_refused(trail: Path, keyring: Keyring) -> None:
    path, lines = _witness_lines(keyring)
    path.write_bytes(lines[0] + b"[1, 2]\n")
    with pytest.raises(WitnessError, match=r"line 2: not a witness entry \(malformed line\)"):
        Witness(path).entries(keyring.signing_public_key)
    path.write_bytes(lines[0] + b"garbage\n")
    with pytest.raises(WitnessError, match="the last line is not a witness entry; nothing"):
        Witness(path, keyring).record(kind="trail", subject=trail)


def test_a_witness_entry_with_a_bad_signature_is_refused(trail: Path, keyring: Keyring) -> None:
    """Rehashed after an edit: only the signature can tell."""
    path, lines = _witness_lines(keyring)
    last = len(lines)  # the keyring's own saves are witnessed too: count, never assume
    _rewitness(path, lines, last, length=1)
    with pytest.raises(WitnessError, match=f"line {last}: bad signature on the witness entry"):
        Witness(path).entries(keyring.signing_public_key)
    with pytest.raises(WitnessError, match=f"line {last}: bad signature"):
        Witness(path, keyring).record(kind="trail", subject=trail)


def test_a_forged_generation_in_the_witness_is_refused(trail: Path, keyring: Keyring) -> None:
    """Only the entry that answers has its signature checked: it must be the one."""
    path, lines = _witness_lines(keyring)
    assert Witness(path).latest_generation(keyring.signing_public_key) is not None
    _rewitness(path, lines, len(lines), generation=99)
    with pytest.raises(WitnessError, match=rf"line {len(lines)}: bad signature"):
        Witness(path).latest_generation(keyring.signing_public_key)


# ------------------------------------------------ what an independent review then tried


def _stepwise(path: Path, ring: Keyring, run: str, steps: int) -> None:
    """A run as the flows write it: one flush (and so one signed head) per step."""
    with AuditTrail(path, ring, context={"run_id": run}) as trail:
        for i in range(steps):
            trail.append(f"step{i}", outcome="failed" if run == "bad" else "ok")
            trail.flush()


def test_attack_a_failed_runs_trail_replaced_by_a_later_good_one(
    tmp_path: Path, keyring: Keyring
) -> None:
    """Heads flushed per step give the two trails heads at the same lengths: the later
    trail's heads must not stand in for the ones recorded at this path."""
    path, other = tmp_path / "bad" / "audit.jsonl", tmp_path / "good" / "audit.jsonl"
    _stepwise(path, keyring, "bad", 2)
    _stepwise(other, keyring, "good", 3)
    for name in ("audit.jsonl", "audit.jsonl.head"):
        shutil.copy(other.with_name(name), path.with_name(name))
    with pytest.raises(AuditVerificationError, match="line 2: not the history the witness"):
        _verify(path, keyring)
    _refused(path, keyring, r"line 4: not the history the witness recorded")


def test_attack_a_symlink_in_place_of_the_trail(tmp_path: Path, keyring: Keyring) -> None:
    path, other = tmp_path / "a" / "audit.jsonl", tmp_path / "b" / "audit.jsonl"
    _stepwise(path, keyring, "a", 2)
    _stepwise(other, keyring, "b", 2)
    for name in ("audit.jsonl", "audit.jsonl.head"):
        path.with_name(name).unlink()
        path.with_name(name).symlink_to(other.with_name(name))
    before = other.read_bytes()
    with pytest.raises(AppendRefused, match="is a symbolic link, not a trail file"):
        _run(path, keyring, "legit")
    assert other.read_bytes() == before
    with pytest.raises(AuditVerificationError, match="is a symbolic link, not a trail file"):
        _verify(path, keyring)


def test_attack_forged_records_spliced_before_a_genuine_checkpoint(
    tmp_path: Path, keyring: Keyring
) -> None:
    """Forged records after the witnessed head, closed by a validly signed checkpoint
    copied from another trail at the right line number: the writer re-links every
    line since the witnessed head, and repair cuts back to it."""
    path, other = tmp_path / "out" / "audit.jsonl", tmp_path / "other" / "audit.jsonl"
    _stepwise(path, keyring, "run", 2)  # 4 lines, witnessed
    _stepwise(other, keyring, "other", 5)  # its checkpoint at line 10
    lines = _lines(path)
    for seq in range(5, 10):
        last = orjson.loads(lines[-1])
        record = {"seq": seq, "prev": last["hash"], "type": "step", "step": "gate", "outcome": "ok"}
        lines.append(serialize(record)[0])
    lines.append(_lines(other)[-1])
    path.write_bytes(b"".join(lines))
    _refused(path, keyring, r"line 10: does not hash or link to the line before it")
    cut = AuditTrail(path, keyring, check=False).repair()
    assert cut["cut_lines"] == 6
    assert _verify(path, keyring).records == 6  # type: ignore[attr-defined]
    assert b'"step":"gate"' not in path.read_bytes()


def test_a_refused_trail_is_refused_before_any_work_and_nothing_is_created(
    trail: Path, keyring: Keyring
) -> None:
    trail.write_bytes(b"")  # emptied where it stood: not lost, cut
    with pytest.raises(AppendRefused, match="the trail is empty, but the witness"):
        AuditTrail(trail, keyring)  # at construction, before the caller's first step
    assert trail.read_bytes() == b""


def test_a_new_trail_where_one_is_gone_supersedes_it_on_the_record(
    trail: Path, keyring: Keyring, tmp_path: Path
) -> None:
    """The retry after a failed run whose folder was deleted: the new run goes ahead;
    the witness's retire entry and the new trail's first record name the old trail,
    and the old trail's heads still bind it wherever a copy turns up."""
    kept = tmp_path / "kept" / "audit.jsonl"
    shutil.copytree(trail.parent, kept.parent)
    old = _verify(trail, keyring)
    shutil.rmtree(trail.parent)
    _run(trail, keyring, "retry", steps=2)
    first = orjson.loads(_lines(trail)[0])
    note = first["supersedes"]
    assert note["records"] == old.records and note["head"] == old.head  # type: ignore[attr-defined]
    assert note["path"] == str(trail)
    entries = Witness(witness_path(keyring.path)).entries(keyring.signing_public_key)
    retire = next(e for e in entries if e["kind"] == "retire")
    assert retire["length"] == old.records and retire["head"] == old.head  # type: ignore[attr-defined]
    assert retire["reason"].startswith("superseded: the trail was gone when run retry")
    summary = _verify(trail, keyring)
    assert summary.supersedes == note  # type: ignore[attr-defined]
    assert "supersedes a trail that was gone" in summary.superseded()  # type: ignore[attr-defined]
    assert _verify(kept, keyring).records == old.records  # type: ignore[attr-defined]
    kept.write_bytes(b"".join(_lines(kept)[:4]))
    kept.with_name("audit.jsonl.head").unlink()
    with pytest.raises(AuditVerificationError, match="cut, emptied or rolled back"):
        _verify(kept, keyring)  # nothing lost: the old trail is still bound


def test_an_edited_supersedes_note_breaks_the_new_trail(trail: Path, keyring: Keyring) -> None:
    """The note is in a hashed, signed record: rewriting what it says was replaced
    (to hide a longer trail) fails verification."""
    shutil.rmtree(trail.parent)
    _run(trail, keyring, "retry", steps=2)
    lines = _lines(trail)
    lines[0] = lines[0].replace(b'"records":8', b'"records":2')
    assert b'"records":2' in lines[0]
    trail.write_bytes(b"".join(lines))
    with pytest.raises(AuditVerificationError, match="line 1: record edited"):
        _verify(trail, keyring)


def test_a_head_that_is_not_a_file_is_one_error_not_a_crash(trail: Path, keyring: Keyring) -> None:
    head = trail.with_name("audit.jsonl.head")
    head.unlink()
    head.mkdir()
    with pytest.raises(AuditVerificationError, match=r"\.head: unreadable"):
        _verify(trail, keyring)


def test_a_record_without_prev_is_a_broken_chain(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "audit.jsonl"
    _run(path, keyring, "run")
    lines = _lines(path)
    record = orjson.loads(lines[1])
    record.pop("hash"), record.pop("prev")
    rest = {k: v for k, v in record.items() if k != "seq"}
    line = orjson.dumps({"seq": record["seq"], **rest})
    from privacy.integrity import line_hash

    lines[1] = (
        line[:-1]
        + b',"hash":"'
        + line_hash(line[:-1] + b',"hash":"' + b"0" * 64 + b'"}').encode()
        + b'"}\n'
    )
    path.write_bytes(b"".join(lines))
    with pytest.raises(AuditVerificationError, match="line 2: chain broken"):
        verify_trail(path, keyring.signing_public_key)


def test_attack_control_characters_in_a_forged_signer_are_escaped(
    tmp_path: Path, keyring: Keyring
) -> None:
    """A signer field that tries to print its own 'intact' line is shown escaped."""
    path = tmp_path / "audit.jsonl"
    _run(path, keyring, "run")
    _rewrite_last(path, lambda r: r.update(signer="evil\r\nOK: intact"), rehash=True)
    with pytest.raises(AuditVerificationError) as caught:
        verify_trail(path, keyring.signing_public_key)
    assert "\r" not in str(caught.value) and "\n" not in str(caught.value)
    assert r"signed by evil\r\nOK: intact" in str(caught.value)
    with pytest.raises(AppendRefused) as refused:
        _run(path, keyring, "legit")
    assert "\n" not in str(refused.value) and r"evil\r\n" in str(refused.value)


def test_a_folder_in_place_of_the_trail_is_refused(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "audit.jsonl"
    path.mkdir()
    with pytest.raises(AppendRefused, match=r"audit.jsonl: cannot be opened \("):
        AuditTrail(path, keyring)
    with pytest.raises(AppendRefused, match="audit trail not found"):
        AuditTrail(tmp_path / "none.jsonl", keyring, check=False).repair()


def test_verify_names_a_missing_trail_and_a_malformed_pin(trail: Path, keyring: Keyring) -> None:
    with pytest.raises(AuditVerificationError, match=r"none\.jsonl: audit trail not found"):
        verify_trail(trail.with_name("none.jsonl"), keyring.signing_public_key)
    with pytest.raises(AuditVerificationError, match="give the head's hash"):
        verify_trail(trail, keyring.signing_public_key, expect_head="abc")
