"""Sealed files: AES-256-GCM streaming envelope encryption (the STREAM construction).

Layout::

    magic "PPSEAL\\0" (7 bytes) | version 0x01 | header length (uint32, big-endian)
    | header (UTF-8 JSON) | segment 1 | segment 2 | ... | last segment

The header holds ``alg``, ``segment_size``, a random 7-byte ``nonce_prefix``, the
caller's ``associated_data`` (artifact name, policy hash; never data values), and the
envelope: the ``kek_id`` and the per-file data key wrapped under that KEK.

Each segment is ``AES-256-GCM(data key, nonce, plaintext, aad=header digest)`` with
``nonce = nonce_prefix || segment index (uint32) || last flag (0x00 / 0x01)``, as in
Hoang-Reyhanitabar-Rogaway-Vizár's STREAM (Tink's streaming AEAD, age). Every
plaintext segment holds ``segment_size`` bytes except the last, which holds 0 to
``segment_size``. So:

* a flipped bit anywhere in a segment fails that segment's tag;
* swapped or repeated segments fail (the index is in the nonce);
* a file cut at a segment boundary fails (its new last segment lacks the last flag),
  and bytes after the last segment are refused;
* a segment spliced from another file fails (another data key and nonce prefix);
* an edited header fails: the header digest covers the immutable fields and is bound
  both into every segment and into the wrapped data key.

The data key is fresh for every file, so each key sees one nonce prefix and at most
2^32 segments: far inside NIST SP 800-38D's limits. Re-wrapping (key rotation) rewrites
only the envelope fields, not the segments. Memory is bounded by one segment.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import struct
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privacy._atomic import atomic_path
from privacy._tee import HashingReader, HashingWriter, in_background
from privacy.crypto._provider import KeyEncryptionProvider
from privacy.errors import IntegrityError, PrivpipeError, ScopeError

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "MAGIC",
    "SealedHeader",
    "SealedWriter",
    "is_sealed",
    "open_sealed",
    "read_header",
    "rewrap_file",
    "seal_bytes",
    "seal_file",
    "unseal_bytes",
    "unseal_file",
]

MAGIC = b"PPSEAL\x00"
VERSION = 1
ALG = "AES-256-GCM-STREAM"
DEFAULT_SEGMENT_SIZE = 1 << 20
_TAG = 16
_PREFIX = MAGIC + bytes([VERSION])
_MAX_HEADER = 1 << 16


class SealedHeader:
    """The parsed header of a sealed file."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    @property
    def kek_id(self) -> str:
        return str(self.fields["kek_id"])

    @property
    def segment_size(self) -> int:
        return int(self.fields["segment_size"])

    @property
    def associated_data(self) -> dict[str, str]:
        return dict(self.fields["associated_data"])

    @property
    def nonce_prefix(self) -> bytes:
        return bytes.fromhex(self.fields["nonce_prefix"])

    @property
    def wrapped_key(self) -> bytes:
        return bytes.fromhex(self.fields["wrapped_key"])

    def digest(self) -> bytes:
        """SHA-256 over the magic, version and every field a re-wrap does not change."""
        immutable = {
            k: self.fields[k] for k in ("alg", "segment_size", "nonce_prefix", "associated_data")
        }
        canonical = json.dumps(immutable, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(_PREFIX + canonical).digest()

    def encode(self) -> bytes:
        body = json.dumps(self.fields, sort_keys=True, separators=(",", ":")).encode()
        return _PREFIX + struct.pack(">I", len(body)) + body


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", index) + (b"\x01" if last else b"\x00")


def _new_header(
    provider: KeyEncryptionProvider, associated_data: Mapping[str, str], segment_size: int
) -> tuple[SealedHeader, bytes]:
    if not 1 <= segment_size <= 1 << 26:
        raise ValueError("segment_size must be between 1 byte and 64 MiB")
    header = SealedHeader(
        {
            "alg": ALG,
            "segment_size": segment_size,
            "nonce_prefix": secrets.token_bytes(7).hex(),
            "associated_data": {str(k): str(v) for k, v in associated_data.items()},
        }
    )
    data_key = AESGCM.generate_key(bit_length=256)
    kek_id, wrapped = provider.wrap_key(data_key, header.digest())
    header.fields |= {"kek_id": kek_id, "wrapped_key": wrapped.hex()}
    return header, data_key


class SealedWriter:
    """A write-only stream that seals what is written to ``sink``, one segment at a time.

    ``close()`` (or leaving a ``with`` block normally) writes the last segment. A writer
    abandoned by an exception is never finalized: its output is an invalid, truncated
    sealed file, which is the safe failure.
    """

    def __init__(
        self,
        sink: BinaryIO,
        provider: KeyEncryptionProvider,
        associated_data: Mapping[str, str] | None = None,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
    ) -> None:
        self._sink = sink
        self.closed = False
        self.header, key = _new_header(provider, associated_data or {}, segment_size)
        self._aead = AESGCM(key)
        self._aad = self.header.digest()
        self._prefix = self.header.nonce_prefix
        self._size = segment_size
        self._buffer = bytearray(segment_size)
        self._fill = 0
        self._index = 0
        sink.write(self.header.encode())

    def __enter__(self) -> SealedWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.closed = True  # abandoned: no last segment

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed SealedWriter")
        view = memoryview(data).cast("B")
        total, size = len(view), self._size
        # Invariant: the buffer holds 0..size bytes not yet known not to be the last.
        if self._fill:
            take = min(size - self._fill, len(view))
            self._buffer[self._fill : self._fill + take] = view[:take]
            self._fill += take
            view = view[take:]
            if not view:
                return total
            self._emit(memoryview(self._buffer), last=False)  # full, and more follows
            self._fill = 0
        while len(view) > size:  # whole segments straight from the caller's buffer
            self._emit(view[:size], last=False)
            view = view[size:]
        self._buffer[: len(view)] = view
        self._fill = len(view)
        return total

    def copy_from(self, source: BinaryIO) -> None:
        """Seal everything ``source`` holds and close: one read per segment, no copies."""
        if self._fill or self._index:
            raise ValueError("copy_from needs a fresh writer")
        current = source.read(self._size)
        while True:
            following = source.read(self._size)
            self._emit(current, last=not following)
            if not following:
                break
            current = following
        self.closed = True

    def close(self) -> None:
        if not self.closed:
            self._emit(memoryview(self._buffer)[: self._fill], last=True)
            self._fill = 0
            self.closed = True

    def _emit(self, plaintext: bytes | bytearray | memoryview, *, last: bool) -> None:
        nonce = _nonce(self._prefix, self._index, last)
        self._sink.write(self._aead.encrypt(nonce, plaintext, self._aad))
        self._index += 1


def read_header(source: BinaryIO, name: str = "sealed file") -> SealedHeader:
    """Parse the header at the start of ``source``; leaves ``source`` at segment 1."""
    start = source.read(len(_PREFIX) + 4)
    if start[: len(MAGIC)] != MAGIC:
        raise IntegrityError(f"{name}: not a sealed file (bad magic)")
    if len(start) < len(_PREFIX) + 4:
        raise IntegrityError(f"{name}: truncated header")
    if start[len(MAGIC)] != VERSION:
        raise IntegrityError(f"{name}: sealed-file version {start[len(MAGIC)]} is not supported")
    (length,) = struct.unpack(">I", start[len(_PREFIX) :])
    if length > _MAX_HEADER:
        raise IntegrityError(f"{name}: header integrity check failed (header too long)")
    body = source.read(length)
    if len(body) != length:
        raise IntegrityError(f"{name}: truncated header")
    try:
        fields = json.loads(body)
        header = SealedHeader(fields)
        if fields["alg"] != ALG or header.segment_size < 1 or len(header.nonce_prefix) != 7:
            raise ValueError
        header.kek_id, header.wrapped_key, header.associated_data  # noqa: B018 - validate
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise IntegrityError(f"{name}: header integrity check failed (malformed header)") from None
    return header


def _check_associated(name: str, header: SealedHeader, expected: Mapping[str, str] | None) -> None:
    if expected is None:
        return
    found = header.associated_data
    for key, value in expected.items():
        if found.get(key) != str(value):
            raise IntegrityError(
                f"{name}: associated data mismatch: {key} is {found.get(key)!r}, "
                f"expected {str(value)!r} (a sealed file moved from another place?)"
            )


def _unwrap(name: str, header: SealedHeader, provider: KeyEncryptionProvider) -> bytes:
    try:
        return provider.unwrap_key(header.kek_id, header.wrapped_key, header.digest())
    except ScopeError as exc:  # keeps which scope and keyring (the refusal is audited)
        raise ScopeError(f"{name}: {exc}", scope=exc.scope, keyring=exc.keyring) from None
    except PrivpipeError as exc:
        raise type(exc)(f"{name}: {exc}") from None


def open_sealed(
    source: BinaryIO,
    provider: KeyEncryptionProvider,
    *,
    expected: Mapping[str, str] | None = None,
    name: str = "sealed file",
) -> Iterator[bytes]:
    """Yield the plaintext of a sealed stream segment by segment, each one verified.

    Raises :class:`IntegrityError` at the first segment that fails, naming it; callers
    must not treat earlier segments as valid output until the iterator is exhausted.
    """
    header = read_header(source, name)
    _check_associated(name, header, expected)
    aead = AESGCM(_unwrap(name, header, provider))
    aad, prefix = header.digest(), header.nonce_prefix
    chunk = header.segment_size + _TAG
    current = source.read(chunk)
    index = 0
    while True:
        following = source.read(chunk)
        last = not following
        try:
            yield aead.decrypt(_nonce(prefix, index, last), current, aad)
        except InvalidTag:
            raise IntegrityError(_diagnose(name, aead, prefix, aad, index, current, last)) from None
        if last:
            return
        index += 1
        current = following


def _diagnose(
    name: str, aead: AESGCM, prefix: bytes, aad: bytes, index: int, data: bytes, last: bool
) -> str:
    where = f"{name}: integrity check failed at segment {index + 1}"
    if len(data) < _TAG:
        return f"{where} (truncated file)"
    try:
        aead.decrypt(_nonce(prefix, index, not last), data, aad)
    except InvalidTag:
        return where
    if last:
        return f"{where} (file truncated after it)"
    return f"{where} (data after the last segment)"


def seal_file(
    source: Path,
    target: Path,
    provider: KeyEncryptionProvider,
    associated_data: Mapping[str, str] | None = None,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    plain: Iterable[Any] = (),
    sealed: Iterable[Any] = (),
) -> SealedHeader:
    """Seal ``source`` into ``target`` (atomically, mode 0600) in bounded memory.

    Each hash object in ``plain`` (``hashlib`` / ``hmac``) is fed the plaintext as it is
    read, each in ``sealed`` the file as it is written: one pass gives both digests."""
    with (
        in_background(plain) as plain_feeds,
        in_background(sealed) as sealed_feeds,
        atomic_path(target) as tmp,
        source.open("rb") as raw,
        tmp.open("wb") as out,
    ):
        sink = cast(BinaryIO, HashingWriter(out, sealed_feeds))
        with SealedWriter(sink, provider, associated_data, segment_size=segment_size) as writer:
            writer.copy_from(cast(BinaryIO, HashingReader(raw, plain_feeds)))
    return writer.header


def unseal_file(
    source: Path,
    target: Path,
    provider: KeyEncryptionProvider,
    *,
    expected: Mapping[str, str] | None = None,
    sealed: Iterable[Any] = (),
    plain: Iterable[Any] = (),
) -> None:
    """Unseal ``source`` into ``target``. On any failure no ``target`` is left behind.

    Each hash object in ``sealed`` is fed the file as it is read, each in ``plain`` the
    plaintext as it is verified: one pass gives both digests."""
    with (
        in_background(plain) as plain_feeds,
        in_background(sealed) as sealed_feeds,
        source.open("rb") as raw,
        atomic_path(target) as tmp,
        tmp.open("wb") as sink,
    ):
        src = cast(BinaryIO, HashingReader(raw, sealed_feeds))
        for block in open_sealed(src, provider, expected=expected, name=str(source)):
            for digest in plain_feeds:
                digest.update(block)
            sink.write(block)


def seal_bytes(
    data: bytes,
    provider: KeyEncryptionProvider,
    associated_data: Mapping[str, str] | None = None,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> bytes:
    sink = io.BytesIO()
    writer = SealedWriter(sink, provider, associated_data, segment_size=segment_size)
    writer.write(data)
    writer.close()
    return sink.getvalue()


def unseal_bytes(
    source: Path | bytes,
    provider: KeyEncryptionProvider,
    *,
    expected: Mapping[str, str] | None = None,
    name: str | None = None,
) -> bytes:
    """The whole plaintext of a sealed file, in memory (never through a temp file)."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            return b"".join(open_sealed(handle, provider, expected=expected, name=str(source)))
    stream: IO[bytes] = io.BytesIO(source)
    return b"".join(open_sealed(stream, provider, expected=expected, name=name or "sealed data"))  # type: ignore[arg-type]


def is_sealed(path: Path | bytes) -> bool:
    """Whether a file (or bytes already read) begins as a sealed file does."""
    if isinstance(path, bytes):
        return path.startswith(MAGIC)
    try:
        with path.open("rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def rewrap_file(path: Path, provider: KeyEncryptionProvider) -> tuple[str, str]:
    """Re-wrap a sealed file's data key under the provider's active KEK, copying the
    segments unchanged. Returns (old KEK id, new KEK id)."""
    with path.open("rb") as src:
        header = read_header(src, str(path))
        data_key = _unwrap(str(path), header, provider)
        old = header.kek_id
        for_kek = getattr(provider, "for_kek", None)  # a keyring: keep the file's scope
        if for_kek is not None:
            provider = for_kek(old)
        kek_id, wrapped = provider.wrap_key(data_key, header.digest())
        if kek_id == old:
            return old, kek_id
        header.fields |= {"kek_id": kek_id, "wrapped_key": wrapped.hex()}
        mode = path.stat().st_mode & 0o777
        with atomic_path(path) as tmp, tmp.open("wb") as sink:
            sink.write(header.encode())
            while block := src.read(1 << 20):
                sink.write(block)
        os.chmod(path, mode)
    return old, kek_id
