"""Private, atomic files: folders created 0700, files written 0600 beside the target,
fsynced, renamed over it, then the folder fsynced (the rename itself is only durable
once the folder entry is: without that, a power cut can undo a write that returned).

Everything privpipe writes goes through these two helpers, so its modes hold whatever
the process umask is (the CLI also sets a 077 umask, for what other libraries write).
Kept free of heavy imports so the key and crypto commands stay fast.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["FILE_MODE", "FOLDER_MODE", "atomic_path", "fsync_dir", "private_dir"]

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_dir(path: str | Path, *, exist_ok: bool = True) -> Path:
    """Create the folder ``path`` and any missing parents, each mode 0700 whatever the
    umask; returns ``path``.

    A folder that already exists keeps its mode (it is the user's, or an earlier
    run's). ``exist_ok=False`` makes creating ``path`` itself a claim: FileExistsError
    when it is there already. A file in its place raises FileExistsError, as
    ``Path.mkdir`` does.
    """
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    if not exist_ok and path not in missing:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            if folder == path and not exist_ok:
                raise
            continue  # made meanwhile by someone else: theirs, mode left alone
        os.chmod(folder, FOLDER_MODE)  # mkdir's mode is masked by the umask
    path.mkdir(exist_ok=True)  # raises FileExistsError if a file stands there
    return path


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path (mode 0600) beside ``final``; rename it over ``final`` on
    success, so ``final`` ends up 0600 too, and fsync the folder so the rename survives
    a crash. Missing folders are created 0700.

    On any exception the temporary file is removed and ``final`` is left as it was.
    """
    private_dir(final.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    tmp = Path(tmp_name)
    try:
        try:
            os.fchmod(fd, FILE_MODE)  # mkstemp asks for 0600, but the umask may take bits off
        finally:
            os.close(fd)
        yield tmp
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(final.parent)


def fsync_dir(folder: Path) -> None:
    """Make the entries of ``folder`` durable (after a rename, create or unlink in it).

    POSIX only: elsewhere a folder cannot be opened for fsync, and NTFS journals the
    rename itself. A filesystem that cannot fsync a folder (EINVAL) has nothing more
    to flush."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)
