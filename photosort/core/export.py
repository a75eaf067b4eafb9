"""Export sorted photos into one folder per category: plan first, then do.

Users trust this module with their only copy of their photos, so it is built
around three promises:

* **Nothing is ever overwritten.** Every file is created exclusively
  (``os.link``, ``os.symlink`` and ``open(..., "xb")`` fail when the name
  exists); a name that was taken since planning gets the next `` (n)`` suffix.
* **Nothing is ever lost.** A copy is written to a hidden temporary file in the
  target folder, fsync'd and verified (size and BLAKE2b hash of the bytes read
  from the source) before it gets its real name, and the temporary file is
  removed on failure or cancel. A move is journaled: at every instant each
  photo is at its source, at its destination, or at both, and an interrupted
  move can be finished (:func:`resume_or_recover`) or rolled back
  (:func:`undo_move`) from its journal.
* **Nothing is written outside the destination.** Category names go through
  :func:`safe_folder_name`; every destination folder is checked with
  :func:`os.path.realpath` when planned and again just before writing, so a
  symlink planted in the destination cannot redirect a write elsewhere.

Public API
----------
``safe_folder_name(name: str) -> str``
    A folder name that is valid and harmless on Linux, macOS and Windows.
``plan_export(items: Iterable[ExportItem], destination: Path, *, mode="copy",
unsure="folder", unsure_name="Unsure") -> ExportPlan``
    Decide every destination path; writes nothing. ``mode`` is ``"copy"``,
    ``"move"`` or ``"link"``; ``unsure`` is ``"folder"`` or ``"skip"``.
    Raises :class:`ExportError` when the destination is a file.
``run_export(plan: ExportPlan, *, journal_dir: Path | None = None,
progress: Callable[[int, int], None] | None = None,
cancel: Callable[[], bool] | None = None) -> ExportResult``
    Carry the plan out. ``journal_dir`` is required for ``"move"``. A full or
    unwritable destination raises :class:`ExportStopped` (an
    :class:`ExportError` that carries the partial :class:`ExportResult`);
    per-photo problems are listed in ``result.failed``; cancelling (``cancel()``
    returning true, or :class:`Cancelled` raised by a callback) returns a
    result with ``cancelled=True``.
``undo_move(journal: Path, *, progress=None, cancel=None) -> UndoResult``
    Put every moved photo back, never overwriting; safe to run again, and
    works on interrupted journals too (that is the "roll back" recovery).
``resume_or_recover(journal: Path, *, progress=None, cancel=None) -> ExportResult``
    Finish an interrupted (or cancelled, or stopped) move.
``pending_journals(journal_dir: Path) -> list[Path]``
    Move journals that can still be undone or finished, oldest first.
``journal_state(journal: Path) -> str``
    ``"interrupted"``, ``"finished"``, ``"cancelled"``, ``"stopped"`` or
    ``"undone"``.

Results: :class:`ExportResult` (``done``, ``skipped``, ``failed``, ``journal``,
``cancelled``, plus ``placed``: one :class:`Placed` per photo with its final
path and method, ``copy``/``move``/``copy+delete``/``hardlink``/``symlink``)
and :class:`UndoResult`; both have ``to_json()``.

Choices worth knowing: the destination may be the photos' own folder (sorting
"in place" into subfolders); a photo already in its target folder is skipped;
in move mode a source that is a symbolic link is skipped rather than moved.

Journal format
--------------
JSON Lines in ``journal_dir/move-<time>-<token>.jsonl``, fsync'd after every
write. ``{"op": "begin", ...}``, then one ``{"op": "move", "src", "dst",
"state": "planned"}`` per photo, written before anything is touched. Then, per
photo: ``"retarget"`` (a new ``dst`` picked because the name got taken),
``"copying"`` (``tmp``: a temporary file of a cross-disk move), ``"done"``
or ``"failed"``; ``{"op": "mkdir", "path"}`` for folders it created; and
finally ``{"op": "end", "state": "finished" | "cancelled" | "stopped"}``. Undo
appends ``"restoring"`` (``to``: a suffixed place because the original was
taken) and ``"undone"`` (``restored_to``) records, then ``{"op": "undo",
"state": "done"}``. Recovery never trusts the journal alone: it looks at where
each photo actually is (same inode, or same bytes for cross-disk copies)
before deleting any name.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import stat
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NoReturn

from photosort.core.errors import Cancelled, ExportError

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
CancelCheck = Callable[[], bool]

MODES = ("copy", "move", "link")
UNSURE_POLICIES = ("folder", "skip")
MAX_NAME_CHARS = 100
MAX_NAME_BYTES = 255
JOURNAL_GLOB = "move-*.jsonl"

_CHUNK = 1 << 20
_MAX_SUFFIX = 10_000
_TEMP_PREFIX = ".photosort-"
_TEMP_SUFFIX = ".partial"
_FORBIDDEN_CHARS = frozenset('/\\:*?"<>|')
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_RESERVED_NAMES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789\u00b9\u00b2\u00b3"}
)
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
_DISK_FULL_ERRNOS = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)
_NOT_WRITABLE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class ExportItem:
    """One photo to export; ``category=None`` means the classifier was unsure."""

    source: Path
    category: str | None
    score: float = 1.0


@dataclass(frozen=True)
class PlannedMove:
    """Where one photo will go; ``folder`` is the (safe) folder name under the root."""

    source: Path
    destination: Path
    folder: str


@dataclass
class ExportPlan:
    """Everything :func:`run_export` will do, decided up front so it can be previewed."""

    destination: Path
    mode: str
    moves: list[PlannedMove]
    skipped: list[tuple[Path, str]]

    def counts(self) -> dict[str, int]:
        """Photos per destination folder, in plan order, for previews."""
        counts: dict[str, int] = {}
        for move in self.moves:
            counts[move.folder] = counts.get(move.folder, 0) + 1
        return counts


@dataclass(frozen=True)
class Placed:
    """A photo that reached its destination, and how: ``copy``, ``move``,
    ``copy+delete`` (a move across disks), ``hardlink`` or ``symlink``."""

    source: Path
    destination: Path
    method: str


@dataclass
class ExportResult:
    """What :func:`run_export` or :func:`resume_or_recover` did."""

    done: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    journal: Path | None = None
    cancelled: bool = False
    mode: str = "copy"
    placed: list[Placed] = field(default_factory=list)

    def methods(self) -> dict[str, int]:
        """How many photos were placed by each method (e.g. hard vs symbolic links)."""
        counts: dict[str, int] = {}
        for placed in self.placed:
            counts[placed.method] = counts.get(placed.method, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable summary for the CLI's ``--json`` and for logs."""
        return {
            "mode": self.mode,
            "done": self.done,
            "cancelled": self.cancelled,
            "journal": None if self.journal is None else str(self.journal),
            "methods": self.methods(),
            "skipped": _pairs_to_json(self.skipped, "reason"),
            "failed": _pairs_to_json(self.failed, "reason"),
            "placed": [{"source": str(p.source), "destination": str(p.destination), "method": p.method} for p in self.placed],
        }


@dataclass
class UndoResult:
    """What :func:`undo_move` did; ``renamed`` lists (original place, where it went
    instead) for photos whose original place was taken by another file."""

    restored: int = 0
    renamed: list[tuple[Path, Path]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    cancelled: bool = False
    journal: Path | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable summary."""
        return {
            "restored": self.restored,
            "cancelled": self.cancelled,
            "journal": None if self.journal is None else str(self.journal),
            "renamed": [{"original": str(a), "restored_to": str(b)} for a, b in self.renamed],
            "failed": _pairs_to_json(self.failed, "reason"),
        }


class ExportStopped(ExportError):
    """The export stopped as a whole (disk full, destination not writable, unsafe
    folder); ``result`` says what was done before, all of which is kept."""

    def __init__(self, message: str, result: ExportResult) -> None:
        super().__init__(message)
        self.result = result


def _pairs_to_json(pairs: list[tuple[Path, str]], key: str) -> list[dict[str, str]]:
    return [{"path": str(path), key: text} for path, text in pairs]


# --------------------------------------------------------------------------- names


def safe_folder_name(name: str) -> str:
    """Turn a user's category name into one folder name that is safe everywhere.

    Separators and characters Windows forbids become ``_``, control characters
    become spaces, runs of dots and spaces collapse, leading/trailing dots and
    spaces go, Windows device names (``CON``, ``com1.txt``...) get a ``_``,
    and the result is NFC, at most ~100 characters and 255 UTF-8 bytes, never
    empty (``Unnamed``). The steps interact (NFC after removing characters,
    trimming after truncating), so they are repeated until stable, which makes
    the function idempotent.
    """
    result = _sanitize_once(name)
    for _ in range(4):
        again = _sanitize_once(result)
        if again == result:
            break
        result = again
    return result


def _sanitize_once(name: str) -> str:
    text = unicodedata.normalize("NFC", name)
    text = unicodedata.normalize("NFC", "".join(_clean_char(ch) for ch in text))
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\.{2,}", ".", text)
    text = _fit(text.strip(" ."), MAX_NAME_CHARS, MAX_NAME_BYTES)
    if not text:
        return "Unnamed"
    if _is_reserved(text):
        head, dot, tail = text.partition(".")
        text = _fit(f"{head}_{dot}{tail}", MAX_NAME_CHARS, MAX_NAME_BYTES)
    return text


def _clean_char(ch: str) -> str:
    """Forbidden characters become ``_``, controls a space; invisible tricks vanish."""
    if ch in _FORBIDDEN_CHARS:
        return "_"
    category = unicodedata.category(ch)
    if category == "Cc":
        return " "
    if category == "Cs" or ch in _BIDI_CONTROLS:
        return ""
    return ch


def _is_reserved(name: str) -> bool:
    """Windows refuses device names, even with an extension (``con.txt``)."""
    return name.partition(".")[0].rstrip(" ").upper() in _RESERVED_NAMES


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _fit(text: str, max_chars: int, max_bytes: int) -> str:
    """Cut ``text`` to the limits, then drop trailing dots/spaces Windows would eat."""
    text = text[:max_chars]
    while _utf8_len(text) > max_bytes:
        text = text[:-1]
    return text.rstrip(" .")


def _fold(name: str) -> str:
    """Case- and normalisation-insensitive key, as macOS and Windows compare names."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", name).casefold())


def _numbered_folder_name(base: str, number: int) -> str:
    tag = f" ({number})"
    return _fit(base, MAX_NAME_CHARS - len(tag), MAX_NAME_BYTES - len(tag)) + tag


def _numbered_file_name(name: str, number: int) -> str:
    """``IMG_0001.JPG`` -> ``IMG_0001 (2).JPG``, shortened to fit 255 bytes."""
    stem, ext = os.path.splitext(name)
    if len(ext) > 16:
        stem, ext = name, ""
    tag = f" ({number})"
    budget = MAX_NAME_BYTES - _utf8_len(tag + ext)
    while _utf8_len(stem) > budget:
        stem = stem[:-1]
    return f"{stem}{tag}{ext}"


# --------------------------------------------------------------------------- planning


def plan_export(
    items: Iterable[ExportItem],
    destination: Path,
    *,
    mode: str = "copy",
    unsure: str = "folder",
    unsure_name: str = "Unsure",
) -> ExportPlan:
    """Decide where every photo goes, without writing anything.

    Folders and file names are chosen against what already exists in the
    destination (case-insensitively), so the plan shown to the user is what
    :func:`run_export` will do unless files appear in between.
    """
    _check_choice("mode", mode, MODES)
    _check_choice("unsure", unsure, UNSURE_POLICIES)
    root = Path(os.path.abspath(destination))
    _check_destination(root)
    items = list(items)
    folders = _assign_folders(items, root, unsure == "folder", unsure_name)
    root_real = os.path.realpath(root)
    names = _NameBook(root)
    moves: list[PlannedMove] = []
    skipped: list[tuple[Path, str]] = []
    seen: set[str] = set()
    for item in items:
        source = Path(os.path.abspath(item.source))
        reason = _skip_reason(source, item.category, mode, folders, root_real, seen)
        if reason is not None:
            skipped.append((source, reason))
            continue
        folder = folders[item.category]
        target = root / folder / names.claim(folder, source.name)
        moves.append(PlannedMove(source, target, folder))
    for move in moves:
        _assert_planned_inside(root_real, move)
    log.info("Planned %s of %d photos into %s", mode, len(moves), root)
    return ExportPlan(root, mode, moves, skipped)


def _check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")


def _check_destination(root: Path) -> None:
    """The destination may not exist yet, but it must not be a file or a broken link."""
    if os.path.lexists(root) and not root.is_dir():
        kind = "broken link" if root.is_symlink() and not root.exists() else "file"
        raise ExportError(f"The destination {root} is a {kind}, not a folder: choose a folder to export into.")


@dataclass
class _Existing:
    name: str
    plain_dir: bool


def _existing_entries(folder: Path) -> dict[str, _Existing]:
    """What is already in ``folder``, keyed by folded name; links never count as folders."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return {}
    entries: dict[str, _Existing] = {}
    for name in names:
        path = folder / name
        plain = path.is_dir() and not path.is_symlink()
        key = _fold(name)
        if key in entries:
            entries[key].plain_dir = entries[key].plain_dir and plain
        else:
            entries[key] = _Existing(name, plain)
    return entries


def _assign_folders(items: list[ExportItem], root: Path, with_unsure: bool, unsure_name: str) -> dict[str | None, str]:
    """One folder per category (sorted for stable names), plus the unsure folder."""
    categories = sorted({item.category for item in items if item.category is not None})
    existing = _existing_entries(root)
    claimed: set[str] = set()
    folders: dict[str | None, str] = {}
    for category in categories:
        folders[category] = _claim_folder(safe_folder_name(category), existing, claimed)
    if with_unsure and any(item.category is None for item in items):
        base = _unsure_folder_base(unsure_name, categories)
        folders[None] = _claim_folder(base, existing, claimed)
    return folders


def _unsure_folder_base(unsure_name: str, categories: list[str]) -> str:
    """``Unsure``, unless a category already uses that name: then ``Unsure (photosort)``."""
    base = safe_folder_name(unsure_name)
    if _fold(base) in {_fold(safe_folder_name(c)) for c in categories}:
        base = safe_folder_name(f"{base} (photosort)")
    return base


def _claim_folder(base: str, existing: dict[str, _Existing], claimed: set[str]) -> str:
    """First free variant of ``base``; reuses an existing plain folder of that name,
    never a file or a link, and never one another category already took."""
    for number in range(1, _MAX_SUFFIX):
        candidate = base if number == 1 else _numbered_folder_name(base, number)
        key = _fold(candidate)
        entry = existing.get(key)
        if key in claimed or (entry is not None and not entry.plain_dir):
            continue
        claimed.add(key)
        return entry.name if entry is not None else candidate
    raise ExportError(f"Too many folders named like {base!r}: choose an empty destination.")


class _NameBook:
    """Names taken in each destination folder (existing or planned), case-insensitively."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._taken: dict[str, set[str]] = {}

    def claim(self, folder: str, name: str) -> str:
        taken = self._taken.get(folder)
        if taken is None:
            taken = set(_existing_entries(self._root / folder))
            self._taken[folder] = taken
        candidate = name
        for number in range(2, _MAX_SUFFIX):
            if _fold(candidate) not in taken:
                break
            candidate = _numbered_file_name(name, number)
        taken.add(_fold(candidate))
        return candidate


def _skip_reason(
    source: Path,
    category: str | None,
    mode: str,
    folders: dict[str | None, str],
    root_real: str,
    seen: set[str],
) -> str | None:
    """Why this photo must not be exported, or None when it can be."""
    if category not in folders:
        return "unsure, left out"
    problem = _source_problem(source, mode)
    if problem is not None:
        return problem
    key = os.path.realpath(source)
    if key in seen:
        return "listed twice"
    seen.add(key)
    folder = folders[category]
    if os.path.realpath(source.parent) == os.path.join(root_real, folder):
        return f"already in the folder {folder!r}"
    return None


def _source_problem(source: Path, mode: str) -> str | None:
    try:
        info = os.lstat(source)
    except FileNotFoundError:
        return "the photo is missing"
    except OSError as exc:
        return f"the photo cannot be read ({exc.strerror})"
    if stat.S_ISLNK(info.st_mode):
        if mode == "move":
            return "it is a symbolic link; move the file it points to instead"
        try:
            info = os.stat(source)
        except OSError:
            return "it is a broken symbolic link"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if not os.access(source, os.R_OK):
        return "the photo cannot be read (permission denied)"
    if mode == "move" and not os.access(source.parent, os.W_OK | os.X_OK):
        return "its folder is read-only, so it cannot be moved (copy it instead)"
    return None


def _is_plain_component(name: str) -> bool:
    separators = {os.sep, os.altsep or os.sep, "/", "\\", "\0"}
    return name not in ("", ".", "..") and not any(sep in name for sep in separators)


def _assert_planned_inside(root_real: str, move: PlannedMove) -> None:
    """Defence in depth: the planned folder must really be a child of the root."""
    parent_real = os.path.realpath(move.destination.parent)
    if (
        parent_real != os.path.join(root_real, move.folder)
        or not _is_plain_component(move.folder)
        or not _is_plain_component(move.destination.name)
    ):
        raise ExportError(
            f"Refusing to export {move.source}: {move.destination} would be outside "
            f"{root_real}. Remove links inside the destination or choose another folder."
        )


# --------------------------------------------------------------------------- file operations


class _FileProblem(Exception):
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
        return self.side == "destination" and (code in _DISK_FULL_ERRNOS or code in _NOT_WRITABLE_ERRNOS)

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
def _blame(side: str) -> Iterator[None]:
    """Tag any raw OSError raised inside with the side it happened on."""
    try:
        yield
    except _FileProblem:
        raise
    except OSError as exc:
        raise _FileProblem(side, exc) from exc


def _discard(path: Path) -> None:
    """Remove a file this module created (temp, placeholder, duplicate name)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("Could not remove %s: %s", path, exc)


def _fsync_dir(folder: Path) -> None:
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


def _place_exclusive(
    target: Path,
    make: Callable[[Path], None],
    on_retarget: Callable[[Path], None] | None = None,
) -> Path:
    """Create ``target`` with ``make``, which must fail if the name exists; when it
    does, try ``name (2)``, ``name (3)``... so nothing is ever replaced."""
    candidate = target
    for number in range(2, _MAX_SUFFIX):
        try:
            make(candidate)
            return candidate
        except FileExistsError:
            candidate = target.with_name(_numbered_file_name(target.name, number))
            if on_retarget is not None:
                on_retarget(candidate)
    raise _FileProblem("destination", OSError(errno.EEXIST, "too many files with this name"))


def _hard_link_exclusive(source: Path, target: Path, on_retarget: Callable[[Path], None] | None = None) -> Path | None:
    """Hard-link ``source`` at ``target`` (or a suffixed name); None when this
    filesystem cannot hard-link here, so the caller falls back."""
    try:
        return _place_exclusive(target, lambda c: os.link(source, c), on_retarget)
    except OSError as exc:
        if exc.errno in _NO_HARDLINK_ERRNOS:
            return None
        side = "destination" if os.path.lexists(source) else "source"
        raise _FileProblem(side, exc) from exc


def _hash_file(path: Path) -> bytes:
    digest = hashlib.blake2b()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.digest()


def _copy_verified(
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
        with _blame("source"):
            reader = files.enter_context(open(source, "rb"))
        if on_temp is not None:
            on_temp(temp)
        with _blame("destination"):
            writer = files.enter_context(open(temp, "xb"))
        try:
            size, digest = _write_copy(reader, writer)
            _verify_copy(temp, size, digest)
            final = _install(temp, target, on_retarget)
        finally:
            writer.close()
            _discard(temp)
    _copy_metadata(source, final)
    return final


def _write_copy(reader: IO[bytes], writer: IO[bytes]) -> tuple[int, bytes]:
    """Stream the bytes, hashing what was read; returns (size, digest)."""
    digest = hashlib.blake2b()
    size = 0
    with _blame("destination"), writer:
        while True:
            with _blame("source"):
                chunk = reader.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    with _blame("source"):
        if os.fstat(reader.fileno()).st_size != size:
            raise OSError(errno.EAGAIN, "the photo changed while it was being copied")
    return size, digest.digest()


def _verify_copy(temp: Path, size: int, digest: bytes) -> None:
    """Read the copy back: a short write or a bad disk must not pass as a photo."""
    with _blame("destination"):
        ok = os.stat(temp).st_size == size and _hash_file(temp) == digest
    if not ok:
        raise _FileProblem(
            "destination",
            OSError(errno.EIO, "verification failed"),
            reason="the copy did not match the original, so it was removed",
        )


def _install(temp: Path, target: Path, on_retarget: Callable[[Path], None] | None) -> Path:
    """Give the verified temp file its final name without ever replacing a file."""
    final = _hard_link_exclusive(temp, target, on_retarget)
    if final is not None:
        return final
    with _blame("destination"):
        return _place_exclusive(target, lambda c: _replace_reserved(temp, c), on_retarget)


def _replace_reserved(temp: Path, candidate: Path) -> None:
    """For filesystems without hard links: reserve the name with an exclusive empty
    file, then replace only that placeholder."""
    with open(candidate, "xb"):
        pass
    try:
        os.replace(temp, candidate)
    except OSError:
        _discard(candidate)
        raise


def _copy_metadata(source: Path, final: Path) -> None:
    """Keep the photo's dates (and mode); a failure here never fails the export."""
    try:
        shutil.copystat(source, final)
    except OSError as exc:
        log.warning("Could not keep the dates of %s: %s", final, exc)


def _link(source: Path, target: Path) -> tuple[Path, str]:
    """Hard link where the filesystem allows, else a symbolic link to the source."""
    final = _hard_link_exclusive(source, target)
    if final is not None:
        return final, "hardlink"
    pointee = os.path.abspath(source)
    with _blame("destination"):
        return _place_exclusive(target, lambda c: os.symlink(pointee, c)), "symlink"


def _relocate(
    source: Path,
    target: Path,
    *,
    on_retarget: Callable[[Path], None] | None = None,
    on_temp: Callable[[Path], None] | None = None,
) -> tuple[Path, str]:
    """Move one file: link (or verified copy across disks), then remove the source.
    The photo exists under at least one name at every instant."""
    final = _hard_link_exclusive(source, target, on_retarget)
    method = "move"
    if final is None:
        final = _copy_verified(source, target, on_retarget=on_retarget, on_temp=on_temp)
        method = "copy+delete"
    _fsync_dir(final.parent)
    _remove_original(source, final)
    return final, method


def _remove_original(source: Path, final: Path) -> None:
    """Unlink the source; if that fails, take the new name back so the photo is not
    left twice, but only while the source is still there."""
    try:
        os.unlink(source)
    except FileNotFoundError:
        log.warning("%s vanished before it could be removed; it is at %s", source, final)
    except OSError as exc:
        if os.path.lexists(source):
            _discard(final)
        reason = f"could not remove the original ({exc.strerror}); it was left where it was"
        raise _FileProblem("source", exc, reason=reason) from exc


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _same_photo(a: Path, b: Path, compare_bytes: bool) -> bool:
    """Same inode, or (for cross-disk copies) same size and hash."""
    if _same_file(a, b):
        return True
    if not compare_bytes:
        return False
    try:
        return os.stat(a).st_size == os.stat(b).st_size and _hash_file(a) == _hash_file(b)
    except OSError:
        return False


# --------------------------------------------------------------------------- journal


class _Journal:
    """Append-only JSON Lines file, fsync'd after every write so it survives a crash."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self._handle = handle

    @classmethod
    def create(cls, journal_dir: Path) -> _Journal:
        journal_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = journal_dir / f"move-{stamp}-{secrets.token_hex(4)}.jsonl"
        handle = open(path, "x", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        _fsync_dir(journal_dir)
        return cls(path, handle)

    @classmethod
    def reopen(cls, path: Path) -> _Journal:
        """Append to an existing journal, ending a line a crash may have cut short."""
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                cut = handle.tell() > 0 and not _ends_with_newline(handle)
            appender = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        except OSError as exc:
            raise ExportError(f"Cannot update the journal {path} ({exc.strerror}).") from exc
        journal = cls(path, appender)
        if cut:
            journal._append("\n")
        return journal

    def write(self, *records: dict[str, Any]) -> None:
        self._append("".join(json.dumps(record) + "\n" for record in records))

    def _append(self, text: str) -> None:
        try:
            self._handle.write(text)
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            raise _FileProblem("journal", exc) from exc

    def close(self) -> None:
        with suppress(OSError):
            self._handle.close()


def _ends_with_newline(handle: IO[bytes]) -> bool:
    handle.seek(-1, os.SEEK_END)
    return handle.read(1) == b"\n"


def _move_record(source: Path, target: Path, state: str, **extra: str) -> dict[str, Any]:
    return {"op": "move", "src": str(source), "dst": str(target), "state": state, **extra}


@dataclass
class _Entry:
    """Everything a journal says about one photo, replayed in order."""

    src: Path
    dst: Path
    state: str = "planned"
    candidates: list[Path] = field(default_factory=list)
    temps: list[Path] = field(default_factory=list)
    restore_candidates: list[Path] = field(default_factory=list)
    copied: bool = False


@dataclass
class _JournalContents:
    header: dict[str, Any]
    entries: list[_Entry]
    folders: list[Path]
    state: str


def _read_journal(path: Path) -> _JournalContents:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"Cannot read the journal {path} ({exc}): it cannot be used.") from exc
    header: dict[str, Any] = {}
    entries: dict[str, _Entry] = {}
    folders: list[Path] = []
    end_state = "interrupted"
    undone = False
    for number, line in enumerate(lines, 1):
        record = _parse_record(path, number, line)
        if record is None:
            continue
        op = record.get("op")
        if op == "begin":
            header = record
        elif op == "mkdir":
            folders.append(Path(record["path"]))
        elif op == "end":
            end_state = str(record.get("state", "interrupted"))
        elif op == "undo":
            undone = undone or record.get("state") == "done"
        elif op == "move":
            _replay_move_record(entries, record)
    state = "undone" if undone else end_state
    return _JournalContents(header, list(entries.values()), folders, state)


def _parse_record(path: Path, number: int, line: str) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        log.warning("Ignoring a damaged line %d in %s", number, path)
        return None
    return record if isinstance(record, dict) else None


def _replay_move_record(entries: dict[str, _Entry], record: dict[str, Any]) -> None:
    src = str(record.get("src", ""))
    state = record.get("state")
    entry = entries.get(src)
    if entry is None:
        if not src or "dst" not in record:
            return
        entry = _Entry(Path(src), Path(record["dst"]), candidates=[Path(record["dst"])])
        entries[src] = entry
    if state in ("retarget", "done") and "dst" in record:
        entry.dst = Path(record["dst"])
        if entry.dst not in entry.candidates:
            entry.candidates.append(entry.dst)
    if state == "copying" and "tmp" in record:
        entry.temps.append(Path(record["tmp"]))
        entry.copied = True
    elif state == "restoring" and "to" in record:
        entry.restore_candidates.append(Path(record["to"]))
    if state in ("planned", "done", "failed", "undone"):
        entry.state = state


def journal_state(journal: Path) -> str:
    """``interrupted`` (the process died), ``finished``, ``cancelled``, ``stopped``
    (disk full...) or ``undone``."""
    return _read_journal(journal).state


def pending_journals(journal_dir: Path) -> list[Path]:
    """Move journals that were not undone, oldest first: each can be undone, and
    the interrupted ones (see :func:`journal_state`) should be finished first."""
    if not journal_dir.is_dir():
        return []
    pending: list[Path] = []
    for path in sorted(journal_dir.glob(JOURNAL_GLOB)):
        try:
            state = journal_state(path)
        except ExportError as exc:
            log.warning("%s", exc)
            continue
        if state != "undone":
            pending.append(path)
    return pending


# --------------------------------------------------------------------------- running


@dataclass
class _Run:
    plan: ExportPlan
    root_real: str
    result: ExportResult
    journal: _Journal | None = None
    made_folders: set[Path] = field(default_factory=set)


def run_export(
    plan: ExportPlan,
    *,
    journal_dir: Path | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> ExportResult:
    """Carry out a plan. Per-photo problems go to ``result.failed``; a full or
    unwritable destination raises :class:`ExportStopped` after cleaning up."""
    _check_choice("mode", plan.mode, MODES)
    if plan.mode == "move" and journal_dir is None:
        raise ValueError("a move needs journal_dir, so that it can be undone")
    root_real = _prepare_root(plan.destination)
    result = ExportResult(skipped=list(plan.skipped), mode=plan.mode)
    run = _Run(plan, root_real, result)
    if plan.mode == "move" and journal_dir is not None:
        run.journal = _start_journal(journal_dir, plan)
        result.journal = run.journal.path
    try:
        _run_all(run, plan.moves, progress, cancel)
    finally:
        if run.journal is not None:
            run.journal.close()
    log.info("Export %s: %d done, %d failed", plan.mode, result.done, len(result.failed))
    return result


def _prepare_root(destination: Path) -> str:
    _check_destination(destination)
    try:
        destination.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(
            f"Cannot create the destination folder {destination} ({exc.strerror}): choose another folder; nothing was changed."
        ) from exc
    return os.path.realpath(destination)


def _start_journal(journal_dir: Path, plan: ExportPlan) -> _Journal:
    """Write the whole plan down, durably, before the first photo is touched."""
    try:
        journal = _Journal.create(journal_dir)
        header = {
            "op": "begin",
            "version": 1,
            "destination": str(plan.destination),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "total": len(plan.moves),
        }
        planned = [_move_record(m.source, m.destination, "planned") for m in plan.moves]
        journal.write(header, *planned)
    except (OSError, _FileProblem) as exc:
        error = exc.error if isinstance(exc, _FileProblem) else exc
        raise ExportError(
            f"Cannot write the undo journal in {journal_dir} ({error.strerror or error}): free "
            "some space or check that folder's permissions; nothing was moved."
        ) from exc
    return journal


def _run_all(
    run: _Run,
    moves: list[PlannedMove],
    progress: Progress | None,
    cancel: CancelCheck | None,
) -> None:
    total = len(moves)
    result = run.result
    try:
        _report(progress, 0, total)
        for move in moves:
            if cancel is not None and cancel():
                result.cancelled = True
                break
            _export_step(run, move)
            _report(progress, result.done + len(result.failed), total)
    except Cancelled:
        result.cancelled = True
    _end_journal(run, "cancelled" if result.cancelled else "finished")


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _end_journal(run: _Run, state: str, **extra: str) -> None:
    if run.journal is not None:
        with suppress(_FileProblem):
            run.journal.write({"op": "end", "state": state, **extra})


def _export_step(run: _Run, move: PlannedMove) -> None:
    """One photo: success and per-photo failures are recorded; fatal ones stop all."""
    try:
        try:
            placed = _export_one(run, move)
        except _FileProblem as problem:
            if problem.fatal:
                raise
            _record_failure(run, move.source, move.destination, problem.reason)
            return
        run.result.placed.append(placed)
        run.result.done += 1
    except _FileProblem as problem:
        _stop(run, move, problem)


def _export_one(run: _Run, move: PlannedMove) -> Placed:
    _ready_folder(run, move.destination.parent)
    if run.plan.mode == "copy":
        return Placed(move.source, _copy_verified(move.source, move.destination), "copy")
    if run.plan.mode == "link":
        final, method = _link(move.source, move.destination)
        return Placed(move.source, final, method)
    return _journaled_move(run, move)


def _journaled_move(run: _Run, move: PlannedMove) -> Placed:
    journal = run.journal
    assert journal is not None, "moves are always journaled"
    source = move.source

    def retarget(candidate: Path) -> None:
        journal.write(_move_record(source, candidate, "retarget"))

    def temp(path: Path) -> None:
        journal.write({"op": "move", "src": str(source), "tmp": str(path), "state": "copying"})

    final, method = _relocate(source, move.destination, on_retarget=retarget, on_temp=temp)
    journal.write(_move_record(source, final, "done", method=method))
    return Placed(source, final, method)


def _ready_folder(run: _Run, folder: Path) -> None:
    """Create the category folder if needed, then make sure it is a plain folder
    right under the root: a link planted there must not redirect writes."""
    if folder not in run.made_folders:
        try:
            os.mkdir(folder)
            if run.journal is not None:
                run.journal.write({"op": "mkdir", "path": str(folder)})
        except FileExistsError:
            pass
        except OSError as exc:
            raise _FileProblem("destination", exc) from exc
        run.made_folders.add(folder)
    expected = os.path.join(run.root_real, folder.name)
    if folder.is_symlink() or not folder.is_dir() or os.path.realpath(folder) != expected:
        raise _FileProblem(
            "unsafe",
            OSError(errno.ELOOP, "not a plain folder"),
            reason=f"{folder} is a link or a file, not a plain folder, so nothing was "
            "written through it: remove it or choose another destination",
        )


def _record_failure(run: _Run, source: Path, target: Path, reason: str) -> None:
    log.warning("Could not export %s: %s", source, reason)
    if run.journal is not None:
        run.journal.write(_move_record(source, target, "failed", reason=reason))
    run.result.failed.append((source, reason))


def _stop(run: _Run, move: PlannedMove, problem: _FileProblem) -> NoReturn:
    """Stop the whole export with a message that says what to do; temp files are
    already gone and every photo is in its old or new place."""
    run.result.failed.append((move.source, problem.reason))
    if run.journal is not None:
        with suppress(_FileProblem):
            run.journal.write(_move_record(move.source, move.destination, "failed"))
    _end_journal(run, "stopped", reason=problem.reason)
    message = _stop_message(run, problem)
    log.error("%s", message)
    raise ExportStopped(message, run.result) from problem.error


def _photos(count: int) -> str:
    return "1 photo" if count == 1 else f"{count} photos"


def _stop_message(run: _Run, problem: _FileProblem) -> str:
    moved = run.result.done
    tail = "nothing was lost."
    if run.plan.mode == "move" and moved:
        tail = f"{_photos(moved)} moved so far can be undone; nothing was lost."
    destination = run.plan.destination
    code = problem.error.errno
    if problem.side == "journal":
        journal = run.journal.path if run.journal is not None else "the undo journal"
        return (
            f"Cannot write the undo journal {journal} ({problem.error.strerror}): free some "
            f"space or check that folder's permissions; {tail}"
        )
    if problem.side == "unsafe":
        return f"Export stopped: {problem.reason}; {tail}"
    if code in _DISK_FULL_ERRNOS:
        return f"The destination disk is full: free some space or choose another folder; {tail}"
    if code == errno.EROFS:
        return f"The destination {destination} is read-only: choose another folder; {tail}"
    return (
        f"Cannot write to the destination {destination} (permission denied): choose another "
        f"folder or change its permissions; {tail}"
    )


# --------------------------------------------------------------------------- recovery


def resume_or_recover(
    journal: Path,
    *,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> ExportResult:
    """Finish a move that was interrupted (killed, cancelled or stopped).

    For each photo not yet done it looks at where the photo really is: both
    names of the same file -> the source name is removed; only the new name ->
    done; only the old name -> it is moved now. Leftover temp files are removed.
    To roll back instead, call :func:`undo_move`, which handles interrupted
    journals the same careful way.
    """
    contents = _read_journal(journal)
    result = ExportResult(journal=journal, mode="move")
    if contents.state == "undone":
        return result
    destination = Path(contents.header.get("destination") or _guess_root(contents))
    plan = ExportPlan(destination, "move", [], [])
    run = _Run(plan, _prepare_root(destination), result, _Journal.reopen(journal))
    unfinished = [e for e in contents.entries if e.state not in ("done", "undone")]
    try:
        _resume_all(run, unfinished, progress, cancel)
    finally:
        if run.journal is not None:
            run.journal.close()
    return result


def _guess_root(contents: _JournalContents) -> Path:
    if not contents.entries:
        raise ExportError("The journal has no header and no photos: there is nothing to finish.")
    return contents.entries[0].dst.parent.parent


def _resume_all(run: _Run, entries: list[_Entry], progress: Progress | None, cancel: CancelCheck | None) -> None:
    total = len(entries)
    try:
        _report(progress, 0, total)
        for index, entry in enumerate(entries, 1):
            if cancel is not None and cancel():
                run.result.cancelled = True
                break
            _resume_entry(run, entry)
            _report(progress, index, total)
    except Cancelled:
        run.result.cancelled = True
    _end_journal(run, "cancelled" if run.result.cancelled else "finished", resumed="yes")


def _resume_entry(run: _Run, entry: _Entry) -> None:
    for temp in entry.temps:
        _discard(temp)  # a partial copy is never the only copy: the source goes last
    holder = _last_existing(entry.candidates)
    source_here = os.path.lexists(entry.src)
    if holder is not None and (not source_here or _same_photo(entry.src, holder, compare_bytes=entry.copied)):
        _complete_half_done(run, entry, holder, source_here)
        return
    if not source_here:
        reason = "the photo is neither at its old nor at its new place (moved or deleted)"
        with _journal_guard(run, entry):
            _record_failure(run, entry.src, entry.dst, reason)
        return
    move = PlannedMove(entry.src, entry.dst, entry.dst.parent.name)
    _export_step(run, move)


def _complete_half_done(run: _Run, entry: _Entry, holder: Path, source_here: bool) -> None:
    """The photo already has its new name: drop the old one and record it done."""
    with _journal_guard(run, entry):
        try:
            if source_here:
                _remove_original(entry.src, holder)
        except _FileProblem as problem:
            _record_failure(run, entry.src, entry.dst, problem.reason)
            return
        assert run.journal is not None
        run.journal.write(_move_record(entry.src, holder, "done", method="move"))
        run.result.placed.append(Placed(entry.src, holder, "move"))
        run.result.done += 1


@contextmanager
def _journal_guard(run: _Run, entry: _Entry) -> Iterator[None]:
    """A journal that cannot be written stops everything, as during the export."""
    try:
        yield
    except _FileProblem as problem:
        if problem.side != "journal":
            raise
        _stop(run, PlannedMove(entry.src, entry.dst, entry.dst.parent.name), problem)


def _last_existing(paths: list[Path]) -> Path | None:
    for path in reversed(paths):
        if os.path.lexists(path):
            return path
    return None


def undo_move(
    journal: Path,
    *,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> UndoResult:
    """Put every photo of a move back where it was, newest first.

    Never overwrites: if the original place is taken, the photo is restored next
    to it with a suffix and listed in ``renamed``. Photos already restored are
    skipped, so running it again (after a crash or a cancel) is safe; it also
    rolls back an interrupted move. Removes the folders the move created, if empty.
    """
    contents = _read_journal(journal)
    result = UndoResult(journal=journal)
    if contents.state == "undone":
        return result
    entries = [e for e in reversed(contents.entries) if e.state != "undone"]
    writer = _Journal.reopen(journal)
    try:
        _undo_all(writer, entries, result, progress, cancel)
        if not result.cancelled:
            _remove_empty_folders(contents.folders)
            writer.write({"op": "undo", "state": "done"})
    except _FileProblem as problem:
        raise ExportError(_undo_stop_message(problem, result)) from problem.error
    finally:
        writer.close()
    log.info("Undo: %d restored, %d failed", result.restored, len(result.failed))
    return result


def _undo_all(
    writer: _Journal,
    entries: list[_Entry],
    result: UndoResult,
    progress: Progress | None,
    cancel: CancelCheck | None,
) -> None:
    total = len(entries)
    try:
        _report(progress, 0, total)
        for index, entry in enumerate(entries, 1):
            if cancel is not None and cancel():
                result.cancelled = True
                return
            _undo_entry(writer, entry, result)
            _report(progress, index, total)
    except Cancelled:
        result.cancelled = True


def _undo_entry(writer: _Journal, entry: _Entry, result: UndoResult) -> None:
    for temp in entry.temps:
        _discard(temp)
    try:
        restored_to, moved_back = _restore(writer, entry)
    except _FileProblem as problem:
        if problem.fatal:
            raise
        result.failed.append((entry.src, problem.reason))
        return
    if restored_to is None:
        reason = f"the photo is no longer at {entry.dst} (moved or deleted since the export)"
        result.failed.append((entry.src, reason))
        return
    writer.write(_move_record(entry.src, entry.dst, "undone", restored_to=str(restored_to)))
    if moved_back:
        result.restored += 1
    if restored_to != entry.src:
        result.renamed.append((entry.src, restored_to))


def _restore(writer: _Journal, entry: _Entry) -> tuple[Path | None, bool]:
    """Bring one photo back. Returns where it now is (None if it cannot be found)
    and whether it had been moved at all (photos a stopped move never reached
    are not counted as restored)."""
    source_here = os.path.lexists(entry.src)
    was_moved = entry.state == "done"
    # A finished move knows its final name; an unfinished one may have tried several.
    holder = _last_existing([entry.dst] if was_moved else entry.candidates)
    if holder is None:
        return _already_restored(entry, source_here), was_moved
    if source_here and _same_photo(entry.src, holder, entry.copied and not was_moved):
        _discard(holder)  # the photo has both names: keep the original one
        return entry.src, True
    if source_here and not was_moved:
        return entry.src, False  # never moved; what is at the new name is someone else's file
    for earlier in entry.restore_candidates:
        if os.path.lexists(earlier) and _same_file(earlier, holder):
            _discard(holder)  # an earlier undo already gave it its restored name
            return earlier, True
    return _move_back(writer, entry, holder), True


def _already_restored(entry: _Entry, source_here: bool) -> Path | None:
    earlier = _last_existing(entry.restore_candidates)
    if earlier is not None:
        return earlier
    return entry.src if source_here else None


def _move_back(writer: _Journal, entry: _Entry, holder: Path) -> Path:
    def retarget(candidate: Path) -> None:
        writer.write(_move_record(entry.src, holder, "restoring", to=str(candidate)))

    def temp(path: Path) -> None:
        writer.write({"op": "move", "src": str(entry.src), "tmp": str(path), "state": "copying"})

    with _blame("destination"):
        entry.src.parent.mkdir(parents=True, exist_ok=True)
    final, _ = _relocate(holder, entry.src, on_retarget=retarget, on_temp=temp)
    return final


def _remove_empty_folders(folders: list[Path]) -> None:
    """Remove the category folders the move created, only if they are empty now."""
    for folder in reversed(folders):
        with suppress(OSError):
            os.rmdir(folder)


def _undo_stop_message(problem: _FileProblem, result: UndoResult) -> str:
    done = f"{_photos(result.restored)} restored so far; nothing was lost."
    if problem.side == "journal":
        return (
            f"Cannot update the undo journal ({problem.error.strerror}): free some space "
            f"or check its folder's permissions, then undo again; {done}"
        )
    if problem.error.errno in _DISK_FULL_ERRNOS:
        return f"The original photos' disk is full: free some space, then undo again; {done}"
    return f"Cannot write to the original folder ({problem.error.strerror}): fix its permissions, then undo again; {done}"


__all__ = [
    "MODES",
    "UNSURE_POLICIES",
    "ExportItem",
    "ExportPlan",
    "ExportResult",
    "ExportStopped",
    "Placed",
    "PlannedMove",
    "UndoResult",
    "journal_state",
    "pending_journals",
    "plan_export",
    "resume_or_recover",
    "run_export",
    "safe_folder_name",
    "undo_move",
]
