"""The one exception hierarchy of the engine, and the one mapping from an exception to the user.

Every failure a user can meet is a :class:`PhotosortError` whose message says
what went wrong *and* what to do about it, in one line. Errors are raised as
such at the boundary where they happen: SQLite errors are translated where the
databases are used (:func:`database_error`), OS errors where files are written
(:func:`os_error`). :func:`user_message` is the only place that turns any
exception into what a person reads and the action offered with it; the CLI
prints its text as one line and exits 1, the window shows it in a bar or
dialog with a button for its action. Cancelling is not an error: it is
:class:`Cancelled`, which deliberately does not derive from PhotosortError.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from .paths import printable


class Action(Enum):
    """What the window offers beside a message (the CLI's message says it in words)."""

    NONE = "none"
    SETTINGS = "settings"  # open Settings (choose the model, device or data folder)
    RETRY = "retry"  # try the same thing again (a busy database, a disk that had no room)
    OPEN_FOLDER = "open_folder"  # choose another folder
    REPORT = "report"  # an unexpected failure: show the log


class Face(Enum):
    """Where a message is read: a fix is named the way that face offers it."""

    CLI = "cli"
    WINDOW = "window"


# The fixes that each face offers its own way. A message names one as {key}; user_message words it for the face
# that shows it ("Settings → Model" in the window, "--model FOLDER" on the command line), str() for both.
CHOOSE_MODEL = "{choose_model}"
_FIXES = {
    CHOOSE_MODEL: {Face.WINDOW: "Settings → Model", Face.CLI: "--model FOLDER",
                   None: "Settings → Model in the window, --model FOLDER on the command line"},
}


def worded(text: str, face: Face | None = None) -> str:
    """``text`` with each fix it names said as ``face`` offers it (None: as both do)."""
    for key, ways in _FIXES.items():
        text = text.replace(key, ways[face])
    return text


class PhotosortError(Exception):
    """A failure the user can act on; ``str(error)`` is the one-line message (fixes named for both faces)."""

    action = Action.NONE

    def __str__(self) -> str:
        return worded(super().__str__())

    def text_for(self, face: Face | None) -> str:
        """The message as ``face`` shows it."""
        return worded(super().__str__(), face)


class FolderError(PhotosortError):
    """A folder or file given by the user cannot be used."""

    action = Action.OPEN_FOLDER


class UsageError(PhotosortError):
    """A command was given options that cannot work together, or out of range."""


class ModelLoadError(PhotosortError):
    """The CLIP model cannot be loaded (offline, wrong id, broken folder)."""

    action = Action.SETTINGS


class ModelDownloadError(ModelLoadError):
    """Downloading the model stopped (connection lost or refused, the hub failing); what arrived is kept."""

    action = Action.RETRY  # trying again continues the download where it stopped


class ModelNotReadyError(ModelLoadError):
    """The model is being downloaded or loaded for indexing right now: what needs it waits until it is there."""

    action = Action.NONE


class StoreError(PhotosortError):
    """One of photosort's databases cannot be opened or written."""

    action = Action.SETTINGS


class CacheError(StoreError):
    """The cache database (derived data) cannot be opened or written."""


class StoreBusyError(StoreError):
    """Another photosort holds a database's write lock for longer than we wait."""

    action = Action.RETRY


class StoreDamagedError(StoreError):
    """A database file is damaged; SQLite itself said so."""


class DiskFullError(PhotosortError):
    """The disk being written has no room left; everything committed before is kept."""

    action = Action.RETRY


class AccessDeniedError(PhotosortError):
    """The operating system refused to let photosort read or write a file or folder."""


class BadFileError(PhotosortError):
    """A file given by the user is not what it should be (not a classifier, not a CSV, too large)."""


class LabelsError(BadFileError):
    """A labels CSV is malformed or refers to photos outside the folder."""


class ClassifierError(PhotosortError):
    """A classifier is missing, invalid, or made for another model."""


class ExportError(PhotosortError):
    """An export could not be planned or carried out safely."""


class SidecarError(BadFileError):
    """An XMP sidecar (or a photo's embedded XMP) cannot be read or merged safely; it is left as it is."""


class TaggingError(PhotosortError):
    """Keywords could not be written into sidecars, or put back, safely; nothing unsafe was done."""


class ExportBusyError(ExportError):
    """Another export, finish or undo of the same library is running; nothing was changed."""

    action = Action.RETRY


class Cancelled(Exception):
    """The user asked long work to stop; what was finished is kept."""


# ---- translation at the boundaries --------------------------------------------------------------
def os_error(exc: OSError, what: str, path: str | Path | None = None) -> PhotosortError:
    """An OSError met while doing ``what`` ("write the cache", "copy IMG_1.JPG"), as the user should read it."""
    where = f" ({path})" if path is not None else ""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"Cannot {what}{where}: the disk is full. Free some space and try again; "
                             "everything finished before is kept.")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return AccessDeniedError(f"Cannot {what}{where}: {reason.lower()}. Check the permissions, "
                                 "or choose another folder.")
    return PhotosortError(f"Cannot {what}{where}: {reason}.")


# SQLite's primary result codes (https://sqlite.org/rescode.html) that photosort tells apart.
SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR = 3, 5, 6, 8, 10
SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_AUTH, SQLITE_NOTADB = 11, 13, 14, 23, 26
_LOW_SPACE_BYTES = 1 << 20  # an I/O error with less free space than this is a full disk


def sqlite_code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code of an error (Python 3.11+); None where Python does not say."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_corruption(exc: sqlite3.Error) -> bool:
    """SQLite itself says the file is damaged (SQLITE_CORRUPT) or is no database (SQLITE_NOTADB).

    The only errors that may make photosort doubt a file: a full disk, a lock
    or a permission problem is never damage.
    """
    code = sqlite_code(exc)
    if code is not None:
        return code in (SQLITE_CORRUPT, SQLITE_NOTADB)
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def database_error(exc: sqlite3.Error, path: str | Path, what: str = "use") -> PhotosortError:
    """A SQLite error on the database at ``path``, translated once, where the database is used."""
    name, kind = Path(path).name, _kind(exc, Path(path))
    if kind == "full":
        return DiskFullError(f"Cannot {what} {name} in {Path(path).parent}: the disk is full. Free some space and "
                             "try again; everything saved before is kept.")
    if kind == "busy":
        return StoreBusyError(f"{name} is busy: another photosort is writing to it. Try again when it has finished.")
    if kind == "denied":
        return StoreError(f"Cannot {what} {path}: it cannot be written (check the folder's permissions and free "
                          "space), or choose another data folder in Settings.")
    if kind == "damaged":
        return StoreDamagedError(f"{path} is damaged ({exc}).")
    return StoreError(f"Cannot {what} {path}: {exc}.")


def _kind(exc: sqlite3.Error, path: Path) -> str:
    """What kind of failure a SQLite error is: by its result code where Python gives it, else by its text."""
    code, text = sqlite_code(exc), str(exc).lower()
    if is_corruption(exc):
        return "damaged"
    if code == SQLITE_FULL or (code is None and "full" in text):
        return "full"
    if (code == SQLITE_IOERR or "disk i/o error" in text) and _low_on_space(path):
        return "full"  # SQLite reports some writes a full disk refused (the WAL index, a sync) as I/O errors
    if code in (SQLITE_BUSY, SQLITE_LOCKED) or (code is None and ("locked" in text or "busy" in text)):
        return "busy"
    if code in (SQLITE_READONLY, SQLITE_PERM, SQLITE_CANTOPEN, SQLITE_AUTH) or (code is None and any(
            word in text for word in ("readonly", "read-only", "permission", "unable to open"))):
        return "denied"
    return "other"


def _low_on_space(path: Path) -> bool:
    try:
        return shutil.disk_usage(path.parent if path.parent.exists() else ".").free < _LOW_SPACE_BYTES
    except OSError:
        return False


# ---- the one mapping to the user --------------------------------------------------------------
@dataclass(frozen=True)
class UserMessage:
    """What a person reads for a failure, and what the window offers to do about it."""

    text: str
    action: Action = Action.NONE
    expected: bool = True  # False: a bug; the CLI and the window point at the log

    def __post_init__(self) -> None:
        # A path in the text may hold bytes that are not UTF-8: made readable here, once for both faces.
        object.__setattr__(self, "text", printable(self.text))


def user_message(exc: BaseException, face: Face | None = None) -> UserMessage:
    """The message and action for any exception that ended a request (the CLI's line, the window's bar), with
    its fix named as ``face`` offers it."""
    if isinstance(exc, PhotosortError):
        return UserMessage(exc.text_for(face), exc.action)
    if isinstance(exc, OSError):
        translated = os_error(exc, "read or write a file", exc.filename)
        return UserMessage(str(translated), translated.action)
    if isinstance(exc, sqlite3.Error):
        translated = database_error(exc, "photosort's database")
        return UserMessage(str(translated), translated.action)
    if isinstance(exc, MemoryError):
        return UserMessage("Out of memory. Close other programs, or index fewer photos at once.", Action.RETRY)
    return UserMessage(f"Something went wrong: {type(exc).__name__}: {exc}. The details are in the log; "
                       "please report it.", Action.REPORT, expected=False)
