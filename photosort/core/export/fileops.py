"""File operations that never overwrite and never lose a photo.

* **Exclusive placement.** Every file is created exclusively (``os.link``,
  ``os.symlink`` and ``open(..., "xb")`` fail when the name exists); a name that
  was taken since planning gets the next `` (n)`` suffix (:func:`place_exclusive`).
* **Verified copies.** A copy is written to a hidden temporary file in the
  target folder, fsync'd and verified (size and BLAKE2b hash of the bytes read
  from the source) before it gets its real name, and the temporary file is
  removed on failure or cancel (:func:`copy_verified`).
* **Moves keep at least one name.** :func:`relocate` hard-links (or, across
  disks, copies verified) before it removes the source, so the photo exists
  under at least one name at every instant.
* **Photos are recognised by content.** :class:`Content` (size and BLAKE2b
  hash) is what the journal records and what "already there" and undo check;
  sizes are compared first, so a file is hashed only when its size matches.
* **Reads never block.** Files are opened with :func:`open_regular`, which
  refuses FIFOs and devices instead of waiting on them.
* **Leftovers are recognisable.** Temporary files are named
  ``.photosort-<16 hex digits>.partial`` (:func:`is_temp_name`), so a run killed
  mid-copy can be cleaned up by the next one without touching anyone else's files.

Every OSError leaves here as a :class:`FileProblem` tagged with the side it
happened on, which decides whether one photo fails or the whole export stops.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO

from .names import MAX_SUFFIX, numbered_file_name

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_TEMP_PREFIX = ".photosort-"
_TEMP_SUFFIX = ".partial"
_TEMP_NAME = re.compile(r"\.photosort-[0-9a-f]{16}\.partial")
# What a name reserved on a filesystem without hard links holds until the copy replaces it.
PLACEHOLDER = b"photosort: this name is reserved for a photo being copied here; a leftover of an interrupted run\n"
_NONBLOCKING = getattr(os, "O_NONBLOCK", 0)
_BINARY = getattr(os, "O_BINARY", 0)
# link() fails with these when the filesystem cannot hard-link here (other disk, FAT, ...).
_NO_HARDLINK_ERRNOS = frozenset(
    code
    for code in (
        errno.EXDEV,
        errno.EPERM,
        errno.EMLINK,
        errno.ENOSYS,
        getattr(errno, "ENOTSUP", None),
        getattr(errno, "EOPNOTSUPP", None),
    )
    if code is not None
)
DISK_FULL_ERRNOS = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)
_NOT_WRITABLE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


class FileProblem(Exception):
    """An OSError tagged with the side it happened on (source, destination, journal,
    unsafe), which decides whether one photo fails or the whole export stops."""

    def __init__(self, side: str, error: OSError, reason: str | None = None) -> None:
        super().__init__(reason or str(error))
        self.side = side
        self.error = error
        self._reason = reason

    @property
    def fatal(self) -> bool:
        if self.side in ("journal", "unsafe"):
            return True
        code = self.error.errno
        return self.side == "destination" and (code in DISK_FULL_ERRNOS or code in _NOT_WRITABLE_ERRNOS)

    @property
    def reason(self) -> str:
        return self._reason or _describe(self.side, self.error)


def _describe(side: str, error: OSError) -> str:
    code = error.errno
    detail = error.strerror or str(error)
    if side == "source":
        if code == errno.ENOENT:
            return "the photo disappeared during the export (moved or deleted meanwhile)"
        if code in (errno.EACCES, errno.EPERM):
            return "permission denied reading the photo"
        return f"could not read the photo ({detail})"
    if code == errno.ENAMETOOLONG:
        return "the file name is too long for the destination disk"
    if code == errno.EINVAL:
        return "the file name is not allowed on the destination disk"
    return f"could not write the photo ({detail})"


@contextmanager
def blame(side: str) -> Iterator[None]:
    """Tag any raw OSError raised inside with the side it happened on."""
    try:
        yield
    except FileProblem:
        raise
    except OSError as exc:
        raise FileProblem(side, exc) from exc


def discard(path: Path) -> None:
    """Remove a file this module created (temp, placeholder, duplicate name)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("Could not remove %s: %s", path, exc)


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove folders an export created, newest first, only where they are empty now."""
    for folder in reversed(folders):
        with suppress(OSError):
            os.rmdir(folder)


def fsync_dir(folder: Path) -> None:
    """Make a new or removed name durable; best effort (impossible on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def place_exclusive(
    target: Path,
    make: Callable[[Path], None],
    on_retarget: Callable[[Path], None] | None = None,
) -> Path:
    """Create ``target`` with ``make``, which must fail if the name exists; when it
    does, try ``name (2)``, ``name (3)``... so nothing is ever replaced."""
    candidate = target
    for number in range(2, MAX_SUFFIX):
        try:
            make(candidate)
            return candidate
        except FileExistsError:
            candidate = target.with_name(numbered_file_name(target.name, number))
            if on_retarget is not None:
                on_retarget(candidate)
    raise FileProblem("destination", OSError(errno.EEXIST, "too many files with this name"))


def hard_link_exclusive(source: Path, target: Path, on_retarget: Callable[[Path], None] | None = None) -> Path | None:
    """Hard-link ``source`` at ``target`` (or a suffixed name); None when this
    filesystem cannot hard-link here, so the caller falls back."""
    try:
        return place_exclusive(target, lambda c: os.link(source, c), on_retarget)
    except OSError as exc:
        if exc.errno in _NO_HARDLINK_ERRNOS:
            return None
        side = "destination" if os.path.lexists(source) else "source"
        raise FileProblem(side, exc) from exc


def is_temp_name(name: str) -> bool:
    """True only for the temporary files :func:`copy_verified` makes."""
    return _TEMP_NAME.fullmatch(name) is not None


def is_placeholder(path: Path) -> bool:
    """True only for a name reservation :func:`copy_verified` left behind (a kill
    between reserving the name and filling it); read only when the size matches."""
    try:
        if os.lstat(path).st_size != len(PLACEHOLDER):
            return False
        with open_regular(path) as handle:
            return handle.read(len(PLACEHOLDER) + 1) == PLACEHOLDER
    except OSError:
        return False


def open_regular(path: Path) -> IO[bytes]:
    """Open a regular file for reading; a FIFO, socket or device raises instead of
    blocking the run forever (the non-blocking open returns at once, then the type
    is checked on the open descriptor, so it cannot change in between)."""
    fd = os.open(path, os.O_RDONLY | _NONBLOCKING | _BINARY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if _NONBLOCKING:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def hash_file(path: Path) -> bytes:
    digest = hashlib.blake2b()
    with open_regular(path) as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.digest()


@dataclass(frozen=True)
class Content:
    """What a photo is, independent of its name: size and BLAKE2b hash (hex)."""

    size: int
    digest: str

    @classmethod
    def of(cls, path: Path) -> Content:
        """Read ``path`` once; raises OSError when it cannot be read."""
        return cls(os.stat(path).st_size, hash_file(path).hex())

    def is_at(self, path: Path) -> bool:
        """Does the plain file at ``path`` hold exactly this content? The size is
        compared first, so a file of another size is never read; a missing,
        unreadable or non-regular file (link, FIFO, folder) is not the photo."""
        return self.size_matches(path) and _digest_or_none(path) == self.digest

    def size_matches(self, path: Path) -> bool:
        try:
            info = os.lstat(path)
        except OSError:
            return False
        return stat.S_ISREG(info.st_mode) and info.st_size == self.size


def _digest_or_none(path: Path) -> str | None:
    try:
        return hash_file(path).hex()
    except OSError as exc:
        log.warning("Could not read %s to compare it: %s", path, exc)
        return None


class LazyContent:
    """A source photo's :class:`Content`, read only when first needed: most
    comparisons are settled by the size alone."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @cached_property
    def size(self) -> int:
        with blame("source"):
            return os.stat(self.path).st_size

    @cached_property
    def content(self) -> Content:
        with blame("source"):
            return Content(self.size, hash_file(self.path).hex())

    def is_at(self, path: Path) -> bool:
        """Does ``path`` hold this photo's bytes? Hashes the source only when the size matches."""
        return Content(self.size, "").size_matches(path) and self.content.is_at(path)


def copy_verified(
    source: Path,
    target: Path,
    *,
    on_retarget: Callable[[Path], None] | None = None,
    on_temp: Callable[[Path], None] | None = None,
    expect: Content | None = None,
) -> Path:
    """Copy through a fsync'd, verified temp file in the target folder, then give it
    its name exclusively. The temp file never outlives this call (unless the process
    is killed: then the next run removes it, see :func:`is_temp_name`). With
    ``expect``, the bytes read must be that content (what the journal recorded)."""
    temp = target.parent / f"{_TEMP_PREFIX}{secrets.token_hex(8)}{_TEMP_SUFFIX}"
    with ExitStack() as files:
        with blame("source"):
            reader = files.enter_context(open_regular(source))
        if on_temp is not None:
            on_temp(temp)
        with blame("destination"):
            writer = files.enter_context(open(temp, "xb"))
        try:
            size, digest = _write_copy(reader, writer)
            _check_expected(expect, size, digest)
            _verify_copy(temp, size, digest)
            final = _install(temp, target, on_retarget)
        finally:
            writer.close()
            discard(temp)
    _copy_metadata(source, final)
    return final


def _write_copy(reader: IO[bytes], writer: IO[bytes]) -> tuple[int, bytes]:
    """Stream the bytes, hashing what was read; returns (size, digest)."""
    digest = hashlib.blake2b()
    size = 0
    with blame("destination"), writer:
        while True:
            with blame("source"):
                chunk = reader.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    with blame("source"):
        if os.fstat(reader.fileno()).st_size != size:
            raise OSError(errno.EAGAIN, "the photo changed while it was being copied")
    return size, digest.digest()


def _check_expected(expect: Content | None, size: int, digest: bytes) -> None:
    if expect is not None and (expect.size, expect.digest) != (size, digest.hex()):
        raise FileProblem("source", OSError(errno.EAGAIN, "the photo changed while it was being moved"))


def _verify_copy(temp: Path, size: int, digest: bytes) -> None:
    """Read the copy back: a short write or a bad disk must not pass as a photo."""
    with blame("destination"):
        ok = os.stat(temp).st_size == size and hash_file(temp) == digest
    if not ok:
        raise FileProblem(
            "destination",
            OSError(errno.EIO, "verification failed"),
            reason="the copy did not match the original, so it was removed",
        )


def _install(temp: Path, target: Path, on_retarget: Callable[[Path], None] | None) -> Path:
    """Give the verified temp file its final name without ever replacing a file."""
    final = hard_link_exclusive(temp, target, on_retarget)
    if final is not None:
        return final
    with blame("destination"):
        return place_exclusive(target, lambda c: _replace_reserved(temp, c), on_retarget)


def _replace_reserved(temp: Path, candidate: Path) -> None:
    """For filesystems without hard links: reserve the name with an exclusive
    placeholder file, then replace only that placeholder. The placeholder says what
    it is (:data:`PLACEHOLDER`), so one left by a kill is recognised and removed."""
    with open(candidate, "xb") as reservation:
        reservation.write(PLACEHOLDER)
    try:
        os.replace(temp, candidate)
    except OSError:
        discard(candidate)
        raise


def _copy_metadata(source: Path, final: Path) -> None:
    """Keep the photo's dates (and mode); a failure here never fails the export."""
    try:
        shutil.copystat(source, final)
    except OSError as exc:
        log.warning("Could not keep the dates of %s: %s", final, exc)


def link_or_symlink(source: Path, target: Path,
                    on_retarget: Callable[[Path], None] | None = None) -> tuple[Path, str]:
    """Hard link where the filesystem allows, else a symbolic link to the source."""
    final = hard_link_exclusive(source, target, on_retarget)
    if final is not None:
        return final, "hardlink"
    pointee = os.path.abspath(source)
    with blame("destination"):
        return place_exclusive(target, lambda c: os.symlink(pointee, c), on_retarget), "symlink"


def relocate(
    source: Path,
    target: Path,
    *,
    on_retarget: Callable[[Path], None] | None = None,
    on_temp: Callable[[Path], None] | None = None,
    expect: Content | None = None,
) -> tuple[Path, str]:
    """Move one file: link (or verified copy across disks), then remove the source.
    The photo exists under at least one name at every instant."""
    final = hard_link_exclusive(source, target, on_retarget)
    method = "move"
    if final is None:
        final = copy_verified(source, target, on_retarget=on_retarget, on_temp=on_temp, expect=expect)
        method = "copy+delete"
    fsync_dir(final.parent)
    remove_original(source, final)
    return final, method


def remove_original(source: Path, final: Path) -> None:
    """Unlink the source; if that fails, take the new name back so the photo is not
    left twice, but only while the source is still there."""
    try:
        os.unlink(source)
    except FileNotFoundError:
        log.warning("%s vanished before it could be removed; it is at %s", source, final)
    except OSError as exc:
        if os.path.lexists(source):
            discard(final)
        reason = f"could not remove the original ({exc.strerror}); it was left where it was"
        raise FileProblem("source", exc, reason=reason) from exc


def same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def same_photo(a: Path, b: Path, compare_bytes: bool) -> bool:
    """Same inode, or (for cross-disk copies) same size and hash."""
    if same_file(a, b):
        return True
    if not compare_bytes:
        return False
    try:
        return os.stat(a).st_size == os.stat(b).st_size and hash_file(a) == hash_file(b)
    except OSError:
        return False
