"""Sealed files: round trips and every way of tampering with one."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import struct
from pathlib import Path

import pytest

from privacy.crypto import (
    Keyring,
    SealedWriter,
    is_sealed,
    open_sealed,
    read_header,
    rewrap_file,
    seal_bytes,
    seal_file,
    unseal_bytes,
    unseal_file,
)
from privacy.errors import IntegrityError, KeyAccessError
from tests._keys import FAST_SCRYPT, PASSPHRASE

SEG = 64  # small segments so a few hundred bytes make many of them
AD = {"artifact": "test", "policy_sha256": "ab" * 32}


class InMemoryKms:
    """A cloud-KMS double: it wraps and unwraps, and never hands a KEK out."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._kek = AESGCM(AESGCM.generate_key(bit_length=256))
        self.calls = 0

    @property
    def active_kek_id(self) -> str:
        return "kms://test/key/1"

    def wrap_key(self, data_key: bytes, associated_data: bytes) -> tuple[str, bytes]:
        self.calls += 1
        nonce = os.urandom(12)
        return self.active_kek_id, nonce + self._kek.encrypt(nonce, data_key, associated_data)

    def unwrap_key(self, kek_id: str, wrapped: bytes, associated_data: bytes) -> bytes:
        self.calls += 1
        return self._kek.decrypt(wrapped[:12], wrapped[12:], associated_data)


def _segments_start(blob: bytes) -> int:
    (length,) = struct.unpack(">I", blob[8:12])
    return 12 + length


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG, 3 * SEG + 5, 1000])
def test_round_trip_is_byte_identical(keyring: Keyring, size: int) -> None:
    data = secrets.token_bytes(size)
    blob = seal_bytes(data, keyring, AD, segment_size=SEG)
    segments = max(1, -(-size // SEG))  # the last holds 1..SEG bytes; 0 only when empty
    assert len(blob) == _segments_start(blob) + size + 16 * segments
    assert unseal_bytes(blob, keyring, expected=AD) == data


def test_streaming_writes_in_any_chunking(keyring: Keyring) -> None:
    data = secrets.token_bytes(1000)
    sink = io.BytesIO()
    with SealedWriter(sink, keyring, AD, segment_size=SEG) as writer:
        for i in range(0, len(data), 7):
            writer.write(data[i : i + 7])
    assert unseal_bytes(sink.getvalue(), keyring) == data


def test_file_round_trip_and_header(tmp_path: Path, keyring: Keyring) -> None:
    source = tmp_path / "plain.bin"
    source.write_bytes(secrets.token_bytes(5000))
    seal_file(source, tmp_path / "s.sealed", keyring, AD, segment_size=SEG)
    assert is_sealed(tmp_path / "s.sealed") and not is_sealed(source)
    assert (tmp_path / "s.sealed").stat().st_mode & 0o777 == 0o600
    with (tmp_path / "s.sealed").open("rb") as handle:
        header = read_header(handle)
    assert header.kek_id == keyring.active_kek_id and header.associated_data == AD
    unseal_file(tmp_path / "s.sealed", tmp_path / "back.bin", keyring, expected=AD)
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()


def _sealed(keyring: Keyring, size: int = 5 * SEG + 10) -> tuple[bytes, bytes]:
    data = secrets.token_bytes(size)
    return data, seal_bytes(data, keyring, AD, segment_size=SEG)


def _segment(blob: bytes, index: int) -> slice:
    start = _segments_start(blob) + index * (SEG + 16)
    return slice(start, start + SEG + 16)


@pytest.mark.parametrize("segment", [0, 2, 5])
@pytest.mark.parametrize("offset", [0, 31, -1])
def test_a_flipped_bit_in_any_segment_is_caught(
    keyring: Keyring, segment: int, offset: int
) -> None:
    _, blob = _sealed(keyring)
    where = _segment(blob, segment)
    end = min(where.stop, len(blob))  # the last segment is short
    position = min(where.start + offset, end - 1) if offset >= 0 else end - 1
    tampered = bytearray(blob)
    tampered[position] ^= 0x04
    with pytest.raises(IntegrityError, match=f"integrity check failed at segment {segment + 1}"):
        unseal_bytes(bytes(tampered), keyring, name="f.sealed")


def test_swapped_segments(keyring: Keyring) -> None:
    _, blob = _sealed(keyring)
    two, three = blob[_segment(blob, 1)], blob[_segment(blob, 2)]
    s2, s3 = _segment(blob, 1), _segment(blob, 2)
    swapped = blob[: s2.start] + three + two + blob[s3.stop :]
    with pytest.raises(IntegrityError, match="integrity check failed at segment 2"):
        unseal_bytes(swapped, keyring)


def test_truncated_at_a_segment_boundary(keyring: Keyring) -> None:
    _, blob = _sealed(keyring)
    cut = blob[: _segment(blob, 3).start]
    with pytest.raises(IntegrityError, match=r"segment 3 \(file truncated after it\)"):
        unseal_bytes(cut, keyring)


def test_truncated_mid_segment_and_in_the_header(keyring: Keyring) -> None:
    _, blob = _sealed(keyring)
    with pytest.raises(IntegrityError, match="integrity check failed at segment 4"):
        unseal_bytes(blob[: _segment(blob, 3).start + 20], keyring)
    with pytest.raises(IntegrityError, match="truncated header"):
        unseal_bytes(blob[:20], keyring)


def test_extended_file(keyring: Keyring) -> None:
    _, blob = _sealed(keyring)
    with pytest.raises(IntegrityError, match="integrity check failed at segment 6"):
        unseal_bytes(blob + b"\x00" * 40, keyring)
    _, full = _sealed(keyring, size=5 * SEG)  # a full last segment: the extension is aligned
    with pytest.raises(IntegrityError, match=r"segment 5 \(data after the last segment\)"):
        unseal_bytes(full + bytes(SEG + 16), keyring)


def test_segment_spliced_from_another_file(keyring: Keyring) -> None:
    _, blob = _sealed(keyring)
    _, other = _sealed(keyring)
    where = _segment(blob, 1)
    spliced = blob[: where.start] + other[_segment(other, 1)] + blob[where.stop :]
    with pytest.raises(IntegrityError, match="integrity check failed at segment 2"):
        unseal_bytes(spliced, keyring)


def test_tampered_header_fields(keyring: Keyring) -> None:
    _, blob = _sealed(keyring)
    moved = blob.replace(b'"artifact":"test"', b'"artifact":"tost"')
    with pytest.raises(IntegrityError, match="header integrity check failed"):
        unseal_bytes(moved, keyring)
    garbled = blob.replace(b'"alg"', b'"alx"')
    with pytest.raises(IntegrityError, match="header integrity check failed"):
        unseal_bytes(garbled, keyring)
    with pytest.raises(IntegrityError, match="not a sealed file"):
        unseal_bytes(b"PAR1" + blob[4:], keyring)


def test_associated_data_mismatch(keyring: Keyring) -> None:
    _, blob = _sealed(keyring)
    with pytest.raises(
        IntegrityError, match="associated data mismatch: artifact is 'test', expected 'vault'"
    ):
        unseal_bytes(blob, keyring, expected={"artifact": "vault"})


def test_unknown_kek(tmp_path: Path, keyring: Keyring) -> None:
    _, blob = _sealed(keyring)
    other = Keyring.create(tmp_path / "other.json", PASSPHRASE, scrypt_n=FAST_SCRYPT)
    with pytest.raises(
        KeyAccessError, match=f"sealed under key {keyring.active_kek_id}, which keyring"
    ):
        unseal_bytes(blob, other, name="f.sealed")


def test_failed_unseal_writes_no_output(tmp_path: Path, keyring: Keyring) -> None:
    _, blob = _sealed(keyring)
    damaged = tmp_path / "d.sealed"
    damaged.write_bytes(blob[:-3])
    with pytest.raises(IntegrityError):
        unseal_file(damaged, tmp_path / "out.bin", keyring)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "d.sealed",
        "ring.json",
        "ring.json.lock",
        "ring.json.witness",
    ]


def test_abandoned_writer_leaves_an_invalid_file(keyring: Keyring) -> None:
    sink = io.BytesIO()
    with pytest.raises(RuntimeError), SealedWriter(sink, keyring, AD, segment_size=SEG) as w:
        w.write(b"x" * 500)
        raise RuntimeError("crash mid-write")
    with pytest.raises(IntegrityError, match="file truncated after it"):
        unseal_bytes(sink.getvalue(), keyring)


def test_rotation_and_rewrap_keep_files_readable(tmp_path: Path, keyring: Keyring) -> None:
    data, blob = _sealed(keyring)
    path = tmp_path / "old.sealed"
    path.write_bytes(blob)
    old_kek = keyring.active_kek_id
    keyring.rotate()
    rotated = Keyring.open(keyring.path, PASSPHRASE)
    assert unseal_bytes(path, rotated) == data  # old KEK still opens it
    assert rewrap_file(path, rotated) == (old_kek, rotated.active_kek_id)
    rewrapped = path.read_bytes()
    assert (
        rewrapped[_segments_start(rewrapped) :] == blob[_segments_start(blob) :]
    )  # body untouched
    assert unseal_bytes(path, rotated, expected=AD) == data
    with path.open("rb") as handle:
        assert read_header(handle).kek_id == rotated.active_kek_id


def test_a_kms_provider_plugs_in_without_revealing_keys() -> None:
    kms = InMemoryKms()
    data = secrets.token_bytes(300)
    blob = seal_bytes(data, kms, AD, segment_size=SEG)
    assert unseal_bytes(blob, kms) == data and kms.calls == 2


@pytest.mark.slow
def test_multi_gib_round_trip_in_bounded_memory(keyring: Keyring) -> None:
    """2 GiB + 1 byte sealed by one thread and unsealed by another through an OS pipe:
    streaming end to end, no disk, compared by hash, memory bounded by a few segments."""
    import resource
    import threading

    size = (2 << 30) + 1
    block = secrets.token_bytes(1 << 20)
    digest = hashlib.sha256()
    read_fd, write_fd = os.pipe()

    def seal() -> None:
        with os.fdopen(write_fd, "wb") as sink, SealedWriter(sink, keyring, AD) as writer:
            written = 0
            while written < size:
                piece = block[: min(len(block), size - written)]
                writer.write(piece)
                digest.update(piece)
                written += len(piece)

    sealer = threading.Thread(target=seal)
    sealer.start()
    back = hashlib.sha256()
    unsealed = 0
    with os.fdopen(read_fd, "rb") as source:
        for plain in open_sealed(source, keyring, expected=AD):
            back.update(plain)
            unsealed += len(plain)
    sealer.join()
    assert unsealed == size and back.hexdigest() == digest.hexdigest()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_mib < 1024, f"peak RSS {peak_mib:.0f} MiB"
