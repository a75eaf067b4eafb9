"""Keywords for photo managers: the sort result written into XMP sidecars, journaled so it can be undone.

``photosort tag`` gives every photo the keyword of the group it sorts into, as
``photosort export`` would file it (labels beat predictions; an unsure photo
gets no keyword), in the sidecars digiKam, darktable and Lightroom read
(:mod:`photosort.core.sidecars` for which files, :mod:`photosort.core.xmp`
for what goes in them). The photos themselves are never written.

Three steps, as an export has: :func:`plan_tagging` reads every sidecar and
says what would change (a dry run prints it), :func:`run_tagging` writes it,
:func:`undo_tagging` puts back what was there before.

Journal
-------
Before a sidecar is written, the journal records what it held (its bytes,
compressed, or that there was none) and the digests before and after:
JSON Lines in ``journal_dir/tag-<time>-<token>.jsonl``, fsync'd after every
write, in the folder and with the lock of the move journals. ``{"op":
"begin", "kind": "tag", ...}``; ``{"op": "mkdir", "path"}`` before a folder is
made for ``--into``; per sidecar ``{"op": "sidecar", "path", "state":
"writing", "before", "before_hash", "after_hash"}``, then ``"done"``,
``"skipped"`` or ``"failed"``; ``{"op": "end", "state"}``. Undo appends
``"undone"`` per sidecar and ``{"op": "undo", "state": "done"}``. A run that
writes nothing leaves no journal, so undo always means the last run that
changed something.

Undo restores a sidecar only while it holds exactly what photosort wrote (its
digest is ``after_hash``): byte for byte what was there before, or no file
where there was none. A sidecar changed since (the user edited keywords in
digiKam) is refused and left as it is; one killed half-way is recognised by
holding ``before_hash`` already. The modification time is not put back: photo
managers look at it to notice a changed sidecar, and an undo is a change.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import os
import secrets
import time
import zlib
from collections.abc import Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ExportBusyError, ExportError, SidecarError, TaggingError
from .export.fileops import DISK_FULL_ERRNOS, FileProblem, fsync_dir
from .export.journal import Journal
from .export.lock import export_lock
from .paths import display_path
from .progress import CancelToken, ProgressFn, Reporter, check_cancel, is_cancelled
from .sidecars import (
    Listings,
    SidecarChanged,
    digest,
    existing_sidecars,
    make_folder,
    missing_folders,
    read_sidecar,
    replace_sidecar,
    sidecars_to_write,
)
from .wording import plural
from .xmp import XmpPacket

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .library import SortResult

log = logging.getLogger(__name__)

JOURNAL_GLOB = "tag-*.jsonl"
VERSION = 1
CREATE, UPDATE, UNCHANGED, SKIP = "create", "update", "unchanged", "skip"


@dataclass(frozen=True)
class SidecarChange:
    """What tagging does to one sidecar of one photo."""

    photo: str
    sidecar: str
    keyword: str | None
    action: str  # CREATE, UPDATE, UNCHANGED or SKIP
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    read: str | None = None  # digest of what the sidecar held when planned (None: there was none)
    reason: str = ""  # why it is skipped

    def to_json(self) -> dict:
        return {"photo": self.photo, "sidecar": self.sidecar, "keyword": self.keyword, "action": self.action,
                "added": list(self.added), "removed": list(self.removed),
                **({"reason": self.reason} if self.reason else {})}

    def describe(self) -> str:
        what = {CREATE: "create", UPDATE: "update", UNCHANGED: "unchanged", SKIP: "skip"}[self.action]
        changes = [f"+{k}" for k in self.added] + [f"-{k}" for k in self.removed]
        detail = f": {self.reason}" if self.reason else (f"  {' '.join(changes)}" if changes else "")
        return f"{what:9} {display_path(self.sidecar)}{detail}"


@dataclass
class TagPlan:
    """Every sidecar tagging would touch, and how many photos get a keyword."""

    changes: list[SidecarChange]
    roots: list[str]
    into: str | None
    tagged: int  # photos that get a keyword
    unsure: int  # photos that get none

    @property
    def pending(self) -> list[SidecarChange]:
        return [c for c in self.changes if c.action in (CREATE, UPDATE)]

    def counts(self) -> dict[str, int]:
        counts = {CREATE: 0, UPDATE: 0, UNCHANGED: 0, SKIP: 0}
        for change in self.changes:
            counts[change.action] += 1
        return counts

    def to_json(self) -> dict:
        return {"dry_run": True, "into": self.into, "photos_tagged": self.tagged, "photos_unsure": self.unsure,
                "counts": self.counts(), "sidecars": [c.to_json() for c in self.changes]}

    def describe(self) -> str:
        lines = [c.describe() for c in self.changes if c.action != UNCHANGED]
        counts = self.counts()
        lines.append(f"Would create {plural(counts[CREATE], 'sidecar')} and update {counts[UPDATE]:,}; "
                     f"{counts[UNCHANGED]:,} already up to date, {counts[SKIP]:,} skipped; "
                     f"{plural(self.tagged, 'photo')} with a keyword, {self.unsure:,} unsure (none).")
        lines.append("Nothing was written (dry run).")
        return "\n".join(lines)


def plan_tagging(result: SortResult, roots: Sequence[str], into: str | os.PathLike[str] | None = None,
                 progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> TagPlan:
    """Read the sidecars of every photo of ``result`` and say what writing its keyword would change.

    ``into``: write the sidecars into this folder, in folders mirroring the
    photos' own (under each root's name when there are several roots),
    instead of beside the photos.
    """
    into_dir = _checked_into(into)
    listings = Listings()
    reporter = Reporter("reading", len(result.photos), progress)
    changes: list[SidecarChange] = []
    seen: set[str] = set()
    tagged = unsure = 0
    for i, photo in enumerate(result.photos.paths):
        check_cancel(cancel)
        keyword = result.category_of(i)
        tagged, unsure = tagged + (keyword is not None), unsure + (keyword is None)
        folder = _sidecar_folder(photo, roots, into_dir)
        targets = sidecars_to_write(photo, folder, listings) if keyword is not None else \
            existing_sidecars(photo, folder, listings)  # an unsure photo: only a sidecar with old keywords changes
        for sidecar in targets:
            change = _plan_one(photo, sidecar, keyword, seen)
            if change is not None:
                changes.append(change)
        reporter.update(i + 1)
    return TagPlan(changes, list(roots), None if into_dir is None else str(into_dir), tagged, unsure)


def _checked_into(into: str | os.PathLike[str] | None) -> Path | None:
    if into is None:
        return None
    path = Path(os.path.abspath(Path(into).expanduser()))
    if path.exists() and not path.is_dir():
        raise TaggingError(f"{display_path(path)} is a file, not a folder: choose a folder for the sidecars.")
    return path


def _sidecar_folder(photo: str, roots: Sequence[str], into: Path | None) -> str:
    folder = os.path.dirname(photo)
    if into is None:
        return folder
    root = max((r for r in roots if folder == r or folder.startswith(r.rstrip(os.sep) + os.sep)), key=len,
               default=None)
    if root is None:
        raise TaggingError(f"{display_path(photo)} is not in the open folders.")
    relative = os.path.relpath(folder, root)
    base = into if len(roots) == 1 else into / (os.path.basename(root.rstrip(os.sep)) or "root")
    return os.path.normpath(base / relative)


def _plan_one(photo: str, sidecar: str, keyword: str | None, seen: set[str]) -> SidecarChange | None:
    if sidecar in seen:
        return SidecarChange(photo, sidecar, keyword, SKIP, reason="another photo's sidecar has this name")
    seen.add(sidecar)
    try:
        data = read_sidecar(sidecar)
        packet = XmpPacket.new() if data is None else XmpPacket.parse(data)
    except SidecarError as exc:
        return SidecarChange(photo, sidecar, keyword, SKIP, reason=f"left as it is: {exc}")
    change = packet.replace_own_keywords(keyword)
    if not change.changed:
        return None if keyword is None else SidecarChange(photo, sidecar, keyword, UNCHANGED, read=digest(data))
    action = CREATE if data is None else UPDATE
    return SidecarChange(photo, sidecar, keyword, action, change.added, change.removed, digest(data))


# ---- writing ------------------------------------------------------------------------------------
@dataclass
class TagResult:
    """What a tagging run did."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (sidecar, reason): left as it was
    failed: list[tuple[str, str]] = field(default_factory=list)
    journal: str | None = None
    cancelled: bool = False

    def to_json(self) -> dict:
        return {"created": len(self.created), "updated": len(self.updated), "unchanged": self.unchanged,
                "skipped": [{"sidecar": p, "reason": r} for p, r in self.skipped],
                "failed": [{"sidecar": p, "reason": r} for p, r in self.failed],
                "journal": self.journal, "cancelled": self.cancelled}

    def summary(self) -> str:
        """The headline both faces show (without a full stop: each adds what it says after it)."""
        return (f"Wrote keywords into {plural(len(self.created) + len(self.updated), 'sidecar')} "
                f"({len(self.created):,} new, {len(self.updated):,} updated); {self.unchanged:,} already up to date")

    def describe(self) -> str:
        lines = [self.summary() + "."]
        lines += [f"  skipped {display_path(p)}: {r}" for p, r in self.skipped[:20]]
        lines += [f"  could not write {display_path(p)}: {r}" for p, r in self.failed[:20]]
        if len(self.skipped) + len(self.failed) > 40:
            lines.append("  … and more (use --json for all)")
        if self.cancelled:
            lines.append("Cancelled: what was written is kept" + (" and can be undone with: photosort tag --undo"
                                                                    if self.journal else "."))
        elif self.journal:
            lines.append("Changed your mind? photosort tag --undo puts every sidecar back as it was.")
        return "\n".join(lines)


def run_tagging(plan: TagPlan, journal_dir: Path, progress: ProgressFn | None = None,
                cancel: CancelToken | None = None) -> TagResult:
    """Write the plan's sidecars, each journaled first; a sidecar changed since the plan read it is skipped."""
    result = TagResult(unchanged=plan.counts()[UNCHANGED])
    result.skipped += [(c.sidecar, c.reason) for c in plan.changes if c.action == SKIP]
    pending = plan.pending
    reporter = Reporter("tagging", len(pending), progress)
    with _locked(journal_dir):
        writer = _JournalWriter(journal_dir, plan)
        try:
            for done, change in enumerate(pending):
                if is_cancelled(cancel):
                    result.cancelled = True
                    break
                _write_one(change, writer, result)
                reporter.update(done + 1)
        except BaseException:
            writer.end("stopped")
            raise
        writer.end("cancelled" if result.cancelled else "finished")
        result.journal = writer.path
    return result


def _write_one(change: SidecarChange, writer: _JournalWriter, result: TagResult) -> None:
    """Read the sidecar again, merge, journal what it held, then replace it (or create it)."""
    path = change.sidecar
    try:
        before = read_sidecar(path)
        if digest(before) != change.read:
            raise SidecarChanged("it was changed by another program since photosort read it; run again")
        packet = XmpPacket.new() if before is None else XmpPacket.parse(before)
    except (SidecarError, SidecarChanged) as exc:
        result.skipped.append((path, f"left as it is: {exc}"))
        return
    if not packet.replace_own_keywords(change.keyword).changed:
        result.unchanged += 1
        return
    after = packet.to_bytes()
    try:
        for folder in missing_folders(os.path.dirname(path)):
            writer.write({"op": "mkdir", "path": folder})
            make_folder(folder)
        writer.write({"op": "sidecar", "path": path, "photo": change.photo, "state": "writing",
                      "before": _pack(before), "before_hash": digest(before), "after_hash": digest(after)})
        replace_sidecar(path, after, digest(before))
    except SidecarChanged as exc:
        writer.write({"op": "sidecar", "path": path, "state": "skipped"})
        result.skipped.append((path, f"left as it is: {exc}"))
        return
    except OSError as exc:
        _failed(writer, path, exc, result)
        return
    writer.write({"op": "sidecar", "path": path, "state": "done"})
    (result.created if before is None else result.updated).append(path)


def _failed(writer: _JournalWriter, path: str, exc: OSError, result: TagResult) -> None:
    """One sidecar that cannot be written fails alone; a full disk stops the run (what was done is kept)."""
    writer.write({"op": "sidecar", "path": path, "state": "failed"})
    if exc.errno in DISK_FULL_ERRNOS:
        raise TaggingError(f"Cannot write {display_path(path)}: the disk is full. Free some space and run again; "
                           "the sidecars written so far are kept (photosort tag --undo puts them back).") from exc
    reason = "the name is too long for this disk" if exc.errno == errno.ENAMETOOLONG else (exc.strerror or str(exc))
    result.failed.append((path, reason))


class _JournalWriter:
    """The tag journal, created only when the first sidecar is about to change."""

    def __init__(self, journal_dir: Path, plan: TagPlan) -> None:
        self._dir = journal_dir
        self._plan = plan
        self._journal: Journal | None = None

    @property
    def path(self) -> str | None:
        return None if self._journal is None else str(self._journal.path)

    def write(self, record: dict[str, Any]) -> None:
        try:
            if self._journal is None:
                self._journal = self._create()
            self._journal.write(record)
        except (FileProblem, OSError) as exc:
            error = exc.error if isinstance(exc, FileProblem) else exc
            raise TaggingError(f"Cannot write the tagging journal in {display_path(self._dir)} "
                               f"({error.strerror or error}): free some space or check that folder's permissions; "
                               "the sidecars written so far are kept.") from error

    def _create(self) -> Journal:
        self._dir.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 1_000_000_000:09d}"
        path = self._dir / f"tag-{stamp}-{secrets.token_hex(4)}.jsonl"
        journal = Journal(path, open(path, "x", encoding="utf-8"))  # noqa: SIM115 - kept open for the run
        fsync_dir(self._dir)
        journal.write({"op": "begin", "kind": "tag", "version": VERSION, "roots": self._plan.roots,
                       "into": self._plan.into, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                       "total": len(self._plan.pending)})
        return journal

    def end(self, state: str) -> None:
        if self._journal is not None:
            with suppress(TaggingError):
                self.write({"op": "end", "state": state})
            self._journal.close()


def _pack(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(zlib.compress(data, 6)).decode("ascii")


def _unpack(text: str | None) -> bytes | None:
    return None if text is None else zlib.decompress(base64.b64decode(text))


@contextmanager
def _locked(journal_dir: Path, create: bool = True) -> Iterator[None]:
    """The export lock: one export, tagging or undo of a library at a time."""
    with ExitStack() as stack:
        try:
            stack.enter_context(export_lock(journal_dir, create=create))
        except ExportBusyError as exc:
            raise ExportBusyError("Another photosort export, tagging or undo is running on this library: try "
                                  "again when it has finished; nothing was changed.") from exc
        except ExportError as exc:
            raise TaggingError(f"Cannot use photosort's journal folder {display_path(journal_dir)}: free some "
                               "space or check that folder's permissions; no sidecar was written or put back.") from exc
        yield


# ---- undo ---------------------------------------------------------------------------------------
@dataclass
class _Entry:
    path: str
    before: str | None
    before_hash: str | None
    after_hash: str | None
    state: str


@dataclass
class _Contents:
    header: dict[str, Any]
    entries: list[_Entry]
    folders: list[str]
    undone: bool


def _read(journal: Path) -> _Contents:
    try:
        lines = journal.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TaggingError(f"There is no tagging journal {display_path(journal)}: it was moved or deleted.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TaggingError(f"Cannot read the tagging journal {display_path(journal)} ({exc}).") from None
    header: dict[str, Any] = {}
    entries: dict[str, _Entry] = {}
    folders: list[str] = []
    undone = False
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line a crash cut short
            continue
        if not isinstance(record, dict):
            continue
        op = record.get("op")
        if op == "begin":
            header = record
        elif op == "mkdir" and isinstance(record.get("path"), str):
            folders.append(record["path"])
        elif op == "undo":
            undone = undone or record.get("state") == "done"
        elif op == "sidecar" and isinstance(record.get("path"), str):
            _replay(entries, record)
    return _Contents(header, list(entries.values()), folders, undone)


def _replay(entries: dict[str, _Entry], record: dict[str, Any]) -> None:
    path, state = record["path"], str(record.get("state", ""))
    if state == "writing":
        entries[path] = _Entry(path, record.get("before"), record.get("before_hash"), record.get("after_hash"), state)
    elif path in entries:
        entries[path].state = state


def tag_journals(journal_dir: Path) -> list[Path]:
    """Tagging runs that can still be undone, oldest first."""
    if not journal_dir.is_dir():
        return []
    out = []
    for path in sorted(journal_dir.glob(JOURNAL_GLOB)):
        try:
            contents = _read(path)
        except TaggingError as exc:
            log.warning("%s", exc)
            continue
        if not contents.undone and any(e.state in ("writing", "done") for e in contents.entries):
            out.append(path)
    return out


def latest_tag_journal(journal_dir: Path, folder: str | None = None) -> Path:
    """The last tagging run not undone yet (of photos in ``folder``, when given)."""
    journals = tag_journals(journal_dir)
    if folder is not None:
        journals = [j for j in journals if folder in _read(j).header.get("roots", [])]
    if not journals:
        where = f" of {display_path(folder)}" if folder else ""
        raise TaggingError(f"There is no tagging{where} to undo.")
    return journals[-1]


@dataclass
class TagUndoResult:
    """What undoing a tagging run did."""

    restored: list[str] = field(default_factory=list)  # sidecars given back their old bytes
    removed: list[str] = field(default_factory=list)  # sidecars photosort had created, removed again
    already: int = 0  # already as they were before (an interrupted run had not reached them)
    refused: list[tuple[str, str]] = field(default_factory=list)  # changed since photosort wrote them: left
    failed: list[tuple[str, str]] = field(default_factory=list)
    journal: str = ""
    cancelled: bool = False

    def to_json(self) -> dict:
        return {"restored": len(self.restored), "removed": len(self.removed), "already": self.already,
                "refused": [{"sidecar": p, "reason": r} for p, r in self.refused],
                "failed": [{"sidecar": p, "reason": r} for p, r in self.failed],
                "journal": self.journal, "cancelled": self.cancelled}

    def summary(self) -> str:
        """The headline both faces show (without a full stop: each adds what it says after it)."""
        return (f"Put back {plural(len(self.restored), 'sidecar')} as they were and removed "
                f"{plural(len(self.removed), 'sidecar')} photosort had created")

    def describe(self) -> str:
        lines = [self.summary() + "."]
        lines += [f"  left {display_path(p)}: {r}" for p, r in self.refused[:20]]
        lines += [f"  could not put back {display_path(p)}: {r}" for p, r in self.failed[:20]]
        if self.cancelled:
            lines.append("Cancelled: run photosort tag --undo again to finish.")
        return "\n".join(lines)


def undo_tagging(journal: Path, progress: ProgressFn | None = None,
                 cancel: CancelToken | None = None) -> TagUndoResult:
    """Give every sidecar of a tagging run back what it held before, where it still holds what photosort wrote."""
    contents = _read(journal)
    result = TagUndoResult(journal=str(journal))
    entries = [e for e in contents.entries if e.state in ("writing", "done")][::-1]
    reporter = Reporter("undoing", len(entries), progress)
    with _locked(journal.parent, create=False):
        appender = _reopen(journal)
        try:
            for done, entry in enumerate(entries):
                if is_cancelled(cancel):
                    result.cancelled = True
                    break
                if _undo_one(entry, result):
                    appender.write({"op": "sidecar", "path": entry.path, "state": "undone"})
                reporter.update(done + 1)
            if not result.cancelled:
                _remove_empty(contents.folders)
                appender.write({"op": "undo", "state": "done"})
        except FileProblem as exc:
            raise TaggingError(f"Cannot update the tagging journal {display_path(journal)} "
                               f"({exc.error.strerror or exc.error}).") from exc.error
        finally:
            appender.close()
    return result


def _reopen(journal: Path) -> Journal:
    try:
        return Journal.reopen(journal)
    except ExportError as exc:
        raise TaggingError(str(exc).replace("journal", "tagging journal", 1)) from exc


def _undo_one(entry: _Entry, result: TagUndoResult) -> bool:
    """Put one sidecar back; True when it is as it was before (now or already)."""
    try:
        current = digest(read_sidecar(entry.path))
    except SidecarError as exc:
        result.refused.append((entry.path, f"left as it is: {exc}"))
        return False
    if current == entry.before_hash:
        result.already += 1
        return True
    if current != entry.after_hash:
        result.refused.append((entry.path, "changed since photosort wrote it (left as it is)"))
        return False
    try:
        before = _unpack(entry.before)
        if digest(before) != entry.before_hash:
            raise ValueError("the journal's copy does not match its digest")
        replace_sidecar(entry.path, before, entry.after_hash)
    except SidecarChanged as exc:
        result.refused.append((entry.path, f"left as it is: {exc}"))
        return False
    except (ValueError, zlib.error) as exc:
        result.failed.append((entry.path, f"the journal is damaged ({exc})"))
        return False
    except OSError as exc:
        result.failed.append((entry.path, exc.strerror or str(exc)))
        return False
    (result.removed if before is None else result.restored).append(entry.path)
    return True


def _remove_empty(folders: list[str]) -> None:
    """Remove the folders a run made for ``--into``, deepest first, only where they are empty now."""
    for folder in reversed(folders):
        with suppress(OSError):
            os.rmdir(folder)
