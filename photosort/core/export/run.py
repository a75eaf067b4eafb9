"""Carrying a plan out, and finishing an interrupted move.

:func:`run_export` carries an :class:`~photosort.core.export.plan.ExportPlan`
out. ``journal_dir`` is required for ``"move"``: the whole plan is written to
the journal, durably, before the first photo is touched. A full or unwritable
destination (or a link planted in it) raises :class:`ExportStopped` (an
:class:`~photosort.core.errors.ExportError` that carries the partial
:class:`ExportResult`); per-photo problems are listed in ``result.failed``;
cancelling returns a result with ``cancelled=True``.

Running an export again is safe: a photo whose bytes the target folder already
holds (under its name or a `` (n)`` variant) is "already there" and listed in
``result.already`` instead of being written twice; temporary files a killed
run left are removed first; a move that moved nothing leaves no journal behind
(so "undo the last move" never picks it). With ``journal_dir``, the run holds
the data folder's export lock (:mod:`.lock`): a second export, finish or undo
of the same library is refused with
:class:`~photosort.core.errors.ExportBusyError` rather than run alongside.

:func:`resume_or_recover` finishes an interrupted (or cancelled, or stopped)
move, recognising each photo by the size and hash the journal recorded;
:func:`~photosort.core.export.undo.undo_move` rolls one back.

Both follow :mod:`photosort.core.progress`: ``progress`` receives
:class:`~photosort.core.progress.Progress` reports for the phases
``"exporting"`` and ``"finishing"`` (throttled; the first and the last always
arrive), and ``cancel`` is a :class:`~photosort.core.progress.CancelToken`
polled between photos, never in the middle of one.
:class:`~photosort.core.errors.Cancelled` raised by the progress callback
stops the same way. What was done is kept either way.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, TypeVar

from photosort.core.errors import Cancelled, ExportError
from photosort.core.progress import CancelToken, ProgressFn, Reporter, is_cancelled
from photosort.core.wording import plural

from .carry import carry_sidecars, record_sidecar_failure, sidecar_target
from .destination import AlreadyThere, clean_leftovers
from .fileops import (
    DISK_FULL_ERRNOS,
    Content,
    FileProblem,
    LazyContent,
    copy_verified,
    discard,
    link_or_symlink,
    relocate,
    remove_empty_folders,
    remove_original,
    same_file,
    same_photo,
)
from .journal import VERSION, Entry, Journal, JournalContents, move_record, moving_record, read_journal, require_journal
from .lock import export_lock
from .marker import MarkerWriter
from .plan import MODES, ExportPlan, PlannedMove, check_choice, check_destination
from .results import ExportResult, ExportStopped, Placed

log = logging.getLogger(__name__)

_Item = TypeVar("_Item")


@dataclass
class _Run:
    plan: ExportPlan
    root_real: str
    result: ExportResult
    journal: Journal | None = None
    existing: AlreadyThere = field(default_factory=AlreadyThere)
    marker: MarkerWriter | None = None
    made_folders: set[Path] = field(default_factory=set)
    created_folders: list[Path] = field(default_factory=list)
    photo_places: dict[Path, Path] = field(default_factory=dict)  # moved photo -> its new place (for its sidecars)


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
    with held_lock(journal_dir):
        return _run_locked(plan, journal_dir, progress, cancel)


def held_lock(journal_dir: Path | None) -> AbstractContextManager[None]:
    """The data folder's export lock; a caller with no journal folder (a copy driven
    through the API alone) has no library to share, so it runs unlocked."""
    return nullcontext() if journal_dir is None else export_lock(journal_dir)


def _run_locked(
    plan: ExportPlan, journal_dir: Path | None, progress: ProgressFn | None, cancel: CancelToken | None
) -> ExportResult:
    run = _Run(plan, _prepare_root(plan.destination), ExportResult(skipped=list(plan.skipped), mode=plan.mode),
               existing=AlreadyThere(accept_links_to_source=plan.mode == "link"), marker=MarkerWriter(plan.destination))
    clean_leftovers(plan.destination, {move.destination.parent for move in plan.moves})
    if plan.mode == "move" and journal_dir is not None:
        run.journal = _start_journal(journal_dir, plan)
        run.result.journal = run.journal.path
    settled = False
    try:
        _run_all(run, plan.moves, progress, cancel)
        settled = True
    except ExportStopped:
        settled = True
        raise
    finally:
        _close_journal(run, settled)
    result = run.result
    log.info("Export %s: %d done, %d already there, %d failed", plan.mode, result.done, len(result.already),
             len(result.failed))
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
    """Write the whole plan down, durably, before the first photo is touched; a journal
    that could not be written whole is removed, so it never poses as a move."""
    journal: Journal | None = None
    try:
        journal = Journal.create(journal_dir)
        header = {
            "op": "begin",
            "version": VERSION,
            "destination": str(plan.destination),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "total": len(plan.moves),
        }
        planned = [record for m in plan.moves for record in _planned_records(m)]
        journal.write(header, *planned)
    except (OSError, FileProblem) as exc:
        if journal is not None:
            journal.discard()
        error = exc.error if isinstance(exc, FileProblem) else exc
        raise ExportError(
            f"Cannot write the undo journal in {journal_dir} ({error.strerror or error}): free "
            "some space or check that folder's permissions; nothing was moved."
        ) from exc
    return journal


def _planned_records(move: PlannedMove) -> list[dict[str, str]]:
    """The photo's "planned" record, then one per sidecar going along with it."""
    return [move_record(move.source, move.destination, "planned"),
            *(move_record(s, sidecar_target(move.source, s, move.destination), "planned", sidecar_of=str(move.source))
              for s in move.sidecars)]


def _close_journal(run: _Run, settled: bool) -> None:
    """A settled run (finished, cancelled or stopped, not killed) that moved nothing
    has nothing to undo: its journal and the empty folders it made go."""
    if run.marker is not None:
        run.marker.close()
    if run.journal is None:
        return
    if settled and run.result.done == 0:
        run.journal.discard()
        remove_empty_folders(run.created_folders)
        run.result.journal = None
        log.info("The move moved nothing; its journal %s was removed", run.journal.path)
    else:
        run.journal.close()


def _run_all(run: _Run, moves: list[PlannedMove], progress: ProgressFn | None, cancel: CancelToken | None) -> None:
    run.result.cancelled = each_step(moves, "exporting", progress, cancel, lambda move: _export_step(run, move))
    _end_journal(run, "cancelled" if run.result.cancelled else "finished")


def each_step(
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
        if placed is not None:
            run.result.placed.append(placed)
            run.result.done += 1
            run.photo_places[move.source] = placed.destination
    except FileProblem as problem:
        _stop(run, move, problem)
    try:
        _carry_along(run, move, placed)
    except FileProblem as problem:  # the disk is full or the journal cannot be written: the photo itself went
        _stop(run, move, problem, photo_failed=False)


def _carry_along(run: _Run, move: PlannedMove, placed: Placed | None) -> None:
    """The photo's sidecars go where it went; a photo a move found already there stays, and so do they."""
    if not move.sidecars:
        return
    if placed is not None:
        carry_sidecars(run.plan.mode, run.journal, run.result, move.source, move.sidecars, placed.destination)
        return
    already = run.result.already[-1] if run.result.already else None  # _export_one has just listed it
    if already is not None and already[0] == move.source and run.plan.mode != "move":
        carry_sidecars(run.plan.mode, run.journal, run.result, move.source, move.sidecars, already[1], already=True)


def _export_one(run: _Run, move: PlannedMove) -> Placed | None:
    """Place one photo, or None when the target folder already holds its bytes."""
    _ready_folder(run, move.destination.parent)
    photo = LazyContent(move.source)
    existing = run.existing.find(move.destination, photo)
    if existing is not None:
        log.info("%s is already there as %s; not written again", move.source, existing)
        run.result.already.append((move.source, existing))
        _note_placed(run, existing)
        return None
    placed = _place(run, move, photo)
    run.existing.add(placed.destination)
    _note_placed(run, placed.destination)
    return placed


def _note_placed(run: _Run, path: Path) -> None:
    """Copies and links are listed in the destination's marker, so that indexing leaves
    them out; a moved photo is the original, so its name is taken off that list."""
    if run.marker is None:
        return
    if run.plan.mode == "move":
        run.marker.moved(path)
    else:
        run.marker.copied(path)


def _place(run: _Run, move: PlannedMove, photo: LazyContent) -> Placed:
    if run.plan.mode == "copy":
        return Placed(move.source, copy_verified(move.source, move.destination), "copy")
    if run.plan.mode == "link":
        final, method = link_or_symlink(move.source, move.destination)
        return Placed(move.source, final, method)
    return _journaled_move(run, move, photo.content)


def _journaled_move(run: _Run, move: PlannedMove, content: Content) -> Placed:
    """Record what the photo is (size, hash), then move it; undo and finishing
    recognise it by that record, never by its name alone."""
    journal = run.journal
    assert journal is not None, "moves are always journaled"
    source = move.source

    def retarget(candidate: Path) -> None:
        journal.write(move_record(source, candidate, "retarget"))

    def temp(path: Path) -> None:
        journal.write({"op": "move", "src": str(source), "tmp": str(path), "state": "copying"})

    journal.write(moving_record(source, move.destination, content))
    final, method = relocate(source, move.destination, on_retarget=retarget, on_temp=temp, expect=content)
    journal.write(move_record(source, final, "done", method=method))
    return Placed(source, final, method)


def target_folders(contents: JournalContents) -> set[Path]:
    """Every folder a journaled move wrote into (or tried to), for cleaning up leftovers there."""
    return {place.parent for entry in contents.entries for place in [entry.dst, *entry.candidates, *entry.temps]}


def _ready_folder(run: _Run, folder: Path) -> None:
    """Create the target folder and those above it, top down, each made sure to be a
    plain folder where the plan put it before anything is created inside it: a link
    planted at any level must not redirect writes."""
    parts = _parts_below_root(run, folder)
    for depth in range(1, len(parts) + 1):
        level = run.plan.destination.joinpath(*parts[:depth])
        if level not in run.made_folders:
            _make_folder(run, level)
        _check_plain(run, level, os.path.join(run.root_real, *parts[:depth]))


def _parts_below_root(run: _Run, folder: Path) -> tuple[str, ...]:
    """``folder``'s levels below the root (``("Cats", "2019")``); a folder outside the root is refused."""
    try:
        relative = os.path.relpath(folder, run.plan.destination)
    except ValueError:  # another drive (Windows)
        _refuse(folder)
    if relative == os.curdir:
        return ()
    parts = Path(relative).parts
    if parts[0] == os.pardir or os.path.isabs(relative):
        _refuse(folder)
    return parts


def _make_folder(run: _Run, folder: Path) -> None:
    try:
        os.mkdir(folder)
        run.created_folders.append(folder)
        if run.journal is not None:
            run.journal.write({"op": "mkdir", "path": str(folder)})
    except FileExistsError:
        pass
    except OSError as exc:
        raise FileProblem("destination", exc) from exc
    run.made_folders.add(folder)


def _check_plain(run: _Run, folder: Path, expected: str) -> None:
    if folder.is_symlink() or not folder.is_dir() or os.path.realpath(folder) != expected:
        _refuse(folder)


def _refuse(folder: Path) -> NoReturn:
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


def _stop(run: _Run, move: PlannedMove, problem: FileProblem, photo_failed: bool = True) -> NoReturn:
    """Stop the whole export with a message that says what to do; temp files are
    already gone and every photo is in its old or new place."""
    if not photo_failed:
        _end_journal(run, "stopped", reason=problem.reason)
        raise ExportStopped(_stop_message(run, problem), run.result) from problem.error
    run.result.failed.append((move.source, problem.reason))
    if run.journal is not None:
        with suppress(FileProblem):
            run.journal.write(move_record(move.source, move.destination, "failed"))
    _end_journal(run, "stopped", reason=problem.reason)
    message = _stop_message(run, problem)
    log.error("%s", message)
    raise ExportStopped(message, run.result) from problem.error


def photos(count: int) -> str:
    """"1 photo", "1,204 photos": the one rule for counts (:func:`~photosort.core.wording.plural`)."""
    return plural(count, "photo")


def _stop_message(run: _Run, problem: FileProblem) -> str:
    moved = run.result.done
    tail = "nothing was lost."
    if run.plan.mode == "move" and moved:
        tail = f"{photos(moved)} moved so far can be undone; nothing was lost."
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


# --------------------------------------------------------------------------- finishing


def resume_or_recover(
    journal: Path,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ExportResult:
    """Finish a move that was interrupted (killed, cancelled or stopped).

    For each photo not yet done it looks at where the photo really is (a file
    is the photo only if it has the recorded size and hash): at both places ->
    the old name is removed; only at the new place -> done; only at the old
    place -> it is moved now. Leftover temp files are removed. To roll back
    instead, call :func:`~photosort.core.export.undo.undo_move`.
    """
    require_journal(journal)
    with export_lock(journal.parent, create=False):
        return _resume_locked(journal, progress, cancel)


def _resume_locked(journal: Path, progress: ProgressFn | None, cancel: CancelToken | None) -> ExportResult:
    contents = read_journal(journal)
    result = ExportResult(journal=journal, mode="move")
    if contents.state == "undone":
        return result
    destination = Path(contents.header.get("destination") or _guess_root(contents))
    plan = ExportPlan(destination, "move", [], [])
    run = _Run(plan, _prepare_root(destination), result, Journal.reopen(journal), marker=MarkerWriter(destination))
    run.photo_places = {e.src: e.dst for e in contents.entries if e.sidecar_of is None and e.state == "done"}
    clean_leftovers(destination, target_folders(contents))
    unfinished = [e for e in contents.entries if e.state not in ("done", "undone")]
    try:
        _resume_all(run, unfinished, contents.version, progress, cancel)
    finally:
        _close_journal(run, settled=False)  # a finish keeps its journal: it is how the move is undone
    return result


def _guess_root(contents: JournalContents) -> Path:
    if not contents.entries:
        raise ExportError("The journal has no header and no photos: there is nothing to finish.")
    return contents.entries[0].dst.parent.parent


def _resume_all(run: _Run, entries: list[Entry], version: int, progress: ProgressFn | None,
                cancel: CancelToken | None) -> None:
    step = _resume_entry if version >= 2 else _resume_legacy_entry
    run.result.cancelled = each_step(entries, "finishing", progress, cancel, lambda entry: step(run, entry))
    _end_journal(run, "cancelled" if run.result.cancelled else "finished", resumed="yes")


def _resume_entry(run: _Run, entry: Entry) -> None:
    """A version 2 entry: the photo is wherever its recorded content is."""
    if entry.sidecar_of is not None:
        try:
            with _journal_guard(run, entry):
                _resume_sidecar(run, entry, entry.sidecar_of)
        except FileProblem as problem:  # a full or unwritable disk: the whole finish stops, as for a photo
            _stop(run, PlannedMove(entry.src, entry.dst, entry.dst.parent.name), problem)
        return
    for temp in entry.temps:
        discard(temp)  # a partial copy is never the only copy: the source goes last
    holder = new_place_of(entry)
    if holder is None:
        _move_now(run, entry)  # not placed yet: the photo is still at its source (or gone)
        return
    content = entry.content
    source_is_photo = same_file(entry.src, holder) or (content is not None and content.is_at(entry.src))
    _complete_half_done(run, entry, holder, remove_source=source_is_photo)


def _resume_sidecar(run: _Run, entry: Entry, photo: Path) -> None:
    """A sidecar follows its photo: finished where it is half moved, moved now beside a photo that was moved,
    left alone beside a photo that was not."""
    for temp in entry.temps:
        discard(temp)
    holder = new_place_of(entry) if entry.touched else None
    if holder is not None:
        try:
            if same_file(entry.src, holder) or (entry.content is not None and entry.content.is_at(entry.src)):
                remove_original(entry.src, holder)
        except FileProblem as problem:
            record_sidecar_failure(run.journal, run.result, photo, entry.src, holder, problem.reason)
            return
        assert run.journal is not None
        run.journal.write(move_record(entry.src, holder, "done", method="move"))
        run.result.sidecars += 1
        return
    place = run.photo_places.get(photo)
    if place is None:
        log.info("%s stays beside %s, which was not moved", entry.src, photo)
        return
    carry_sidecars("move", run.journal, run.result, photo, [entry.src], place)


def new_place_of(entry: Entry) -> Path | None:
    """The newest place the move tried that holds the photo: a file with its recorded
    size and hash, or — nothing recorded yet — another name of the source file itself."""
    places = [entry.dst] if entry.state == "done" else list(reversed(entry.candidates))
    if entry.content is not None:
        return next((place for place in places if entry.content.is_at(place)), None)
    return next((place for place in places if same_file(place, entry.src)), None)


def _move_now(run: _Run, entry: Entry) -> None:
    if not os.path.lexists(entry.src):
        reason = "the photo is neither at its old nor at its new place (moved or deleted)"
        with _journal_guard(run, entry):
            _record_failure(run, entry.src, entry.dst, reason)
        return
    _export_step(run, PlannedMove(entry.src, entry.dst, entry.dst.parent.name))


def _resume_legacy_entry(run: _Run, entry: Entry) -> None:
    """A version 1 entry (no recorded content): same inode, or same bytes after a cross-disk copy."""
    for temp in entry.temps:
        discard(temp)
    holder = _last_existing(entry.candidates)
    source_here = os.path.lexists(entry.src)
    if holder is not None and (not source_here or same_photo(entry.src, holder, compare_bytes=entry.copied)):
        _complete_half_done(run, entry, holder, remove_source=source_here)
        return
    _move_now(run, entry)


def _complete_half_done(run: _Run, entry: Entry, holder: Path, remove_source: bool) -> None:
    """The photo already has its new name: drop the old one (when it is the photo)
    and record it done."""
    with _journal_guard(run, entry):
        try:
            if remove_source:
                remove_original(entry.src, holder)
        except FileProblem as problem:
            _record_failure(run, entry.src, entry.dst, problem.reason)
            return
        assert run.journal is not None
        run.journal.write(move_record(entry.src, holder, "done", method="move"))
        run.result.placed.append(Placed(entry.src, holder, "move"))
        run.result.done += 1
        run.photo_places[entry.src] = holder


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
