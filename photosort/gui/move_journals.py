"""The window's move-journal flows: offer to finish or undo an interrupted move, and the Move Exports dialog.

A move export journals every photo it moves (see :mod:`photosort.core.export`).
When the window starts, or after a move, a journal left *interrupted* (the app
was killed half way) is offered in the message bar: finish the move, or undo
it. Both run as tasks through the one task runner; the message bar tells how
they ended.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMainWindow

from ..core.export import JournalInfo
from .export_dialog import MOVE_EXPORTS_MENU, describe_outcome
from .journals_dialog import JournalsDialog
from .message_bar import MessageBar
from .task_runner import Outcome, TaskWatch
from .worker import WorkerClient


class MoveJournals(QObject):
    """Offers interrupted moves in the message bar and owns the Move Exports dialog."""

    handled = Signal(str)  # the message after finishing or undoing a move from the message bar
    movedPhotos = Signal()  # photos changed place (a move finished, or was undone)

    def __init__(self, window: QMainWindow, worker: WorkerClient, message_bar: MessageBar) -> None:
        super().__init__(window)
        self._window, self._worker, self._message_bar = window, worker, message_bar
        self._dialog: JournalsDialog | None = None
        self._offered = ""  # the interrupted move the message bar offers to finish or undo
        self._destination = ""
        self._watch = TaskWatch(worker.tasks, self)
        self._watch.ended.connect(self._on_ended)
        worker.worker.journalsListed.connect(self._on_listed)

    @property
    def busy(self) -> bool:
        """A finish or undo started from the message bar is under way."""
        return self._watch.task is not None

    # ---- the dialog ----------------------------------------------------------------------------
    def open_dialog(self) -> None:
        if self._dialog is not None:
            self._dialog.raise_()
            return
        dialog = JournalsDialog(self._worker, self._window)
        dialog.finished.connect(self._forget_dialog)
        dialog.movedPhotos.connect(self.movedPhotos)
        self._dialog = dialog
        dialog.open()

    @property
    def dialog(self) -> JournalsDialog | None:
        return self._dialog

    def _forget_dialog(self) -> None:
        if self._dialog is not None:
            self._dialog.deleteLater()
            self._dialog = None

    # ---- the message bar -------------------------------------------------------------------------
    def _on_listed(self, journals: list[JournalInfo]) -> None:
        """At start-up (and after each move), offer to finish or undo a move that was interrupted."""
        interrupted = [j for j in journals if j.state == "interrupted"]
        if self._offered and self._offered not in {j.path for j in interrupted}:
            self._offered = ""  # finished or undone meanwhile (e.g. from Edit ▸ Undo a Move Export…)
            if not self.busy:
                self._message_bar.dismiss()
        if not interrupted or self.busy or self._dialog is not None:
            return
        info = interrupted[-1]
        self._offered = info.path
        more = f" ({len(interrupted) - 1} more in {MOVE_EXPORTS_MENU})" if len(interrupted) > 1 else ""
        self._message_bar.show_message(
            f"An export was interrupted while moving photos ({info.describe()}). Finish moving them, or undo to "
            f"put them back{more}.", "warning",
            ("Finish Move", lambda: self.finish(info)), ("Undo Move", lambda: self.undo(info)))

    def finish(self, journal: JournalInfo) -> None:
        self._destination = journal.destination
        self._message_bar.show_message("Finishing the interrupted move…", "info")
        self._watch.follow(self._worker.finish_move(journal.path))

    def undo(self, journal: JournalInfo) -> None:
        self._destination = journal.destination
        self._message_bar.show_message("Putting the photos back…", "info")
        self._watch.follow(self._worker.undo_move(journal.path))

    def _on_ended(self, outcome: Outcome) -> None:
        text = describe_outcome(outcome, "move", Path(self._destination))
        self._message_bar.show_message(text, "error" if outcome.failure is not None else "info")
        self.movedPhotos.emit()
        self.handled.emit(text)
