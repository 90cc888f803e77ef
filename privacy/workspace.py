"""A run's private folder for intermediate files, every one of them sealed.

Stages hand each other paths, not frames, so an orchestrator (Prefect) only ever sees a
path. Frames are serialized to Parquet in memory and sealed on the way to disk; reading
one back unseals in memory. The folder is created 0700 and removed when the run ends,
whatever the outcome. A symbolic link in place of the folder is refused
(:class:`~privacy.errors.OutputError`): the intermediates are never written where a
writer of its parent pointed them.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, cast

import polars as pl

from privacy._atomic import FOLDER_MODE, atomic_path, private_dir
from privacy._tee import HashingWriter
from privacy.crypto import KeyEncryptionProvider, SealedWriter, unseal_bytes

__all__ = ["Workspace"]


class Workspace:
    """Holds a run's intermediate frames as sealed files; use as a context manager."""

    def __init__(
        self, keys: KeyEncryptionProvider, root: str | Path | None = None, *, run_id: str = ""
    ) -> None:
        self.keys = keys
        self.root = Path(root) if root is not None else None
        self.run_id = run_id

    def __enter__(self) -> Workspace:
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="privpipe-work-"))
        private_dir(self.root, root=self.root.parent)  # a link in its place is refused
        os.chmod(self.root, FOLDER_MODE)  # the run's own folder, even where it existed
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
        return self.root_path(f"{name}.parquet.sealed")

    def _associated(self, name: str) -> dict[str, str]:
        return {"artifact": f"intermediate/{name}", "run_id": self.run_id}

    def save(self, name: str, frame: pl.DataFrame, *, digest: Any = None) -> Path:
        """Seal an intermediate frame to disk; returns its path. ``digest`` (a hash
        object) is fed the sealed file's bytes as they are written."""
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="lz4")
        final = self.path(name)
        with atomic_path(final, root=final.parent.parent) as tmp, tmp.open("wb") as out:
            sink = cast(BinaryIO, HashingWriter(out, [digest] if digest is not None else []))
            with SealedWriter(sink, self.keys, self._associated(name)) as writer:
                writer.write(buffer.getbuffer())
        return final

    def load(self, path: str | Path) -> pl.DataFrame:
        """Unseal an intermediate in memory, checking it is the artifact of this run."""
        return self.scan(path).collect()

    def scan(self, path: str | Path) -> pl.LazyFrame:
        """An intermediate as a lazy frame over its unsealed (still compressed) Parquet
        bytes: partitions scanned one after another never sit in memory all at once."""
        path = Path(path)
        name = path.name.removesuffix(".parquet.sealed")
        plain = unseal_bytes(path, self.keys, expected=self._associated(name))
        return pl.scan_parquet(io.BytesIO(plain))

    def save_json(self, name: str, value: object, *, digest: Any = None) -> Path:
        """Seal a JSON document (a plan that holds values of the data) to disk;
        ``digest`` as for :meth:`save`."""
        final = self.root_path(f"{name}.json.sealed")
        with atomic_path(final, root=final.parent.parent) as tmp, tmp.open("wb") as out:
            sink = cast(BinaryIO, HashingWriter(out, [digest] if digest is not None else []))
            with SealedWriter(sink, self.keys, self._associated(name)) as writer:
                writer.write(json.dumps(value).encode())
        return final

    def load_json(self, path: str | Path) -> Any:
        path = Path(path)
        name = path.name.removesuffix(".json.sealed")
        return json.loads(unseal_bytes(path, self.keys, expected=self._associated(name)))

    def root_path(self, file_name: str) -> Path:
        if self.root is None:
            raise RuntimeError("workspace is not open")
        return self.root / file_name
