"""The move journal: how a move is written down before it happens, and read back.

A move is journaled so that at every instant each photo is at its source, at
its destination, or at both, and an interrupted move can be finished or rolled
back from its journal (:func:`~photosort.core.export.run.resume_or_recover`,
:func:`~photosort.core.export.run.undo_move`).

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

from .fileops import FileProblem, fsync_dir

log = logging.getLogger(__name__)

JOURNAL_GLOB = "move-*.jsonl"


class Journal:
    """Append-only JSON Lines file, fsync'd after every write so it survives a crash."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self._handle = handle

    @classmethod
    def create(cls, journal_dir: Path) -> Journal:
        journal_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
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
            raise FileProblem("journal", exc) from exc

    def close(self) -> None:
        with suppress(OSError):
            self._handle.close()


def _ends_with_newline(handle: IO[bytes]) -> bool:
    handle.seek(-1, os.SEEK_END)
    return handle.read(1) == b"\n"


def move_record(source: Path, target: Path, state: str, **extra: str) -> dict[str, Any]:
    return {"op": "move", "src": str(source), "dst": str(target), "state": state, **extra}


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


@dataclass
class JournalContents:
    header: dict[str, Any]
    entries: list[Entry]
    folders: list[Path]
    state: str


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
    return read_journal(journal).state


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
