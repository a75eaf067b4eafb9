"""File ▸ Write Keywords to Sidecars…: the grid's sorting as keywords digiKam, darktable and Lightroom read.

The window's face of ``photosort tag``. Three steps, each on the worker as a
task (progress and Cancel in the message bar; the GUI thread never reads a
sidecar): the core's :func:`~photosort.core.tagging.plan_tagging` reads every
sidecar and counts what would change, the user confirms those counts here,
then :func:`~photosort.core.tagging.run_tagging` writes exactly that plan.
The sorting is the one the grid shows, asked for as the export dialog asks for
it (the same classifier, threshold and accuracy target), so the keywords and
an export file every photo alike. The summary offers Undo, and Edit ▸ Undo
Last Keywords undoes the last tagging later (``photosort tag --undo``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QMessageBox

from ..core.progress import Progress
from ..core.tagging import CREATE, SKIP, UNCHANGED, UPDATE, TagPlan, TagResult, TagUndoResult
from ..core.wording import plural
from .message_bar import MessageBar
from .task_runner import Outcome, Task, TaskWatch
from .worker import TagRequest, WorkerClient

log = logging.getLogger(__name__)

WRITE_KEYWORDS_ACTION = "Write &Keywords to Sidecars…"
UNDO_KEYWORDS_ACTION = "Undo Last &Keywords"
TITLE = "Write Keywords to Sidecars"
FIELDS = ("dc:subject (beach), lr:hierarchicalSubject (photosort|beach) and digiKam:TagsList (photosort/beach)")

PLAN, WRITE, UNDO = "plan", "write", "undo"
VERBS = {PLAN: "Reading the photos' sidecars", WRITE: "Writing keywords into sidecars",
         UNDO: "Putting the sidecars back"}


class TaggingActions(QObject):
    """The two menu items, the confirmation, and the tasks they start (one at a time)."""

    done = Signal(str)  # the message shown when a write or an undo ended, or nothing was written

    def __init__(self, window: QMainWindow, worker: WorkerClient, message_bar: MessageBar,
                 current: Callable[[], TagRequest]) -> None:
        """``current``: the sorting the grid shows now (classifier, threshold, accuracy target)."""
        super().__init__(window)
        self._window, self._worker, self._message_bar, self._current = window, worker, message_bar, current
        self._stage = ""  # PLAN, WRITE or UNDO while a task runs
        self._journals: list[str] = []  # taggings that can be undone, oldest first
        self._watch = TaskWatch(worker.tasks, self)
        self._watch.progressed.connect(self._on_progress)
        self._watch.ended.connect(self._on_ended)
        self.write_action = QAction(WRITE_KEYWORDS_ACTION, window)
        self.write_action.setToolTip("Write the sorting into XMP sidecars as keywords; the photos are never touched")
        self.write_action.triggered.connect(self.start)
        self.undo_action = QAction(UNDO_KEYWORDS_ACTION, window)
        self.undo_action.setToolTip("Put every sidecar of the last keyword writing back as it was")
        self.undo_action.triggered.connect(self.undo_last)
        worker.worker.tagJournalsListed.connect(self._on_journals)
        self._update_actions()
        worker.list_tag_journals()

    @property
    def busy(self) -> bool:
        return self._watch.task is not None

    # ---- the steps ------------------------------------------------------------------------------
    def start(self) -> None:
        """Plan on the worker; the confirmation follows when the counts are in."""
        if self.busy:
            return
        self._follow(PLAN, self._worker.plan_tagging(self._current()))

    def undo_last(self) -> None:
        """Edit ▸ Undo Last Keywords: ask, then put back the sidecars of the last tagging."""
        if self.busy or not self._journals:
            return
        answer = QMessageBox.question(
            self._window, "Undo Last Keywords?",
            "Put every sidecar the last keyword writing changed back as it was, and remove the sidecars it "
            "created?\n\nA sidecar changed since (in digiKam, darktable or Lightroom) is left as it is.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self.undo(self._journals[-1])

    def undo(self, journal: str) -> None:
        """Put back the sidecars of the tagging ``journal`` (the summary's Undo button: no question)."""
        if not self.busy:
            self._follow(UNDO, self._worker.undo_tagging(journal))

    def _follow(self, stage: str, task: Task) -> None:
        self._stage = stage
        self._watch.follow(task)
        self._message_bar.show_message(f"{VERBS[stage]}…", "info", ("Cancel", self._watch.cancel))
        self._update_actions()

    def _on_progress(self, progress: Progress) -> None:
        self._message_bar.show_message(f"{VERBS[self._stage]}: {progress.done:,} of {progress.total:,}…", "info",
                                       ("Cancel", self._watch.cancel))

    def _on_ended(self, outcome: Outcome) -> None:
        stage, self._stage = self._stage, ""
        self._update_actions()
        if outcome.failure is not None:
            self._tell(outcome.failure.message, "error")
        elif stage == PLAN and isinstance(outcome.result, TagPlan) and not outcome.cancelled:
            self._confirm(outcome.result)
        elif stage == PLAN:
            self._tell("Stopped: no sidecar was written.")
        elif stage == WRITE:
            self._written(outcome.result if isinstance(outcome.result, TagResult) else None)
        else:
            self._undone(outcome.result if isinstance(outcome.result, TagUndoResult) else None)

    def _confirm(self, plan: TagPlan) -> None:
        """Say what will be written, on the GUI thread, before anything is."""
        if not plan.pending:
            self._tell(nothing_to_write(plan))
            return
        answer = QMessageBox.question(self._window, TITLE, confirmation(plan),
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Yes)
        if answer != QMessageBox.StandardButton.Yes:
            self._tell("Nothing was written.")
            return
        self._follow(WRITE, self._worker.write_tags(plan))

    def _written(self, result: TagResult | None) -> None:
        if result is None:
            self._tell("Stopped: no sidecar was written.")
            return
        undo = ("Undo", lambda journal=result.journal: self.undo(journal)) if result.journal else None
        self._tell(describe_written(result), "warning" if result.skipped or result.failed else "info", undo)

    def _undone(self, result: TagUndoResult | None) -> None:
        if result is None:
            self._tell("Stopped: no sidecar was put back.")
            return
        self._tell(describe_undone(result), "warning" if result.refused or result.failed else "info")

    def _tell(self, text: str, level: str = "info", action: tuple[str, Callable[[], None]] | None = None) -> None:
        self._message_bar.show_message(text, level, action)
        self.done.emit(text)

    # ---- the menu items -----------------------------------------------------------------------------
    def _on_journals(self, journals: list[str]) -> None:
        self._journals = list(journals)
        self._update_actions()

    def _update_actions(self) -> None:
        self.write_action.setEnabled(not self.busy)
        self.undo_action.setEnabled(not self.busy and bool(self._journals))


# ---- wording ------------------------------------------------------------------------------------------
def confirmation(plan: TagPlan) -> str:
    """What the confirmation says: the counts, the fields, and that the photos are safe."""
    counts = plan.counts()
    lines = [f"Write the sorting into {plural(counts[CREATE] + counts[UPDATE], 'XMP sidecar')} as keywords?", "",
             f"{plural(counts[CREATE], 'sidecar')} to create, {counts[UPDATE]:,} to update"
             + (f", {counts[UNCHANGED]:,} already up to date" if counts[UNCHANGED] else "")
             + f"; {plural(plan.unsure, 'photo')} unsure get no keyword."]
    if counts[SKIP]:
        lines.append(f"{plural(counts[SKIP], 'sidecar')} will be left as they are (not XMP photosort can merge into, "
                     "or shared by two photos).")
    lines += ["", f"The keywords go into {FIELDS}, merged with what the sidecars already hold. The photos "
              f"themselves are never touched, and you can undo it (Edit ▸ {UNDO_KEYWORDS_ACTION.replace('&', '')})."]
    return "\n".join(lines)


def nothing_to_write(plan: TagPlan) -> str:
    counts = plan.counts()
    text = f"Nothing to write: {plural(counts[UNCHANGED], 'sidecar')} already hold these keywords"
    if counts[SKIP]:
        text += f", {counts[SKIP]:,} left as they are"
    return text + f"; {plural(plan.unsure, 'photo')} unsure get none."


def describe_written(result: TagResult) -> str:
    """``Wrote keywords into 12 sidecars (10 new, 2 updated); 3 already up to date.`` and what was left."""
    text = result.summary()
    if result.skipped:
        text += f"; {plural(len(result.skipped), 'sidecar')} left as they were (changed meanwhile, or not mergeable)"
    if result.failed:
        text += f"; {plural(len(result.failed), 'sidecar')} could not be written ({result.failed[0][1]})"
    return text + (". Stopped: what was written is kept." if result.cancelled else ".")


def describe_undone(result: TagUndoResult) -> str:
    """``Put back 2 sidecars as they were and removed 10 sidecars photosort had created.``"""
    text = result.summary()
    if result.refused:
        text += f"; {plural(len(result.refused), 'sidecar')} changed since were left as they are"
    if result.failed:
        text += f"; {plural(len(result.failed), 'sidecar')} could not be put back ({result.failed[0][1]})"
    return text + (". Stopped: run Undo Last Keywords again to finish." if result.cancelled else ".")
