"""Private, atomic files: folders created 0700, files written 0600 beside the target,
fsynced, renamed over it, then the folder fsynced (the rename itself is only durable
once the folder entry is: without that, a power cut can undo a write that returned).

Everything privpipe writes goes through these two helpers, so its modes hold whatever
the process umask is (the CLI also sets a 077 umask, for what other libraries write).
Kept free of heavy imports so the key and crypto commands stay fast.

No link is followed under an output folder. Whoever can write a run's folder could
otherwise plant ``vault -> /elsewhere`` and have the sealed raw copy written where they
chose, or a ``.lock`` link that truncates someone else's file. So:

- :func:`atomic_path` never writes in place of a link: ``final`` itself a symbolic link
  is refused (the rename would replace it, silently), whoever calls.
- Given ``root`` (the output folder), :func:`atomic_path` and :func:`private_dir`
  refuse a link at any folder between ``root`` and the file (:func:`refuse_links`),
  before writing and again just before the rename. ``root`` itself is followed: the
  user named it, and it may be their link (``/tmp`` on macOS). A link *above* a root is
  the user's too; only what lies below it is the run's.
- :func:`open_lock` opens a lock file with ``O_NOFOLLOW``.

Each refusal is an :class:`~privacy.errors.OutputError`, one line naming the link.
Left open: a link swapped in between the check and the write (a race the writer of the
folder would have to win during the run) is not caught; the checks narrow it to the
moment around each write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from privacy.errors import OutputError

__all__ = [
    "FILE_MODE",
    "FOLDER_MODE",
    "atomic_path",
    "fsync_dir",
    "open_lock",
    "private_dir",
    "refuse_link",
    "refuse_links",
]

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def _link_refused(path: Path, root: Path | None) -> OutputError:
    where = f"under the output folder {root}" if root is not None else "in place of a file"
    return OutputError(f"{path}: is a symbolic link; privpipe follows no link {where}")


def refuse_link(path: str | Path) -> None:
    """Raise :class:`OutputError` if ``path`` itself is a symbolic link (``lstat``; a
    missing path passes)."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise _link_refused(path, None)


def refuse_links(root: str | Path, path: str | Path) -> None:
    """Raise :class:`OutputError` naming the first symbolic link among the components
    of ``path`` below ``root``, ``path`` included (``lstat``, from ``root`` down; the
    walk stops at the first component that does not exist yet). ``root`` itself is
    not checked: the user named it. ``path`` must lie under ``root`` as written."""
    root, path = Path(root), Path(path)
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        raise OutputError(f"{path}: is not under the output folder {root}") from None
    probe = root
    for part in parts:
        if part == "..":
            raise OutputError(f"{path}: leaves the output folder {root}")
        probe = probe / part
        try:
            mode = os.lstat(probe).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISLNK(mode):
            raise _link_refused(probe, root)


def open_lock(path: str | Path) -> int:
    """Open (creating, 0600) the lock file ``path`` for ``flock``; returns the
    descriptor. A symbolic link in its place is refused (``O_NOFOLLOW``): opening it
    would create or lock a file the link's writer chose."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise _link_refused(path, None) from None
        raise
    return fd


def private_dir(path: str | Path, *, exist_ok: bool = True, root: str | Path | None = None) -> Path:
    """Create the folder ``path`` and any missing parents, each mode 0700 whatever the
    umask; returns ``path``.

    A folder that already exists keeps its mode (it is the user's, or an earlier
    run's). ``exist_ok=False`` makes creating ``path`` itself a claim: FileExistsError
    when it is there already. A file in its place raises FileExistsError, as
    ``Path.mkdir`` does. With ``root`` (an output folder ``path`` lies under), a
    symbolic link at ``path`` or at any folder between them is refused
    (:func:`refuse_links`), before and after the folders are made.
    """
    path = Path(path)
    if root is not None:
        refuse_links(root, path)
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
    if root is not None:
        refuse_links(root, path)
    return path


@contextlib.contextmanager
def atomic_path(final: Path, *, root: str | Path | None = None) -> Iterator[Path]:
    """Yield a temporary path (mode 0600) beside ``final``; rename it over ``final`` on
    success, so ``final`` ends up 0600 too, and fsync the folder so the rename survives
    a crash. Missing folders are created 0700.

    ``final`` a symbolic link is refused (:class:`OutputError`), and with ``root`` (the
    output folder ``final`` lies under) so is a link at any folder between them,
    checked before the temporary file is made and again before the rename.

    On any exception the temporary file is removed and ``final`` is left as it was.
    """
    final = Path(final)

    def check() -> None:
        if root is not None:
            refuse_links(root, final)
        else:
            refuse_link(final)

    check()
    private_dir(final.parent, root=root)
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
        check()
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
