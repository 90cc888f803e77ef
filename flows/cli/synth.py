"""privpipe synth: synthetic raw personal data, shaped like UCI Adult."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import (
    app,
    echo_err,
    keyring_option,
    open_keyring,
)


@app.command()
def synth(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output file: .csv, .parquet or .jsonl.")
    ],
    rows: Annotated[int, typer.Option("--rows", "-n", min=1, help="Number of people.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same file.")] = 0,
    keyring: Annotated[Path | None, keyring_option("Seal a .sealed output.")] = None,
) -> None:
    """Make synthetic raw personal data shaped like UCI Adult (deterministic per seed).

    Name the output ``people.csv.sealed`` (with --keyring) to seal it at rest."""
    from privacy.io import SEALED_SUFFIX, detect_format, plain_name, write_frame
    from privacy.synth import synthesize

    detect_format(plain_name(out))
    ring = None
    if out.suffix == SEALED_SUFFIX:
        if keyring is None:
            from privacy.errors import KeyAccessError

            raise KeyAccessError(f"{out}: writing a sealed file needs --keyring")
        ring = open_keyring(keyring)
    started = time.perf_counter()
    frame = synthesize(rows, seed)
    write_frame(frame, out, keys=ring, associated_data={"artifact": "synthetic"})
    echo_err(f"wrote {rows:,} rows to {out} in {time.perf_counter() - started:.1f} s")
