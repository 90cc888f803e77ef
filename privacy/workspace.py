"""A run's private folder for intermediate files.

Stages hand each other paths, not frames, so an orchestrator (Prefect) only ever sees a
path. The folder is created 0700 outside the output folder and removed when the run
ends, whatever the outcome.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

import polars as pl

from privacy.io import atomic_path

__all__ = ["Workspace"]


class Workspace:
    """Holds a run's intermediate frames as files; use as a context manager."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else None

    def __enter__(self) -> Workspace:
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="privpipe-work-"))
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def path(self, name: str) -> Path:
        if self.root is None:
            raise RuntimeError("workspace is not open")
        return self.root / f"{name}.parquet"

    def save(self, name: str, frame: pl.DataFrame) -> Path:
        """Write an intermediate frame; returns its path."""
        final = self.path(name)
        with atomic_path(final) as tmp:
            frame.write_parquet(tmp, compression="lz4")
        os.chmod(final, 0o600)
        return final

    @staticmethod
    def load(path: str | Path) -> pl.DataFrame:
        return pl.read_parquet(path)
