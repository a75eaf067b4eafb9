"""Find the photos in a folder tree, the way a person would expect.

Recursive, case-insensitive extensions, hidden files and OS litter skipped.
A photo reached through a symlink is listed once, by its real path; symlinked
folders are followed only while they stay inside the root, and a folder seen
twice (a loop) is not entered again, so a scan always ends. The copies photosort's
own export made below the root (listed in each destination's ``.photosort-export``,
see :mod:`photosort.core.export.marker`) are left out, so exporting into the library
does not make them count as new photos; photos a move put there are the originals
and stay. The list in the folder asked for itself is not applied: that folder was chosen.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import Cancelled, FolderError
from .export.marker import MARKER_NAME, exported_copies
from .paths import is_name_too_long
from .progress import CancelToken, is_cancelled
from .raw import RAW_EXTENSIONS

log = logging.getLogger(__name__)

PHOTO_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".mpo", ".png", ".apng", ".webp", ".tif", ".tiff", ".bmp", ".dib", ".gif",
    ".heic", ".heif", ".avif", ".jp2", ".j2k", ".jpx", ".jpf", ".psd", ".tga", ".pcx", ".qoi",
    ".ppm", ".pgm", ".pbm", ".pnm",
}) | RAW_EXTENSIONS  # camera RAWs: read through LibRaw (photosort[raw]), see core/raw.py
OS_LITTER = frozenset({".ds_store", "thumbs.db", "desktop.ini", "@eadir", ".thumbnails", "$recycle.bin", "lost+found"})


@dataclass(frozen=True)
class ScannedFile:
    """A photo on disk: its real absolute path and what tells us whether it changed."""

    path: str
    size: int
    mtime_ns: int


def is_photo_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in PHOTO_EXTENSIONS


def _skipped(name: str) -> bool:
    """Hidden entries, AppleDouble ``._x`` files and known OS litter are never photos."""
    return name.startswith(".") or name.lower() in OS_LITTER


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def resolve_root(folder: str | os.PathLike[str]) -> str:
    """The real absolute path of a folder to index, or a FolderError saying why not."""
    path = Path(folder).expanduser()
    if not path.exists():
        raise FolderError(f"Folder not found: {path}. Check the path (is the drive connected?).")
    if not path.is_dir():
        raise FolderError(f"Not a folder: {path}. Give the folder that holds your photos.")
    if not os.access(path, os.R_OK | os.X_OK):
        raise FolderError(f"Cannot read the folder {path}: permission denied.")
    return os.path.realpath(path)


def scan_folder(folder: str | os.PathLike[str], cancel: CancelToken | None = None,
                ignored: list[str] | None = None, exports: list[str] | None = None) -> list[ScannedFile]:
    """All photos under ``folder``, sorted by path. Raises Cancelled once ``cancel`` is set.

    Other visible files (videos, sidecars, documents) are appended to ``ignored`` when given;
    the export destinations whose copies were left out (see the module docstring) to ``exports``.
    """
    root = resolve_root(folder)
    found: dict[str, ScannedFile] = {}
    for entry_path, stat in _walk(root, cancel, ignored, exports):
        found.setdefault(entry_path, ScannedFile(entry_path, stat.st_size, stat.st_mtime_ns))
    return sorted(found.values(), key=lambda f: f.path)


def _walk(root: str, cancel: CancelToken | None, ignored: list[str] | None,
          exports: list[str] | None = None) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (real path, stat) of every photo file, depth first, with loop protection."""
    seen_dirs: set[tuple[int, int]] = set()
    copies: set[str] = set()
    stack = [root]
    while stack:
        if is_cancelled(cancel):
            raise Cancelled()
        folder = stack.pop()
        try:
            st = os.stat(folder)
        except OSError as exc:
            if is_name_too_long(exc):  # its photos are listed, to be reported: the OS cannot open them by path
                yield from ((path, TOO_LONG) for path in _photos_under_too_long(folder))
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            log.warning("cannot list %s: %s", folder, exc)
            continue
        if folder != root:
            _leave_out_copies(folder, entries, copies, exports)
        for entry in entries:
            if _skipped(entry.name) or entry.path in copies:
                continue
            yield from _visit(entry, root, stack, ignored)


def _leave_out_copies(folder: str, entries: list[os.DirEntry[str]], copies: set[str],
                      exports: list[str] | None) -> None:
    """A folder photosort exported copies into lists them: leave them out, and say so once."""
    if not any(entry.name == MARKER_NAME for entry in entries):
        return
    listed = exported_copies(folder)
    if not listed:
        return
    copies |= listed
    log.warning("not indexing the %d copies photosort exported into %s (listed in its %s; delete that file to "
                "index them)", len(listed), folder, MARKER_NAME)
    if exports is not None:
        exports.append(folder)


def _visit(entry: os.DirEntry[str], root: str, stack: list[str],
           ignored: list[str] | None) -> Iterator[tuple[str, os.stat_result]]:
    try:
        if entry.is_symlink():
            real = os.path.realpath(entry.path)
            if not _inside(real, root):
                log.debug("not following %s: it points outside %s", entry.path, root)
                return
            if os.path.isdir(real):
                stack.append(real)
            elif os.path.isfile(real) and is_photo_name(real):
                yield real, os.stat(real)
        elif entry.is_dir(follow_symlinks=False):
            stack.append(entry.path)
        elif entry.is_file(follow_symlinks=False):
            if is_photo_name(entry.name):
                yield entry.path, entry.stat(follow_symlinks=False)
            elif ignored is not None:
                ignored.append(entry.path)
    except OSError as exc:
        if is_name_too_long(exc) and is_photo_name(entry.name):
            yield entry.path, TOO_LONG  # reported as a failure ("name too long"), not silently left out
        else:
            log.warning("skipping %s: %s", entry.path, exc)


TOO_LONG = os.stat_result((0,) * 10, {"st_mtime_ns": 0})  # what a photo whose path is too long is listed with


def _photos_under_too_long(folder: str) -> Iterator[str]:
    """The photos under a folder whose path is longer than the OS takes, listed through folder handles.

    Nothing there can be opened by its path, so they are listed only to be
    reported, each with its reason, instead of vanishing from the library.
    """
    if not (os.scandir in os.supports_fd and os.open in os.supports_dir_fd):
        log.warning("cannot list %s: its path is too long for this system", folder)
        return
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            entries = _list_by_parts(current)
        except OSError as exc:
            log.warning("cannot list %s: %s", current, exc)
            continue
        for name, is_dir in entries:
            if not _skipped(name):
                if is_dir:
                    stack.append(os.path.join(current, name))
                elif is_photo_name(name):
                    yield os.path.join(current, name)


def _list_by_parts(folder: str) -> list[tuple[str, bool]]:
    """(name, is a real folder) of each file in ``folder``, opened one name at a time from the top."""
    fd = os.open(os.sep, os.O_RDONLY)
    try:
        for part in folder.split(os.sep):
            if part:
                parent, fd = fd, os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                os.close(parent)
        with os.scandir(fd) as it:
            return [(e.name, e.is_dir(follow_symlinks=False)) for e in it
                    if e.is_dir(follow_symlinks=False) or e.is_file(follow_symlinks=False)]
    finally:
        os.close(fd)
