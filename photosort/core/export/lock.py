"""One export at a time per data folder: the lock that keeps two runs from moving the same photos.

Two exports of one library running together would both "move" the same photos
(and two undos would put them back twice), so every export, finish and undo
holds :func:`export_lock` on ``export.lock`` in the journal folder for as long
as it runs. The lock is the operating system's (``flock`` on POSIX,
``msvcrt.locking`` on Windows): it belongs to the open file, so it dies with
the process — a killed photosort never leaves a stale lock behind. A second
run does not wait: it is refused at once with :class:`ExportBusyError`, whose
one line tells the user to try again when the other has finished.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from photosort.core.errors import ExportBusyError, ExportError

log = logging.getLogger(__name__)

LOCK_NAME = "export.lock"
_BUSY_ERRNOS = frozenset({errno.EAGAIN, errno.EACCES, getattr(errno, "EWOULDBLOCK", errno.EAGAIN), errno.EDEADLK})

try:  # POSIX
    import fcntl

    def _try_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # Windows
    import msvcrt

    def _try_lock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]


@contextmanager
def export_lock(folder: Path, *, create: bool = True) -> Iterator[None]:
    """Hold the export lock of the data folder whose journals live in ``folder``
    (created if needed when ``create``; an undo only uses the folder its journal is in).

    Raises :class:`ExportBusyError` when another export, finish or undo holds it,
    and :class:`ExportError` (nothing was changed) when the folder cannot be
    written — a full disk, a read-only folder, a file in its place.
    """
    fd = _open_lock_file(folder, create)
    try:
        _acquire(fd, folder)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


def _open_lock_file(folder: Path, create: bool) -> int:
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        return os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
    except OSError as exc:
        raise ExportError(
            f"Cannot use photosort's journal folder {folder} ({exc.strerror or exc}): free some space or check "
            "that folder's permissions; nothing was exported, moved or put back."
        ) from exc


def _acquire(fd: int, folder: Path) -> None:
    try:
        _try_lock(fd)
    except OSError as exc:
        if exc.errno not in _BUSY_ERRNOS:
            raise ExportError(f"Cannot lock {folder / LOCK_NAME} ({exc.strerror or exc}); nothing was changed.") from exc
        log.warning("Another export holds %s", folder / LOCK_NAME)
        raise ExportBusyError(
            "Another photosort export, finish or undo is running on this library: try again when it has "
            "finished; nothing was changed."
        ) from exc
