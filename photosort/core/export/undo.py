"""Undoing a move: every photo back where it was, checked by content, never a stranger's file.

:func:`undo_move` reads the move's journal and, newest photo first, looks at
where each photo really is. A file counts as the photo only when it has the
size and BLAKE2b hash the journal recorded before the photo was touched
(version 2 journals; see :mod:`.journal`), so:

* a file that took a moved photo's name after the user deleted or changed the
  photo is never moved into the library: it is left alone and reported in
  ``failed``;
* the photo already back at its old place (an undo killed after copying it
  back across disks, before deleting the copy in the destination) is the
  finished step: the destination copy is removed, and no `` (2)`` duplicate is
  ever made; running undo again after a kill or a cancel is always safe;
* the original place taken by another file: the photo goes beside it with a
  `` (n)`` suffix (listed in ``renamed``); nothing is overwritten.

Version 1 journals (no recorded content) are undone by the rules they were
written for (same inode, or same bytes after a cross-disk copy). The undo holds
the data folder's export lock, and reports progress in the phase ``"undoing"``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from photosort.core.errors import ExportError
from photosort.core.progress import CancelToken, ProgressFn

from .carry import refuse_rename, same_bytes, sidecar_target
from .destination import clean_leftovers
from .fileops import (
    DISK_FULL_ERRNOS,
    Content,
    FileProblem,
    blame,
    discard,
    is_placeholder,
    relocate,
    remove_empty_folders,
    same_file,
    same_photo,
)
from .journal import Entry, Journal, JournalContents, move_record, read_journal, require_journal
from .lock import export_lock
from .results import UndoResult
from .run import each_step, new_place_of, photos, target_folders

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Outcome:
    """Where one photo is after undoing it (None: it could not be found), whether it
    had been moved at all, and why not when it could not be restored."""

    place: Path | None
    moved_back: bool
    reason: str = ""


def undo_move(
    journal: Path,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> UndoResult:
    """Put every photo of a move back where it was, newest first.

    Never overwrites and never takes another file for the photo (see the module
    docstring). Photos already restored are skipped, so running it again (after
    a crash or a cancel) is safe; it also rolls back an interrupted move.
    Removes the folders the move created, if empty, and temporary files a killed
    run left in the destination.
    """
    require_journal(journal)
    with export_lock(journal.parent, create=False):
        return _undo_locked(journal, progress, cancel)


def _undo_locked(journal: Path, progress: ProgressFn | None, cancel: CancelToken | None) -> UndoResult:
    contents = read_journal(journal)
    result = UndoResult(journal=journal)
    if contents.state == "undone":
        return result
    _clean_destination(contents)
    entries = _photo_then_sidecars([e for e in reversed(contents.entries) if e.state != "undone"])
    restore = _restore if contents.version >= 2 else _restore_legacy
    writer = Journal.reopen(journal)
    undoing = _Undoing(writer, result, restore, {e.src: e for e in contents.entries if e.sidecar_of is None})
    try:
        result.cancelled = each_step(entries, "undoing", progress, cancel, lambda entry: _undo_entry(undoing, entry))
        if not result.cancelled:
            remove_empty_folders(contents.folders)
            writer.write({"op": "undo", "state": "done"})
    except FileProblem as problem:
        raise ExportError(_undo_stop_message(problem, result)) from problem.error
    finally:
        writer.close()
    log.info("Undo: %d restored, %d failed", result.restored, len(result.failed))
    return result


def _clean_destination(contents: JournalContents) -> None:
    destination = contents.header.get("destination")
    if destination and os.path.isdir(destination):
        clean_leftovers(Path(destination), target_folders(contents))


def _photo_then_sidecars(entries: list[Entry]) -> list[Entry]:
    """Each photo, then its sidecars (which follow it back only once it is back)."""
    sidecars: dict[Path, list[Entry]] = {}
    for entry in entries:
        if entry.sidecar_of is not None:
            sidecars.setdefault(entry.sidecar_of, []).append(entry)
    ordered: list[Entry] = []
    for entry in entries:
        if entry.sidecar_of is None:
            ordered += [entry, *sidecars.pop(entry.src, [])]
    return ordered + [e for group in sidecars.values() for e in group]  # their photos were put back earlier


@dataclass
class _Undoing:
    writer: Journal
    result: UndoResult
    restore: Callable[[Journal, Entry], _Outcome]
    photos: dict[Path, Entry]  # the journal's photos by source, for their sidecars
    stayed: set[Path] = field(default_factory=set)  # photos that could not be put back: their sidecars stay too


def _undo_entry(undoing: _Undoing, entry: Entry) -> None:
    if entry.sidecar_of is not None:
        _undo_sidecar(undoing, entry, entry.sidecar_of)
        return
    writer, result, restore = undoing.writer, undoing.result, undoing.restore
    for temp in entry.temps:
        discard(temp)
    for place in [entry.src, *entry.restore_candidates]:
        if is_placeholder(place):
            discard(place)  # a name reserved by a copy back that was killed before it was filled
    try:
        outcome: _Outcome = restore(writer, entry)
    except FileProblem as problem:
        if problem.fatal:
            raise
        result.failed.append((entry.src, problem.reason))
        return
    if outcome.place is None:
        log.warning("Could not put back %s: %s", entry.src, outcome.reason)
        result.failed.append((entry.src, outcome.reason))
        undoing.stayed.add(entry.src)
        return
    writer.write(move_record(entry.src, entry.dst, "undone", restored_to=str(outcome.place)))
    if outcome.moved_back:
        result.restored += 1
        result.moved_back.append((entry.dst, outcome.place))
    if outcome.place != entry.src:
        result.renamed.append((entry.src, outcome.place))


def _undo_sidecar(undoing: _Undoing, entry: Entry, photo: Path) -> None:
    """A sidecar goes back to its own old name (never a `` (n)`` one), checked by content as a photo is."""
    result = undoing.result
    if photo in undoing.stayed:
        if entry.touched:
            result.sidecars_failed.append((entry.src, "left beside its photo, which could not be put back"))
        return
    for temp in entry.temps:
        discard(temp)
    if is_placeholder(entry.src):
        discard(entry.src)
    try:
        outcome: _Outcome = undoing.restore(undoing.writer, entry)
    except FileProblem as problem:
        if problem.fatal:
            raise
        result.sidecars_failed.append((entry.src, problem.reason))
        return
    if outcome.place is None:
        result.sidecars_failed.append((entry.src, outcome.reason.replace("photo", "sidecar")))
        return
    if photo in undoing.photos:
        _drop_second_copies(entry, undoing.photos[photo])
    undoing.writer.write(move_record(entry.src, entry.dst, "undone", restored_to=str(outcome.place)))
    result.sidecars += outcome.moved_back


def _drop_second_copies(sidecar: Entry, photo: Entry) -> None:
    """Where undo dropped the photo's second name (the photo was back at its old place and also in the
    destination, say a copy export filled the name a killed move had picked), the sidecar's identical
    twin beside it goes too, so it does not stay behind without its photo."""
    for place in photo.candidates:
        twin = sidecar_target(photo.src, sidecar.src, place)
        if twin != sidecar.src and not os.path.lexists(place) and os.path.lexists(twin) and same_bytes(sidecar.src, twin):
            log.info("Removing %s: an identical copy of %s, whose photo is no longer beside it", twin, sidecar.src)
            discard(twin)


def _restore(writer: Journal, entry: Entry) -> _Outcome:
    """A version 2 entry: find the recorded content at the new place(s) and the old one(s)."""
    content = entry.content
    holder = new_place_of(entry)
    if content is None:  # not recorded, so never touched by the move; at most a second name of the source
        if holder is not None:
            discard(holder)
        return _Outcome(entry.src, holder is not None)
    was_moved = entry.state == "done"
    places = [entry.dst] if was_moved else list(reversed(entry.candidates))
    back = _back_already(entry, content, holder)
    if holder is not None and back is not None:
        discard(holder)  # both names, or a copy back that was killed before the delete: keep the old place
        return _Outcome(back, True)
    if holder is not None:
        return _Outcome(_move_back(writer, entry, holder, content), True)
    if back is not None:
        return _Outcome(back, was_moved)
    return _Outcome(None, False, _not_found_reason(entry, places))


def _back_already(entry: Entry, content: Content, holder: Path | None) -> Path | None:
    """The old place, or a place an earlier undo restored it to, if it holds the photo."""
    for place in [entry.src, *reversed(entry.restore_candidates)]:
        if (holder is not None and same_file(place, holder)) or content.is_at(place):
            return place
    return None


def _not_found_reason(entry: Entry, places: list[Path]) -> str:
    taken = next((place for place in places if os.path.lexists(place)), None)
    if taken is not None:
        return (f"the file now at {taken} is no longer the exported photo (changed or replaced since the "
                "export), so it was left where it is")
    return f"the photo is no longer at {entry.dst} (moved or deleted since the export)"


def _move_back(writer: Journal, entry: Entry, holder: Path, content: Content | None = None) -> Path:
    def retarget(candidate: Path) -> None:
        if entry.sidecar_of is not None:
            refuse_rename(entry.src)
        writer.write(move_record(entry.src, holder, "restoring", to=str(candidate)))

    def temp(path: Path) -> None:
        writer.write({"op": "move", "src": str(entry.src), "tmp": str(path), "state": "copying"})

    with blame("destination"):
        entry.src.parent.mkdir(parents=True, exist_ok=True)
    final, _ = relocate(holder, entry.src, on_retarget=retarget, on_temp=temp, expect=content)
    return final


# --------------------------------------------------------------------------- version 1 journals


def _restore_legacy(writer: Journal, entry: Entry) -> _Outcome:
    """A version 1 entry: same inode, or same bytes for a cross-disk copy; a photo
    not found is reported, one never moved is left alone."""
    source_here = os.path.lexists(entry.src)
    was_moved = entry.state == "done"
    holder = _last_existing([entry.dst] if was_moved else entry.candidates)
    if holder is None:
        place = _last_existing(entry.restore_candidates) or (entry.src if source_here else None)
        reason = f"the photo is no longer at {entry.dst} (moved or deleted since the export)"
        return _Outcome(place, was_moved, "" if place else reason)
    if source_here and same_photo(entry.src, holder, entry.copied and not was_moved):
        discard(holder)  # the photo has both names: keep the original one
        return _Outcome(entry.src, True)
    if source_here and not was_moved:
        return _Outcome(entry.src, False)  # never moved; what is at the new name is someone else's file
    for earlier in entry.restore_candidates:
        if os.path.lexists(earlier) and same_file(earlier, holder):
            discard(holder)  # an earlier undo already gave it its restored name
            return _Outcome(earlier, True)
    return _Outcome(_move_back(writer, entry, holder), True)


def _last_existing(paths: list[Path]) -> Path | None:
    return next((path for path in reversed(paths) if os.path.lexists(path)), None)


def _undo_stop_message(problem: FileProblem, result: UndoResult) -> str:
    done = f"{photos(result.restored)} restored so far; nothing was lost."
    if problem.side == "journal":
        return (
            f"Cannot update the undo journal ({problem.error.strerror}): free some space "
            f"or check its folder's permissions, then undo again; {done}"
        )
    if problem.error.errno in DISK_FULL_ERRNOS:
        return f"The original photos' disk is full: free some space, then undo again; {done}"
    return f"Cannot write to the original folder ({problem.error.strerror}): fix its permissions, then undo again; {done}"
