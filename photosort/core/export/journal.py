"""The move journal: how a move is written down before it happens, and read back.

A move is journaled so that at every instant each photo is at its source, at
its destination, or at both, and an interrupted move can be finished or rolled
back from its journal (:func:`~photosort.core.export.run.resume_or_recover`,
:func:`~photosort.core.export.run.undo_move`).

Journal format
--------------
JSON Lines in ``journal_dir/move-<time>-<token>.jsonl``, fsync'd after every
write. ``{"op": "begin", "version": 2, "destination", "created", "total"}``,
then one ``{"op": "move", "src", "dst", "state": "planned"}`` per photo,
written before anything is touched, each followed by one such record per
sidecar file carried along (``"sidecar_of"``: the photo's ``src``; its records
are a photo's, but it counts as no photo and moves only after its photo). Then, per photo: ``"moving"`` with
``size`` and ``hash`` (BLAKE2b hex of the photo, written just before the photo
is touched: what undo and finishing check), ``"retarget"`` (a new ``dst``
picked because the name got taken), ``"copying"`` (``tmp``: a temporary file
of a cross-disk move), ``"done"`` or ``"failed"``; ``{"op": "mkdir", "path"}``
for folders it created; and finally ``{"op": "end", "state": "finished" |
"cancelled" | "stopped"}``. Undo appends ``"restoring"`` (``to``: a suffixed
place because the original was taken) and ``"undone"`` (``restored_to``)
records, then ``{"op": "undo", "state": "done"}``. Recovery never trusts the
journal alone: it looks at where each photo actually is — a file counts as the
photo only if it has the recorded size and hash — before deleting or moving
any name. Version 1 journals (no ``"moving"`` records, written by photosort
0.1) are still finished and undone, by the same inode or same bytes rules they
were written for. A move that moved nothing leaves no journal; one killed
before touching any photo is not listed (:func:`pending_journals`).

Reading: :func:`read_journal` replays the records into one :class:`Entry` per
photo (damaged lines, such as one cut short by a crash, are skipped);
:func:`journal_state`, :func:`pending_journals` and :func:`journal_info` are
what the CLI and the window show.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from photosort.core.errors import ExportError

from .fileops import Content, FileProblem, discard, fsync_dir

log = logging.getLogger(__name__)

JOURNAL_GLOB = "move-*.jsonl"
VERSION = 2


class Journal:
    """Append-only JSON Lines file, fsync'd after every write so it survives a crash."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self._handle = handle

    @classmethod
    def create(cls, journal_dir: Path) -> Journal:
        journal_dir.mkdir(parents=True, exist_ok=True)
        # Names sort in creation order (to the nanosecond), so "the last move" is the newest one.
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 1_000_000_000:09d}"
        path = journal_dir / f"move-{stamp}-{secrets.token_hex(4)}.jsonl"
        handle = open(path, "x", encoding="utf-8")  # noqa: SIM115 - kept open for the run
        fsync_dir(journal_dir)
        return cls(path, handle)

    @classmethod
    def reopen(cls, path: Path) -> Journal:
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
            try:
                journal._append("\n")
            except FileProblem as problem:
                journal.close()
                raise ExportError(f"Cannot update the journal {path} ({problem.error.strerror}): free some space "
                                  "or check that folder's permissions; nothing was changed.") from problem.error
        return journal

    def write(self, *records: dict[str, Any]) -> None:
        self._append("".join(json.dumps(record) + "\n" for record in records))

    def _append(self, text: str) -> None:
        try:
            self._handle.write(text)
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            raise FileProblem("journal", exc) from exc

    def close(self) -> None:
        with suppress(OSError):
            self._handle.close()

    def discard(self) -> None:
        """Close and delete the journal: for a move that turned out to move nothing."""
        self.close()
        discard(self.path)
        fsync_dir(self.path.parent)


def _ends_with_newline(handle: IO[bytes]) -> bool:
    handle.seek(-1, os.SEEK_END)
    return handle.read(1) == b"\n"


def move_record(source: Path, target: Path, state: str, **extra: str) -> dict[str, Any]:
    return {"op": "move", "src": str(source), "dst": str(target), "state": state, **extra}


def moving_record(source: Path, target: Path, content: Content) -> dict[str, Any]:
    """Written just before a photo is touched: what it is, so that undo can tell it from a stranger's file."""
    return {**move_record(source, target, "moving"), "size": content.size, "hash": content.digest}


@dataclass
class Entry:
    """Everything a journal says about one photo, replayed in order."""

    src: Path
    dst: Path
    state: str = "planned"
    candidates: list[Path] = field(default_factory=list)
    temps: list[Path] = field(default_factory=list)
    restore_candidates: list[Path] = field(default_factory=list)
    copied: bool = False
    content: Content | None = None  # from the "moving" record (version 2)
    touched: bool = False  # a record says the photo may have been touched
    sidecar_of: Path | None = None  # a sidecar file carried along with this photo (its "planned" record says)


@dataclass
class JournalContents:
    header: dict[str, Any]
    entries: list[Entry]
    folders: list[Path]
    state: str

    @property
    def version(self) -> int:
        value = self.header.get("version", 1)
        return value if isinstance(value, int) else 1

    @property
    def touched(self) -> bool:
        """Whether any photo may have been touched; a version 1 journal cannot tell,
        so it counts as touched when it lists photos."""
        if self.version < 2:
            return bool(self.entries)
        return any(entry.touched for entry in self.entries)


def require_journal(path: Path) -> None:
    """Say plainly that a journal is missing before anything else is tried with it."""
    if not path.is_file():
        raise ExportError(f"There is no journal {path}: it was moved or deleted, so that move cannot be used.")


def read_journal(path: Path) -> JournalContents:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"Cannot read the journal {path} ({exc}): it cannot be used.") from exc
    header: dict[str, Any] = {}
    entries: dict[str, Entry] = {}
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
    return JournalContents(header, list(entries.values()), folders, state)


def _parse_record(path: Path, number: int, line: str) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        log.warning("Ignoring a damaged line %d in %s", number, path)
        return None
    return record if isinstance(record, dict) else None


def _replay_move_record(entries: dict[str, Entry], record: dict[str, Any]) -> None:
    src = str(record.get("src", ""))
    state = record.get("state")
    entry = entries.get(src)
    if entry is None:
        if not src or "dst" not in record:
            return
        entry = Entry(Path(src), Path(record["dst"]), candidates=[Path(record["dst"])])
        if record.get("sidecar_of"):
            entry.sidecar_of = Path(str(record["sidecar_of"]))
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
    elif state == "moving":
        entry.content = _content(record) or entry.content
    if state in ("planned", "done", "failed", "undone", "moving"):
        entry.state = state
    entry.touched = entry.touched or state in ("moving", "retarget", "copying", "done", "restoring", "undone")


def _content(record: dict[str, Any]) -> Content | None:
    size, digest = record.get("size"), record.get("hash")
    if isinstance(size, int) and isinstance(digest, str) and digest:
        return Content(size, digest)
    return None


def journal_state(journal: Path) -> str:
    """``interrupted`` (the process died), ``finished``, ``cancelled``, ``stopped``
    (disk full...) or ``undone``."""
    return read_journal(journal).state


def pending_journals(journal_dir: Path) -> list[Path]:
    """Move journals that were not undone, oldest first: each can be undone, and
    the interrupted ones (see :func:`journal_state`) should be finished first.
    A journal of a move that touched no photo (killed before the first) is not
    one: undoing "the last move" must never pick it instead of the real one."""
    if not journal_dir.is_dir():
        return []
    pending: list[Path] = []
    for path in sorted(journal_dir.glob(JOURNAL_GLOB)):
        try:
            contents = read_journal(path)
        except ExportError as exc:
            log.warning("%s", exc)
            continue
        if contents.state != "undone" and contents.touched:
            pending.append(path)
    return pending


@dataclass(frozen=True)
class JournalInfo:
    """A move export that can still be undone (or, when interrupted, finished)."""

    path: str
    state: str  # see journal_state
    destination: str
    created: str
    total: int

    def describe(self) -> str:
        """``Move of 308 photos to /dest, 2026-11-23 10:22`` (how many were planned: an interrupted one did fewer)."""
        photos = f"{self.total:,} photo{'s' if self.total != 1 else ''}"
        when = self.created.replace("T", " ")[:16]
        return f"Move of {photos} to {self.destination}" + (f", {when}" if when else "")


def journal_info(path: Path) -> JournalInfo:
    """A journal's state and, for the user, where it moved how many photos and when.

    Raises :class:`~photosort.core.errors.ExportError` when the journal cannot be read.
    """
    contents = read_journal(path)
    header = contents.header
    destination = str(header.get("destination", ""))
    return JournalInfo(str(path), contents.state, destination, str(header.get("created", "")), _planned_total(header))


def _planned_total(header: dict[str, Any]) -> int:
    try:
        return int(header.get("total", 0) or 0)
    except (TypeError, ValueError):
        return 0
