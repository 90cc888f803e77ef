"""The witness: every signed head of every trail a keyring signs, outside the trails' folders.

A trail and its ``.head`` file live in the output folder, so whoever can write that
folder can cut the trail back to an earlier signed checkpoint, delete ``.head``, or
replace the whole folder by an older copy: each of those is a trail that verifies.
The witness closes that gap the way CloudTrail's digest files do: each period's head is
chained to the previous one and signed, in a file the folder's writer cannot rewrite
unnoticed. Here that file lives beside the keyring (``<keyring>.witness``, mode 0600):
the custodian's folder, not the run's.

Format: JSON lines. Each entry is::

    {"seq": N, "prev": <previous entry's hash>, "time": …, "kind": "trail" | "keyring",
     "subject": <absolute path>, "origin": <hash of the trail's first line>,
     "length": <records up to and including the checkpoint>, "head": <its line hash>,
     "offset": <byte offset just past that line>, "generation": <keyring generation>,
     "signer": "sig-…", "signature": <Ed25519 over the canonical entry>, "hash": …}

``hash`` is SHA-256 of the canonical (sorted-key, compact) JSON of the entry without
``signature`` and ``hash``; ``signature`` signs those same bytes. A trail is identified
by its first line's hash (``origin``), so a run folder that is moved or copied for a
review is still recognized, and by its path, so a trail emptied or replaced where it
stood is too. Appends verify the witness's last entry before linking, under an
exclusive lock, exactly as trails do.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from privacy._atomic import fsync_dir, private_dir
from privacy.errors import WitnessError
from privacy.integrity._chain import GENESIS, canonical_json, utc_now
from privacy.integrity._signer import Signer, signing_key_id

__all__ = ["WITNESS_SUFFIX", "Sighting", "Witness", "WitnessError", "subject_of", "witness_path"]

WITNESS_SUFFIX = ".witness"


def witness_path(keyring: str | Path) -> Path:
    """Where the witness of the keyring at ``keyring`` lives: beside it."""
    keyring = Path(keyring)
    return keyring.with_name(keyring.name + WITNESS_SUFFIX)


def _canonical(entry: dict[str, Any]) -> bytes:
    return canonical_json(entry, without=("signature", "hash"))


@dataclass(frozen=True)
class Sighting:
    """What the witness last recorded of one trail."""

    subject: str
    origin: str
    length: int
    head: str
    offset: int
    seq: int  # the witness entry's own number
    time: str


def subject_of(path: str | Path) -> str:
    """How the witness names a trail's path: absolute, symlinks NOT resolved (a trail
    reached through a symlink is not the trail the link points to)."""
    return os.path.abspath(path)


@dataclass
class _Index:
    """What has been read and checked of a witness file so far, and where each trail's
    heads are: a long-lived witness is walked once, then only its new lines."""

    offset: int = 0
    number: int = 0
    prev: str = GENESIS
    entries: list[dict[str, Any]] = field(default_factory=list)
    by_subject: dict[str, list[int]] = field(default_factory=dict)
    by_origin: dict[str, list[int]] = field(default_factory=dict)
    generation: tuple[int, int] | None = None  # (highest generation, its entry number)
    signed_up_to: int = 0  # the last entry whose signature was checked


class Witness:
    """The witness file of one keyring. ``signer`` is needed to record, not to read."""

    def __init__(self, path: str | Path, signer: Signer | None = None) -> None:
        self.path = Path(path)
        self.signer = signer
        self._index = _Index()
        self._read_key: bytes | None = None

    @classmethod
    def for_signer(cls, signer: Signer) -> Witness | None:
        """The witness beside ``signer``'s keyring file; None for a signer with no file
        (a key held in memory only)."""
        home = signer.signing_home
        return None if home is None else cls(witness_path(home), signer)

    # ------------------------------------------------------------------ reading

    def entries(self, public_key: bytes, *, signatures: bool = True) -> list[dict[str, Any]]:
        """Every entry, each checked: sequence, hash and chain; with ``signatures``, the
        Ed25519 signature of the last one under ``public_key``, which (each entry's hash
        covering the one before) vouches for every entry up to it. Raises
        :class:`WitnessError` at the first bad line, or when the file is shorter than
        when it was last read here (rolled back). The list is the witness's own: read,
        never change it."""
        index = self._read_new(public_key)
        if signatures and index.number > index.signed_up_to:
            self._check_signature(
                index.number,
                index.entries[-1],
                Ed25519PublicKey.from_public_bytes(public_key),
                signing_key_id(public_key),
            )
            index.signed_up_to = index.number
        return index.entries

    def _read_new(self, public_key: bytes) -> _Index:
        if self._read_key != public_key:
            self._index, self._read_key = _Index(), public_key
        index = self._index
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            if index.offset:
                raise WitnessError(f"{self.path}: the witness is gone (deleted?)") from None
            return index
        with handle:
            # a shared lock: a concurrent record() (exclusive) never shows a half line
            fcntl.flock(handle, fcntl.LOCK_SH)
            size = handle.seek(0, os.SEEK_END)
            if size < index.offset:
                raise WitnessError(
                    f"{self.path}: the witness is shorter than when it was read "
                    f"({size} < {index.offset} bytes): rolled back or cut"
                )
            handle.seek(index.offset)
            for raw in handle:
                entry = self._check_line(index.number + 1, raw, index.prev)
                index.number += 1
                index.entries.append(entry)
                position = index.number - 1
                if entry.get("kind") == "trail":
                    index.by_subject.setdefault(str(entry.get("subject")), []).append(position)
                    index.by_origin.setdefault(str(entry.get("origin")), []).append(position)
                elif entry.get("kind") == "retire":  # the path's earlier trail was let go
                    index.by_subject.pop(str(entry.get("subject")), None)
                generation = entry.get("generation")
                if isinstance(generation, int) and (
                    index.generation is None or generation >= index.generation[0]
                ):
                    index.generation = (generation, index.number)
                index.prev = entry["hash"]
                index.offset += len(raw)
        return index

    def _check_line(self, number: int, raw: bytes, prev: str) -> dict[str, Any]:
        def fail(what: str) -> WitnessError:
            return WitnessError(f"{self.path}: line {number}: {what}")

        if not raw.endswith(b"\n"):
            raise fail("incomplete last line (a write was cut off, or the file was edited)")
        try:
            entry: dict[str, Any] = orjson.loads(raw)
            stated = entry["hash"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise fail("not a witness entry (malformed line)") from None
        if entry.get("seq") != number:
            raise fail(f"out of sequence: expected entry {number}, found {entry.get('seq')}")
        if hashlib.sha256(_canonical(entry)).hexdigest() != stated:
            raise fail("entry edited: its content does not match its hash")
        if entry.get("prev") != prev:
            raise fail("chain broken: prev is not the hash of the entry before")
        return entry

    def _check_signature(
        self, number: int, entry: dict[str, Any], trusted: Ed25519PublicKey, trusted_id: str
    ) -> None:
        if entry.get("signer") != trusted_id:
            raise WitnessError(
                f"{self.path}: line {number}: signed by {entry.get('signer')}, not {trusted_id}"
            )
        try:
            trusted.verify(bytes.fromhex(str(entry["signature"])), _canonical(entry))
        except (InvalidSignature, ValueError, KeyError):
            raise WitnessError(
                f"{self.path}: line {number}: bad signature on the witness entry"
            ) from None

    def sightings(
        self,
        public_key: bytes,
        trail: str | Path,
        origin: str | None,
        *,
        signatures: bool = True,
    ) -> list[Sighting]:
        """Every recorded head of the trail at ``trail`` or whose first line hashes to
        ``origin``, oldest first (the whole witness checked on the way; with
        ``signatures``, each of these entries' signatures too)."""
        entries = self.entries(public_key, signatures=signatures)
        index = self._index
        positions = set(index.by_subject.get(subject_of(trail), ()))
        if origin is not None:
            positions.update(index.by_origin.get(origin, ()))
        trusted = Ed25519PublicKey.from_public_bytes(public_key)
        trusted_id = signing_key_id(public_key)
        found = []
        for position in sorted(positions):
            entry = entries[position]
            if signatures:
                self._check_signature(position + 1, entry, trusted, trusted_id)
            found.append(self._sighting(entry))
        return found

    def latest(
        self, public_key: bytes, trail: str | Path, origin: str | None
    ) -> tuple[Sighting | None, Sighting | None]:
        """The last head recorded at the path ``trail``, and the last one of the trail
        whose first line hashes to ``origin`` (wherever it was): what a writer checks
        before it appends. Hashes and links are checked; signatures are not (the
        writer checks the witness's last entry before recording)."""
        entries = self.entries(public_key, signatures=False)
        index = self._index
        at_path = index.by_subject.get(subject_of(trail))
        of_trail = index.by_origin.get(origin) if origin is not None else None
        return (
            self._sighting(entries[at_path[-1]]) if at_path else None,
            self._sighting(entries[of_trail[-1]]) if of_trail else None,
        )

    @staticmethod
    def _sighting(entry: dict[str, Any]) -> Sighting:
        try:
            return Sighting(
                subject=str(entry["subject"]),
                origin=str(entry["origin"]),
                length=int(entry["length"]),
                head=str(entry["head"]),
                offset=int(entry["offset"]),
                seq=int(entry["seq"]),
                time=str(entry["time"]),
            )
        except (KeyError, TypeError, ValueError):
            raise WitnessError(f"entry {entry.get('seq')}: not a trail entry") from None

    def latest_generation(self, public_key: bytes) -> int | None:
        """The highest keyring generation the witness recorded; None if it holds none.

        Every entry's hash and link are checked, and the signature of the entry that
        gives the answer (so opening a keyring stays cheap as its witness grows)."""
        entries = self.entries(public_key, signatures=False)
        found = self._index.generation
        if found is None:
            return None
        generation, number = found
        self._check_signature(
            number,
            entries[number - 1],
            Ed25519PublicKey.from_public_bytes(public_key),
            signing_key_id(public_key),
        )
        return generation

    # ------------------------------------------------------------------ recording

    def retire(self, trail: str | Path, *, reason: str) -> dict[str, Any]:
        """Let the trail path ``trail`` hold a new trail: a signed ``retire`` entry after
        which the heads recorded at that path no longer bind it (the heads of the old
        trail, known by its first record, still bind that trail wherever it is). For a
        trail removed on purpose; the custodian's act, with its reason on the record."""
        if not reason.strip():
            raise WitnessError(f"{trail}: retiring a trail needs a reason")
        public = self.signer.signing_public_key if self.signer is not None else b""
        at_path, _ = self.latest(public, trail, None) if public else (None, None)
        return self.record(
            kind="retire",
            subject=trail,
            origin=at_path.origin if at_path else "",
            length=at_path.length if at_path else 0,
            head=at_path.head if at_path else GENESIS,
            reason=reason.strip(),
        )

    def record(
        self,
        *,
        kind: str,
        subject: str | Path,
        origin: str = "",
        length: int = 0,
        head: str = GENESIS,
        offset: int = 0,
        generation: int | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Append one signed entry, after checking the witness's last entry (its hash,
        its link and its signature under this signer's own key): a witness whose tail
        does not verify is never extended. ``reason`` goes into a ``retire`` entry."""
        if self.signer is None:
            raise WitnessError(f"{self.path}: recording in a witness needs its signing key")
        public = self.signer.signing_public_key
        trusted = Ed25519PublicKey.from_public_bytes(public)
        private_dir(self.path.parent)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                seq, prev = self._verified_tail(handle, trusted, self.signer.signing_key_id)
                entry: dict[str, Any] = {
                    "seq": seq + 1,
                    "prev": prev,
                    "time": utc_now(),
                    "kind": kind,
                    "subject": subject_of(subject),
                    "origin": origin,
                    "length": length,
                    "head": head,
                    "offset": offset,
                    "generation": (
                        generation if generation is not None else self.signer.signing_generation
                    ),
                    "signer": self.signer.signing_key_id,
                }
                if reason is not None:
                    entry["reason"] = reason
                message = _canonical(entry)
                entry["signature"] = self.signer.sign(message).hex()
                entry["hash"] = hashlib.sha256(message).hexdigest()
                handle.write(orjson.dumps(entry) + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        if created:
            fsync_dir(self.path.parent)
        return entry

    def _verified_tail(
        self, handle: Any, trusted: Ed25519PublicKey, trusted_id: str
    ) -> tuple[int, str]:
        """(seq, hash) of the witness's last entry, checked; (0, GENESIS) when empty."""
        end = handle.seek(0, os.SEEK_END)
        if end == 0:
            return 0, GENESIS
        start = max(0, end - (1 << 16))
        while True:
            handle.seek(start)
            tail = handle.read(end - start)
            if not tail.endswith(b"\n"):
                raise WitnessError(
                    f"{self.path}: the last line is incomplete (a write was cut off, or the "
                    "file was edited); nothing recorded"
                )
            lines = tail[:-1].rsplit(b"\n", 1)
            if len(lines) == 2 or start == 0:
                last = lines[-1] + b"\n"
                break
            start = max(0, start - (1 << 16))
        try:
            entry = orjson.loads(last)
            number, prev = int(entry["seq"]), str(entry["prev"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise WitnessError(
                f"{self.path}: the last line is not a witness entry; nothing recorded"
            ) from None
        checked = self._check_line(number, last, prev)
        self._check_signature(number, checked, trusted, trusted_id)
        return number, str(checked["hash"])
