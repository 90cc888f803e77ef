"""Figure: sealing and unsealing throughput (MiB/s) of a 512 MiB file, and peak memory.

privpipe's figures are what `privpipe encrypt` and `decrypt` do: seal_file taking the
plaintext's keyed digest (HMAC-SHA256) and the sealed file's SHA-256 in the same pass,
writing to a temporary name, fsync, rename; unseal_file taking the sealed file's SHA-256.
Anchor: a plain loop of ``cryptography``'s AESGCM over 1 MiB segments of the same file
(read a segment, encrypt or decrypt it, write it, fsync at the end), in the same run.
Peak traced memory is printed for a file 8x smaller too: it should not grow with the file.
Usage: python benchmarks/seal_throughput.py [--mib N]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import tempfile
import tracemalloc
from pathlib import Path

from _common import bench_keyring, interleaved, report
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from privacy.crypto import Keyring, SealedWriter, open_sealed, seal_file, unseal_file

SEGMENT = 1 << 20


def anchor_encrypt(source: Path, target: Path, key: bytes) -> None:
    aead = AESGCM(key)
    with source.open("rb") as src, target.open("wb") as dst:
        index = 0
        while block := src.read(SEGMENT):
            dst.write(aead.encrypt(index.to_bytes(12, "big"), block, None))
            index += 1
        dst.flush()
        os.fsync(dst.fileno())


def anchor_decrypt(source: Path, target: Path, key: bytes) -> None:
    aead = AESGCM(key)
    with source.open("rb") as src, target.open("wb") as dst:
        index = 0
        while block := src.read(SEGMENT + 16):
            dst.write(aead.decrypt(index.to_bytes(12, "big"), block, None))
            index += 1
        dst.flush()
        os.fsync(dst.fileno())


def encrypt_like(source: Path, target: Path, ring: Keyring) -> None:
    """What `privpipe encrypt` does: seal, with both digests taken while streaming."""
    mac = hmac.new(b"k" * 32, digestmod=hashlib.sha256)
    seal_file(source, target, ring, plain=[mac], sealed=[hashlib.sha256()])


def decrypt_like(source: Path, target: Path, ring: Keyring) -> None:
    """What `privpipe decrypt` does: unseal, hashing the sealed file while reading it."""
    unseal_file(source, target, ring, sealed=[hashlib.sha256()])


def seal_core(source: Path, target: Path, ring: Keyring) -> None:
    """seal_file's streaming path alone: no temporary name, no fsync, no rename."""
    with source.open("rb") as src, target.open("wb") as sink:
        SealedWriter(sink, ring).copy_from(src)


def unseal_core(source: Path, target: Path, ring: Keyring) -> None:
    """unseal_file's streaming path alone: no temporary name, no fsync, no rename."""
    with source.open("rb") as src, target.open("wb") as sink:
        for block in open_sealed(src, ring):
            sink.write(block)


def peak_mib(fn: object) -> float:
    tracemalloc.start()
    fn()  # type: ignore[operator]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / (1 << 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ring = bench_keyring(root)
        plain = root / "plain.bin"
        with plain.open("wb") as handle:
            for _ in range(args.mib):
                handle.write(os.urandom(SEGMENT))
        key = AESGCM.generate_key(bit_length=256)
        size = args.mib

        t = interleaved(
            3,
            {
                "seal": lambda: encrypt_like(plain, root / "s.sealed", ring),
                "seal_core": lambda: seal_core(plain, root / "c.sealed", ring),
                "anchor_seal": lambda: anchor_encrypt(plain, root / "a.bin", key),
                "unseal": lambda: decrypt_like(root / "s.sealed", root / "back.bin", ring),
                "unseal_core": lambda: unseal_core(root / "s.sealed", root / "u.bin", ring),
                "anchor_unseal": lambda: anchor_decrypt(root / "a.bin", root / "a.back", key),
            },
        )
        seal, core, a_seal = t["seal"], t["seal_core"], t["anchor_seal"]
        unseal, unseal_only, a_unseal = t["unseal"], t["unseal_core"], t["anchor_unseal"]
        assert (root / "back.bin").read_bytes() == plain.read_bytes()

        small = root / "small.bin"
        small.write_bytes(plain.read_bytes()[: (size // 8) << 20])
        peak_small = peak_mib(lambda: seal_file(small, root / "small.sealed", ring))
        peak_large = peak_mib(lambda: seal_file(plain, root / "s2.sealed", ring))
        peak_unseal = peak_mib(lambda: unseal_file(root / "s2.sealed", root / "b2.bin", ring))

    anchor = "AESGCM loop, 1 MiB, fsync"
    report(
        f"seal, both digests (as encrypt): {size} MiB", size / seal, size / a_seal, "MiB/s", anchor
    )
    print(
        f"  (the streaming path alone, no digest, temporary, fsync or rename: "
        f"{size / core:,.0f} MiB/s, {a_seal / core:.2f} x anchor)"
    )
    report(
        f"unseal, SHA-256 (as decrypt): {size} MiB", size / unseal, size / a_unseal, "MiB/s", anchor
    )
    print(
        f"  (the streaming path alone: {size / unseal_only:,.0f} MiB/s, "
        f"{a_unseal / unseal_only:.2f} x anchor)"
    )
    print(
        f"peak traced memory: seal {size // 8} MiB {peak_small:.1f} MiB, seal {size} MiB "
        f"{peak_large:.1f} MiB, unseal {size} MiB {peak_unseal:.1f} MiB"
    )


if __name__ == "__main__":
    main()
