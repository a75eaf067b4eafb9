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

Every OSError leaves here as a :class:`FileProblem` tagged with the side it
happened on, which decides whether one photo fails or the whole export stops.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

from .names import MAX_SUFFIX, numbered_file_name

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_TEMP_PREFIX = ".photosort-"
_TEMP_SUFFIX = ".partial"
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


def hash_file(path: Path) -> bytes:
    digest = hashlib.blake2b()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.digest()


def copy_verified(
    source: Path,
    target: Path,
    *,
    on_retarget: Callable[[Path], None] | None = None,
    on_temp: Callable[[Path], None] | None = None,
) -> Path:
    """Copy through a fsync'd, verified temp file in the target folder, then give it
    its name exclusively. The temp file never outlives this call."""
    temp = target.parent / f"{_TEMP_PREFIX}{secrets.token_hex(8)}{_TEMP_SUFFIX}"
    with ExitStack() as files:
        with blame("source"):
            reader = files.enter_context(open(source, "rb"))
        if on_temp is not None:
            on_temp(temp)
        with blame("destination"):
            writer = files.enter_context(open(temp, "xb"))
        try:
            size, digest = _write_copy(reader, writer)
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
    """For filesystems without hard links: reserve the name with an exclusive empty
    file, then replace only that placeholder."""
    with open(candidate, "xb"):
        pass
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


def link_or_symlink(source: Path, target: Path) -> tuple[Path, str]:
    """Hard link where the filesystem allows, else a symbolic link to the source."""
    final = hard_link_exclusive(source, target)
    if final is not None:
        return final, "hardlink"
    pointee = os.path.abspath(source)
    with blame("destination"):
        return place_exclusive(target, lambda c: os.symlink(pointee, c)), "symlink"


def relocate(
    source: Path,
    target: Path,
    *,
    on_retarget: Callable[[Path], None] | None = None,
    on_temp: Callable[[Path], None] | None = None,
) -> tuple[Path, str]:
    """Move one file: link (or verified copy across disks), then remove the source.
    The photo exists under at least one name at every instant."""
    final = hard_link_exclusive(source, target, on_retarget)
    method = "move"
    if final is None:
        final = copy_verified(source, target, on_retarget=on_retarget, on_temp=on_temp)
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
