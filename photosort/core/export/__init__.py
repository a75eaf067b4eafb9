"""Export sorted photos into one folder per category: plan first, then do.

Users trust this package with their only copy of their photos, so it is built
around three promises:

* **Nothing is ever overwritten.** Every file is created exclusively; a name
  that was taken since planning gets the next `` (n)`` suffix (:mod:`.fileops`).
* **Nothing is ever lost.** A copy is fsync'd and verified before it gets its
  real name, and its temporary file never outlives a failure or a cancel
  (:mod:`.fileops`). A move is journaled (:mod:`.journal`): at every instant
  each photo is at its source, at its destination, or at both, and an
  interrupted move can be finished (:func:`resume_or_recover`) or rolled back
  (:func:`undo_move`) from its journal, which records each photo's size and
  hash: undo never takes another file for the photo, and never makes a
  duplicate when it runs again after a kill.
* **Nothing is done twice.** A photo whose bytes the target folder already
  holds is "already there" and not written again; a killed run's temporary
  files are removed by the next; an export, finish or undo holds the data
  folder's lock (:mod:`.lock`), so two never run on one library at once; copy
  and link destinations are marked so that indexing leaves them out
  (:mod:`.destination`).
* **Nothing is written outside the destination.** Category names go through
  :func:`safe_folder_name` (:mod:`.names`); every destination folder is checked
  with :func:`os.path.realpath` when planned (:mod:`.plan`) and again just
  before writing (:mod:`.run`), so a symlink planted in the destination cannot
  redirect a write elsewhere.

The modules: :mod:`.names` (safe folder and file names), :mod:`.layout` (the
folder template: ``{category}/{year}/{month}``...), :mod:`.plan` (what
goes where; writes nothing), :mod:`.fileops` (verified copy, exclusive
placement, links, moves, content), :mod:`.destination` (marker, leftovers,
photos already there), :mod:`.journal` (the move journal, written and read
back), :mod:`.carry` (a photo's XMP sidecars go along with it: same operation,
renamed with it, journaled with it), :mod:`.lock` (one export at a time), :mod:`.results` (what was done),
:mod:`.run` (:func:`run_export`, :func:`resume_or_recover`), :mod:`.undo`
(:func:`undo_move`). Long work takes
``progress: ProgressFn | None`` and ``cancel: CancelToken | None`` as
described in :mod:`photosort.core.progress`.
"""

from __future__ import annotations

from .journal import JournalInfo, journal_info, journal_state, pending_journals
from .layout import DEFAULT_LAYOUT, PLACEHOLDERS, Layout, LayoutError, describe_tree, folder_tree, parse_layout
from .names import safe_folder_name
from .plan import MODES, UNSURE_POLICIES, ExportItem, ExportPlan, PlannedMove, plan_export
from .results import ExportResult, ExportStopped, Placed, UndoResult
from .run import resume_or_recover, run_export
from .undo import undo_move

__all__ = [
    "DEFAULT_LAYOUT",
    "MODES",
    "PLACEHOLDERS",
    "UNSURE_POLICIES",
    "ExportItem",
    "ExportPlan",
    "ExportResult",
    "ExportStopped",
    "JournalInfo",
    "Layout",
    "LayoutError",
    "Placed",
    "PlannedMove",
    "UndoResult",
    "describe_tree",
    "folder_tree",
    "journal_info",
    "journal_state",
    "parse_layout",
    "pending_journals",
    "plan_export",
    "resume_or_recover",
    "run_export",
    "safe_folder_name",
    "undo_move",
]
