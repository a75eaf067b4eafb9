"""XMP sidecar files: which one belongs to a photo, and how one is read and replaced without harm.

Naming. darktable reads and writes ``IMG_1.JPG.xmp`` (the photo's whole name
plus ``.xmp``), and so does digiKam by default; Lightroom (and digiKam with
"commercial programs" naming) uses ``IMG_1.xmp``. photosort writes into every
sidecar of either name that already exists (so each app finds the keywords in
the file it reads), and creates ``IMG_1.JPG.xmp`` when there is none: the one
name that never belongs to two photos (``IMG_1.JPG`` and ``IMG_1.CR2`` would
share ``IMG_1.xmp``). For the same reason ``IMG_1.xmp`` is used only when no
other file in the folder has the stem ``IMG_1``; else it belongs to that file
(a raw beside its JPEG) and is left alone. An upper-case ``.XMP`` counts too.

Writing. A sidecar is never written in place: the new bytes go to a temporary
file in the same folder (``.photosort-<16 hex>.partial``, the export's
recognisable temporary name), flushed to disk, and take the sidecar's name in
one rename. Just before that rename the sidecar is read again; when it is no
longer what photosort read (another program saved it meanwhile), nothing is
replaced (:class:`SidecarChanged`). A new sidecar is created exclusively
(a hard link, which fails when the name exists), so one made meanwhile by
another program is never replaced either. A symbolic link, a folder or a FIFO
under a sidecar's name is never followed, read or written.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets
import stat
from contextlib import suppress
from pathlib import Path

from .errors import SidecarError
from .export.fileops import discard, fsync_dir
from .sidecar_names import (  # the naming rule; tagging imports it from here
    Listings,
    existing_sidecars,
    full_name,
    sidecars_beside,
)
from .xmp import MAX_PACKET_BYTES

log = logging.getLogger(__name__)

_NO_HARDLINK = frozenset(c for c in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOSYS,
                                     getattr(errno, "ENOTSUP", None), getattr(errno, "EOPNOTSUPP", None)) if c)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_BINARY = getattr(os, "O_BINARY", 0)


class SidecarChanged(Exception):
    """The sidecar is no longer what photosort read: another program wrote it; it was left as it is."""


def digest(data: bytes | None) -> str | None:
    """What a sidecar's bytes are (BLAKE2b hex); None for no sidecar at all."""
    return None if data is None else hashlib.blake2b(data).hexdigest()


# ---- naming (the rule itself is photosort.core.sidecar_names, shared with the export) ----------------
def sidecars_to_write(photo: str, folder: str, listings: Listings) -> list[str]:
    """Where photosort's keywords for ``photo`` go: every existing sidecar, else a new ``IMG_1.JPG.xmp``."""
    return existing_sidecars(photo, folder, listings) or [os.path.join(folder, full_name(os.path.basename(photo)))]


def sidecars_to_read(photo: str, listings: Listings) -> list[str]:
    """Every sidecar beside ``photo`` that may hold its keywords (``IMG_1.xmp`` even when a raw shares it:
    keywords describe what the photo shows, which a raw and its JPEG share)."""
    return sidecars_beside(photo, listings)


# ---- reading -------------------------------------------------------------------------------------
def read_sidecar(path: str) -> bytes | None:
    """A sidecar's bytes, or None when there is none; :class:`SidecarError` for anything else under its name."""
    if not _NOFOLLOW and os.path.islink(path):  # no O_NOFOLLOW (Windows): ask first
        raise SidecarError("it is a symbolic link; photosort never follows one")
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _BINARY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):
            raise SidecarError("it is a symbolic link; photosort never follows one") from None
        raise SidecarError(f"it cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SidecarError("it is not a plain file")
        if info.st_size > MAX_PACKET_BYTES:
            raise SidecarError(f"it is too large for XMP ({info.st_size // 1_000_000} MB)")
        if _NONBLOCK:
            os.set_blocking(fd, True)
        return handle.read(MAX_PACKET_BYTES + 1)


# ---- writing -------------------------------------------------------------------------------------
def replace_sidecar(path: str, data: bytes | None, expect: str | None) -> None:
    """Make the sidecar hold ``data`` (None: remove it), only if it still is what ``expect`` says.

    ``expect`` is :func:`digest` of the bytes photosort read (None: there was no
    sidecar). Raises :class:`SidecarChanged` when it is not, OSError when the
    folder cannot be written.
    """
    if data is None:
        _remove(path, expect)
        return
    folder = os.path.dirname(path) or "."
    temp = os.path.join(folder, f".photosort-{secrets.token_hex(8)}.partial")
    try:
        _write_temp(temp, data, _mode_of(path))
        _check_unchanged(path, expect)
        if expect is None:
            _create(temp, path)
        else:
            os.replace(temp, path)
        fsync_dir(Path(folder))
    finally:
        discard(Path(temp))


def _write_temp(temp: str, data: bytes, mode: int | None) -> None:
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    if mode is not None:
        with suppress(OSError):
            os.chmod(temp, mode)  # the sidecar keeps its permissions


def _mode_of(path: str) -> int | None:
    try:
        return stat.S_IMODE(os.lstat(path).st_mode)
    except OSError:
        return None


def _check_unchanged(path: str, expect: str | None) -> None:
    try:
        current = read_sidecar(path)
    except SidecarError as exc:
        raise SidecarChanged(str(exc)) from None
    if digest(current) != expect:
        raise SidecarChanged("it was changed by another program since photosort read it")


def _create(temp: str, path: str) -> None:
    """Give a new sidecar its name without ever replacing a file that took the name meanwhile."""
    try:
        os.link(temp, path)
        return
    except FileExistsError:
        raise SidecarChanged("another program created it meanwhile") from None
    except OSError as exc:
        if exc.errno not in _NO_HARDLINK:
            raise
    # No hard links here (FAT, some network shares): reserve the name exclusively, then fill it in one rename.
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o666))
    except FileExistsError:
        raise SidecarChanged("another program created it meanwhile") from None
    os.replace(temp, path)


def _remove(path: str, expect: str | None) -> None:
    """Remove a sidecar photosort created (undo), only while it holds exactly what photosort wrote."""
    _check_unchanged(path, expect)
    with suppress(FileNotFoundError):
        os.unlink(path)
    fsync_dir(Path(os.path.dirname(path) or "."))


def missing_folders(folder: str) -> list[str]:
    """``folder`` and those of its parents that do not exist yet, outermost first (for ``--into``)."""
    missing = []
    current = os.path.abspath(folder)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return missing[::-1]


def make_folder(path: str) -> None:
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
