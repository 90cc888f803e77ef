"""Each refusal of the sealed-file reader, alone, by its own message: a file only that
check catches first (with the check gone, a later one fails with another message, or
the file is read as if it were valid)."""

from __future__ import annotations

import io
import json
import secrets
import struct
from pathlib import Path

import pytest

from privacy.crypto import Keyring, SealedWriter, read_header, seal_bytes, unseal_bytes
from privacy.errors import IntegrityError, ScopeError
from tests._keys import FAST_SCRYPT, PASSPHRASE

SEG = 64
AD = {"artifact": "test"}
_PREFIX = 8  # the magic (7 bytes) and the version byte, then a 4-byte header length


def _blob(keyring: Keyring, size: int = 5 * SEG + 10) -> tuple[bytes, bytes]:
    data = secrets.token_bytes(size)
    return data, seal_bytes(data, keyring, AD, segment_size=SEG)


def _segment(blob: bytes, index: int) -> slice:
    (length,) = struct.unpack(">I", blob[_PREFIX : _PREFIX + 4])
    start = _PREFIX + 4 + length + index * (SEG + 16)
    return slice(start, start + SEG + 16)


@pytest.mark.parametrize("cut", [7, 8, 11])
def test_a_file_cut_inside_the_fixed_prefix_is_a_truncated_header(
    keyring: Keyring, cut: int
) -> None:
    """Magic intact, but the version byte or the length field cut short."""
    _, blob = _blob(keyring)
    with pytest.raises(IntegrityError, match=r"^f\.sealed: truncated header$"):
        unseal_bytes(blob[:cut], keyring, name="f.sealed")


def test_a_file_cut_inside_the_header_body_is_a_truncated_header(keyring: Keyring) -> None:
    _, blob = _blob(keyring)
    with pytest.raises(IntegrityError, match=r"^f\.sealed: truncated header$"):
        unseal_bytes(blob[: _PREFIX + 4 + 10], keyring, name="f.sealed")


@pytest.mark.parametrize("version", [0, 2, 255])
def test_another_sealed_file_version_is_refused(keyring: Keyring, version: int) -> None:
    """The version byte is outside what the header digest covers (the reader's constant
    prefix is hashed), so without this check a version-2 file would be read as v1."""
    _, blob = _blob(keyring)
    other = blob[:7] + bytes([version]) + blob[8:]
    with pytest.raises(
        IntegrityError, match=rf"^f\.sealed: sealed-file version {version} is not supported$"
    ):
        unseal_bytes(other, keyring, name="f.sealed")


def test_an_over_long_header_is_refused_before_it_is_read(keyring: Keyring) -> None:
    """A length over 64 KiB is refused at once, whether or not the bytes follow (here
    they do: without the check the reader would read 64 KiB + 1 and fail otherwise)."""
    _, blob = _blob(keyring)
    length = (1 << 16) + 1
    long = blob[:_PREFIX] + struct.pack(">I", length) + b" " * length + blob[_PREFIX + 4 :]
    with pytest.raises(
        IntegrityError, match=r"^f\.sealed: header integrity check failed \(header too long\)$"
    ):
        unseal_bytes(long, keyring, name="f.sealed")

    class Reads:
        """A source that records how much was asked of it."""

        def __init__(self, data: bytes) -> None:
            self.data, self.asked = data, 0

        def read(self, n: int = -1) -> bytes:
            self.asked += n
            out, self.data = self.data[:n], self.data[n:]
            return out

    source = Reads(long)
    with pytest.raises(IntegrityError, match=r"header too long"):
        read_header(source)  # type: ignore[arg-type]
    assert source.asked == _PREFIX + 4  # the length field, and nothing of the body


def test_a_header_at_the_length_limit_is_read(keyring: Keyring) -> None:
    """64 KiB exactly is allowed (only a malformed body then fails)."""
    _, blob = _blob(keyring)
    length = 1 << 16
    padded = blob[:_PREFIX] + struct.pack(">I", length) + b" " * length
    with pytest.raises(IntegrityError, match=r"\(malformed header\)$"):
        unseal_bytes(padded, keyring, name="f.sealed")


def test_a_repeated_segment_is_caught(keyring: Keyring) -> None:
    """Segment 2 written twice (the rest shifted along): its second copy sits at index 2,
    whose nonce it was not sealed under."""
    _, blob = _blob(keyring)
    two = _segment(blob, 1)
    repeated = blob[: two.stop] + blob[two] + blob[two.stop :]
    with pytest.raises(IntegrityError, match=r"^f\.sealed: integrity check failed at segment 3$"):
        unseal_bytes(repeated, keyring, name="f.sealed")


def test_a_repeated_last_segment_is_caught(keyring: Keyring) -> None:
    """The short final segment twice: the reader's segment 6 is no longer that segment."""
    _, blob = _blob(keyring)
    last = _segment(blob, 5)
    assert last.stop > len(blob)  # the short final segment
    with pytest.raises(IntegrityError, match=r"^f\.sealed: integrity check failed at segment 6$"):
        unseal_bytes(blob + blob[last.start :], keyring, name="f.sealed")


def _reheader(blob: bytes, **changes: object) -> bytes:
    """``blob`` with header fields changed (the segments left as they are)."""
    (length,) = struct.unpack(">I", blob[_PREFIX : _PREFIX + 4])
    fields = json.loads(blob[_PREFIX + 4 : _PREFIX + 4 + length])
    fields.update(changes)
    body = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return blob[:_PREFIX] + struct.pack(">I", len(body)) + body + blob[_PREFIX + 4 + length :]


@pytest.mark.parametrize(
    "change",
    [{"alg": "AES-128-GCM-STREAM"}, {"segment_size": 0}, {"nonce_prefix": "00" * 6}],
    ids=["alg", "segment_size", "nonce_prefix"],
)
def test_a_well_formed_header_with_an_unusable_field_is_malformed(
    keyring: Keyring, change: dict[str, object]
) -> None:
    """Valid JSON, every key present, one value unusable: refused as malformed, before
    the key is unwrapped (which would fail with another message)."""
    _, blob = _blob(keyring)
    with pytest.raises(
        IntegrityError, match=r"^f\.sealed: header integrity check failed \(malformed header\)$"
    ):
        unseal_bytes(_reheader(blob, **change), keyring, name="f.sealed")


def test_a_file_of_a_scope_the_keyring_lacks_is_a_scope_error_naming_it(
    tmp_path: Path, keyring: Keyring
) -> None:

    blob = seal_bytes(b"x" * 100, keyring.for_scope("vault"), AD, segment_size=SEG)
    published_only = keyring.export(
        tmp_path / "published.json", PASSPHRASE, ["published"], scrypt_n=FAST_SCRYPT
    )
    with pytest.raises(ScopeError, match=r"^f\.sealed: sealed under the 'vault' scope") as caught:
        unseal_bytes(blob, published_only, name="f.sealed")
    assert caught.value.scope == "vault"
    assert caught.value.keyring == str(published_only.path)


def test_writer_misuse_is_refused(keyring: Keyring) -> None:
    for size in (0, (1 << 26) + 1):
        with pytest.raises(ValueError, match=r"^segment_size must be between 1 byte and 64 MiB$"):
            SealedWriter(io.BytesIO(), keyring, AD, segment_size=size)
    writer = SealedWriter(io.BytesIO(), keyring, AD, segment_size=SEG)
    writer.write(b"abc")
    with pytest.raises(ValueError, match=r"^copy_from needs a fresh writer$"):
        writer.copy_from(io.BytesIO(b"more"))
    writer.close()
    with pytest.raises(ValueError, match=r"^write to a closed SealedWriter$"):
        writer.write(b"late")
