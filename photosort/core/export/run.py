"""Carrying a plan out, finishing an interrupted move, and undoing a move.

:func:`run_export` carries an :class:`~photosort.core.export.plan.ExportPlan`
out. ``journal_dir`` is required for ``"move"``: the whole plan is written to
the journal, durably, before the first photo is touched. A full or unwritable
destination (or a link planted in it) raises :class:`ExportStopped` (an
:class:`~photosort.core.errors.ExportError` that carries the partial
:class:`ExportResult`); per-photo problems are listed in ``result.failed``;
cancelling returns a result with ``cancelled=True``.

:func:`resume_or_recover` finishes an interrupted (or cancelled, or stopped)
move; :func:`undo_move` puts every moved photo back, never overwriting; it is
safe to run again, and works on interrupted journals too (that is the "roll
back" recovery).

All three follow :mod:`photosort.core.progress`: ``progress`` receives
:class:`~photosort.core.progress.Progress` reports for the phases
``"exporting"``, ``"finishing"`` and ``"undoing"`` (throttled; the first and
the last always arrive), and ``cancel`` is a
:class:`~photosort.core.progress.CancelToken` polled between photos, never in
the middle of one. :class:`~photosort.core.errors.Cancelled` raised by the
progress callback stops the same way. What was done is kept either way.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, TypeVar

from photosort.core.errors import Cancelled, ExportError
from photosort.core.progress import CancelToken, ProgressFn, Reporter, is_cancelled

from .fileops import (
    DISK_FULL_ERRNOS,
    FileProblem,
    blame,
    copy_verified,
    discard,
    link_or_symlink,
    relocate,
    remove_original,
    same_file,
    same_photo,
)
from .journal import Entry, Journal, JournalContents, move_record, read_journal
from .plan import MODES, ExportPlan, PlannedMove, check_choice, check_destination
from .results import ExportResult, ExportStopped, Placed, UndoResult

log = logging.getLogger(__name__)

_Item = TypeVar("_Item")


@dataclass
class _Run:
    plan: ExportPlan
    root_real: str
    result: ExportResult
    journal: Journal | None = None
    made_folders: set[Path] = field(default_factory=set)


def run_export(
    plan: ExportPlan,
    *,
    journal_dir: Path | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ExportResult:
    """Carry out a plan. Per-photo problems go to ``result.failed``; a full or
    unwritable destination raises :class:`ExportStopped` after cleaning up."""
    check_choice("mode", plan.mode, MODES)
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
    check_destination(destination)
    try:
        destination.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(
            f"Cannot create the destination folder {destination} ({exc.strerror}): choose another folder; nothing was changed."
        ) from exc
    return os.path.realpath(destination)


def _start_journal(journal_dir: Path, plan: ExportPlan) -> Journal:
    """Write the whole plan down, durably, before the first photo is touched."""
    try:
        journal = Journal.create(journal_dir)
        header = {
            "op": "begin",
            "version": 1,
            "destination": str(plan.destination),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "total": len(plan.moves),
        }
        planned = [move_record(m.source, m.destination, "planned") for m in plan.moves]
        journal.write(header, *planned)
    except (OSError, FileProblem) as exc:
        error = exc.error if isinstance(exc, FileProblem) else exc
        raise ExportError(
            f"Cannot write the undo journal in {journal_dir} ({error.strerror or error}): free "
            "some space or check that folder's permissions; nothing was moved."
        ) from exc
    return journal


def _run_all(run: _Run, moves: list[PlannedMove], progress: ProgressFn | None, cancel: CancelToken | None) -> None:
    run.result.cancelled = _each(moves, "exporting", progress, cancel, lambda move: _export_step(run, move))
    _end_journal(run, "cancelled" if run.result.cancelled else "finished")


def _each(
    items: Sequence[_Item],
    phase: str,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
    step: Callable[[_Item], None],
) -> bool:
    """Do ``step`` for each item, polling ``cancel`` before each and reporting after;
    True when cancelled (by the token, or by Cancelled raised in a callback)."""
    reporter = Reporter(phase, len(items), progress)
    try:
        reporter.update(0, force=True)
        for done, item in enumerate(items, 1):
            if is_cancelled(cancel):
                return True
            step(item)
            reporter.update(done)
    except Cancelled:
        return True
    return False


def _end_journal(run: _Run, state: str, **extra: str) -> None:
    if run.journal is not None:
        with suppress(FileProblem):
            run.journal.write({"op": "end", "state": state, **extra})


def _export_step(run: _Run, move: PlannedMove) -> None:
    """One photo: success and per-photo failures are recorded; fatal ones stop all."""
    try:
        try:
            placed = _export_one(run, move)
        except FileProblem as problem:
            if problem.fatal:
                raise
            _record_failure(run, move.source, move.destination, problem.reason)
            return
        run.result.placed.append(placed)
        run.result.done += 1
    except FileProblem as problem:
        _stop(run, move, problem)


def _export_one(run: _Run, move: PlannedMove) -> Placed:
    _ready_folder(run, move.destination.parent)
    if run.plan.mode == "copy":
        return Placed(move.source, copy_verified(move.source, move.destination), "copy")
    if run.plan.mode == "link":
        final, method = link_or_symlink(move.source, move.destination)
        return Placed(move.source, final, method)
    return _journaled_move(run, move)


def _journaled_move(run: _Run, move: PlannedMove) -> Placed:
    journal = run.journal
    assert journal is not None, "moves are always journaled"
    source = move.source

    def retarget(candidate: Path) -> None:
        journal.write(move_record(source, candidate, "retarget"))

    def temp(path: Path) -> None:
        journal.write({"op": "move", "src": str(source), "tmp": str(path), "state": "copying"})

    final, method = relocate(source, move.destination, on_retarget=retarget, on_temp=temp)
    journal.write(move_record(source, final, "done", method=method))
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
            raise FileProblem("destination", exc) from exc
        run.made_folders.add(folder)
    expected = os.path.join(run.root_real, folder.name)
    if folder.is_symlink() or not folder.is_dir() or os.path.realpath(folder) != expected:
        raise FileProblem(
            "unsafe",
            OSError(errno.ELOOP, "not a plain folder"),
            reason=f"{folder} is a link or a file, not a plain folder, so nothing was "
            "written through it: remove it or choose another destination",
        )


def _record_failure(run: _Run, source: Path, target: Path, reason: str) -> None:
    log.warning("Could not export %s: %s", source, reason)
    if run.journal is not None:
        run.journal.write(move_record(source, target, "failed", reason=reason))
    run.result.failed.append((source, reason))


def _stop(run: _Run, move: PlannedMove, problem: FileProblem) -> NoReturn:
    """Stop the whole export with a message that says what to do; temp files are
    already gone and every photo is in its old or new place."""
    run.result.failed.append((move.source, problem.reason))
    if run.journal is not None:
        with suppress(FileProblem):
            run.journal.write(move_record(move.source, move.destination, "failed"))
    _end_journal(run, "stopped", reason=problem.reason)
    message = _stop_message(run, problem)
    log.error("%s", message)
    raise ExportStopped(message, run.result) from problem.error


def _photos(count: int) -> str:
    return "1 photo" if count == 1 else f"{count} photos"


def _stop_message(run: _Run, problem: FileProblem) -> str:
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
    if code in DISK_FULL_ERRNOS:
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
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ExportResult:
    """Finish a move that was interrupted (killed, cancelled or stopped).

    For each photo not yet done it looks at where the photo really is: both
    names of the same file -> the source name is removed; only the new name ->
    done; only the old name -> it is moved now. Leftover temp files are removed.
    To roll back instead, call :func:`undo_move`, which handles interrupted
    journals the same careful way.
    """
    contents = read_journal(journal)
    result = ExportResult(journal=journal, mode="move")
    if contents.state == "undone":
        return result
    destination = Path(contents.header.get("destination") or _guess_root(contents))
    plan = ExportPlan(destination, "move", [], [])
    run = _Run(plan, _prepare_root(destination), result, Journal.reopen(journal))
    unfinished = [e for e in contents.entries if e.state not in ("done", "undone")]
    try:
        _resume_all(run, unfinished, progress, cancel)
    finally:
        if run.journal is not None:
            run.journal.close()
    return result


def _guess_root(contents: JournalContents) -> Path:
    if not contents.entries:
        raise ExportError("The journal has no header and no photos: there is nothing to finish.")
    return contents.entries[0].dst.parent.parent


def _resume_all(run: _Run, entries: list[Entry], progress: ProgressFn | None, cancel: CancelToken | None) -> None:
    run.result.cancelled = _each(entries, "finishing", progress, cancel, lambda entry: _resume_entry(run, entry))
    _end_journal(run, "cancelled" if run.result.cancelled else "finished", resumed="yes")


def _resume_entry(run: _Run, entry: Entry) -> None:
    for temp in entry.temps:
        discard(temp)  # a partial copy is never the only copy: the source goes last
    holder = _last_existing(entry.candidates)
    source_here = os.path.lexists(entry.src)
    if holder is not None and (not source_here or same_photo(entry.src, holder, compare_bytes=entry.copied)):
        _complete_half_done(run, entry, holder, source_here)
        return
    if not source_here:
        reason = "the photo is neither at its old nor at its new place (moved or deleted)"
        with _journal_guard(run, entry):
            _record_failure(run, entry.src, entry.dst, reason)
        return
    move = PlannedMove(entry.src, entry.dst, entry.dst.parent.name)
    _export_step(run, move)


def _complete_half_done(run: _Run, entry: Entry, holder: Path, source_here: bool) -> None:
    """The photo already has its new name: drop the old one and record it done."""
    with _journal_guard(run, entry):
        try:
            if source_here:
                remove_original(entry.src, holder)
        except FileProblem as problem:
            _record_failure(run, entry.src, entry.dst, problem.reason)
            return
        assert run.journal is not None
        run.journal.write(move_record(entry.src, holder, "done", method="move"))
        run.result.placed.append(Placed(entry.src, holder, "move"))
        run.result.done += 1


@contextmanager
def _journal_guard(run: _Run, entry: Entry) -> Iterator[None]:
    """A journal that cannot be written stops everything, as during the export."""
    try:
        yield
    except FileProblem as problem:
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
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> UndoResult:
    """Put every photo of a move back where it was, newest first.

    Never overwrites: if the original place is taken, the photo is restored next
    to it with a suffix and listed in ``renamed``. Photos already restored are
    skipped, so running it again (after a crash or a cancel) is safe; it also
    rolls back an interrupted move. Removes the folders the move created, if empty.
    """
    contents = read_journal(journal)
    result = UndoResult(journal=journal)
    if contents.state == "undone":
        return result
    entries = [e for e in reversed(contents.entries) if e.state != "undone"]
    writer = Journal.reopen(journal)
    try:
        _undo_all(writer, entries, result, progress, cancel)
        if not result.cancelled:
            _remove_empty_folders(contents.folders)
            writer.write({"op": "undo", "state": "done"})
    except FileProblem as problem:
        raise ExportError(_undo_stop_message(problem, result)) from problem.error
    finally:
        writer.close()
    log.info("Undo: %d restored, %d failed", result.restored, len(result.failed))
    return result


def _undo_all(
    writer: Journal,
    entries: list[Entry],
    result: UndoResult,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> None:
    result.cancelled = _each(entries, "undoing", progress, cancel, lambda entry: _undo_entry(writer, entry, result))


def _undo_entry(writer: Journal, entry: Entry, result: UndoResult) -> None:
    for temp in entry.temps:
        discard(temp)
    try:
        restored_to, moved_back = _restore(writer, entry)
    except FileProblem as problem:
        if problem.fatal:
            raise
        result.failed.append((entry.src, problem.reason))
        return
    if restored_to is None:
        reason = f"the photo is no longer at {entry.dst} (moved or deleted since the export)"
        result.failed.append((entry.src, reason))
        return
    writer.write(move_record(entry.src, entry.dst, "undone", restored_to=str(restored_to)))
    if moved_back:
        result.restored += 1
    if restored_to != entry.src:
        result.renamed.append((entry.src, restored_to))


def _restore(writer: Journal, entry: Entry) -> tuple[Path | None, bool]:
    """Bring one photo back. Returns where it now is (None if it cannot be found)
    and whether it had been moved at all (photos a stopped move never reached
    are not counted as restored)."""
    source_here = os.path.lexists(entry.src)
    was_moved = entry.state == "done"
    # A finished move knows its final name; an unfinished one may have tried several.
    holder = _last_existing([entry.dst] if was_moved else entry.candidates)
    if holder is None:
        return _already_restored(entry, source_here), was_moved
    if source_here and same_photo(entry.src, holder, entry.copied and not was_moved):
        discard(holder)  # the photo has both names: keep the original one
        return entry.src, True
    if source_here and not was_moved:
        return entry.src, False  # never moved; what is at the new name is someone else's file
    for earlier in entry.restore_candidates:
        if os.path.lexists(earlier) and same_file(earlier, holder):
            discard(holder)  # an earlier undo already gave it its restored name
            return earlier, True
    return _move_back(writer, entry, holder), True


def _already_restored(entry: Entry, source_here: bool) -> Path | None:
    earlier = _last_existing(entry.restore_candidates)
    if earlier is not None:
        return earlier
    return entry.src if source_here else None


def _move_back(writer: Journal, entry: Entry, holder: Path) -> Path:
    def retarget(candidate: Path) -> None:
        writer.write(move_record(entry.src, holder, "restoring", to=str(candidate)))

    def temp(path: Path) -> None:
        writer.write({"op": "move", "src": str(entry.src), "tmp": str(path), "state": "copying"})

    with blame("destination"):
        entry.src.parent.mkdir(parents=True, exist_ok=True)
    final, _ = relocate(holder, entry.src, on_retarget=retarget, on_temp=temp)
    return final


def _remove_empty_folders(folders: list[Path]) -> None:
    """Remove the category folders the move created, only if they are empty now."""
    for folder in reversed(folders):
        with suppress(OSError):
            os.rmdir(folder)


def _undo_stop_message(problem: FileProblem, result: UndoResult) -> str:
    done = f"{_photos(result.restored)} restored so far; nothing was lost."
    if problem.side == "journal":
        return (
            f"Cannot update the undo journal ({problem.error.strerror}): free some space "
            f"or check its folder's permissions, then undo again; {done}"
        )
    if problem.error.errno in DISK_FULL_ERRNOS:
        return f"The original photos' disk is full: free some space, then undo again; {done}"
    return f"Cannot write to the original folder ({problem.error.strerror}): fix its permissions, then undo again; {done}"
