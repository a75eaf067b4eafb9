"""Move exports that can still be undone: undo one, finish an interrupted one, or clear its record.

A move export keeps a journal of what moved where (in the cache folder) until
the user clears it here; with it, a move can be undone at any later time, and
one that was interrupted (the app was closed or killed halfway) can be either
finished or rolled back. The work is the export engine's
(:func:`undo_move`, :func:`resume_or_recover`), run by the worker.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core.export import JournalInfo
from ..core.progress import Progress
from .export_dialog import describe_outcome
from .task_runner import Outcome, TaskWatch
from .worker import WorkerClient

STATE_TEXT = {
    "interrupted": "interrupted: finish or undo it",
    "cancelled": "stopped by you",
    "stopped": "stopped (disk full or not writable)",
    "finished": "done",
}


class JournalsDialog(QDialog):
    """Pending move journals, newest first, with Undo, Finish and Clear."""

    movedPhotos = Signal()
    journalsShown = Signal()  # the list is up to date
    summaryShown = Signal()  # an undo or finish ended; its summary is in the status line

    def __init__(self, client: WorkerClient, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Move Exports")
        self.setMinimumWidth(600)
        self._client = client
        self._busy = False
        layout = QVBoxLayout(self)
        intro = QLabel("Exports that moved photos can be undone: every photo goes back where it was, never "
                       "overwriting anything. Clear a move once you are happy with it.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setSpacing(2)
        self.list.currentRowChanged.connect(self._update_buttons)
        layout.addWidget(self.list, 1)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status_label)
        self.progress_bar = QProgressBar()
        self.progress_bar.hide()
        layout.addWidget(self.progress_bar)
        buttons = QHBoxLayout()
        self.undo_button = QPushButton("Undo Move")
        self.undo_button.clicked.connect(self.undo_selected)
        self.finish_button = QPushButton("Finish Move")
        self.finish_button.setToolTip("Move the photos an interrupted export had not moved yet")
        self.finish_button.clicked.connect(self.finish_selected)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Forget this move: it can no longer be undone")
        self.clear_button.clicked.connect(self.clear_selected)
        for button in (self.undo_button, self.finish_button, self.clear_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)
        client.worker.journalsListed.connect(self.set_journals)
        self._watch = TaskWatch(client.tasks, self)
        self._watch.progressed.connect(self._on_progress)
        self._watch.ended.connect(self._on_ended)
        self._destination = ""
        self._journals: list[JournalInfo] = []
        self._update_buttons()
        client.list_journals()

    def set_journals(self, journals: list[JournalInfo]) -> None:
        self._journals = list(reversed(journals))  # newest first
        self.list.clear()
        for info in self._journals:
            item = QListWidgetItem(f"{info.describe()}\n{STATE_TEXT.get(info.state, info.state).capitalize()}")
            item.setToolTip(info.path)
            self.list.addItem(item)
        if self._journals:
            self.list.setCurrentRow(0)
        elif not self._busy and not self.status_label.text():
            self.status_label.setText("No move can be undone: there are none, or they were cleared.")
        self._update_buttons()
        self.journalsShown.emit()

    def journals(self) -> list[JournalInfo]:
        return list(self._journals)

    def selected(self) -> JournalInfo | None:
        row = self.list.currentRow()
        return self._journals[row] if 0 <= row < len(self._journals) else None

    def _update_buttons(self) -> None:
        info = self.selected()
        idle = info is not None and not self._busy
        self.undo_button.setEnabled(idle)
        self.finish_button.setEnabled(idle and info is not None and info.state != "finished")
        self.clear_button.setEnabled(idle and info is not None and info.state != "interrupted")
        self.close_button.setEnabled(not self._busy)

    def undo_selected(self) -> None:
        info = self.selected()
        if info is not None:
            self._start("Putting the photos back…", info)
            self._watch.follow(self._client.undo_move(info.path))

    def finish_selected(self) -> None:
        info = self.selected()
        if info is not None:
            self._start("Finishing the move…", info)
            self._watch.follow(self._client.finish_move(info.path))

    def clear_selected(self) -> None:
        info = self.selected()
        if info is None:
            return
        answer = QMessageBox.question(self, "Clear this move?",
                                      f"{info.describe()}.\n\nAfter clearing it, this move can no longer be undone.",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self.status_label.setText("")
            self._client.forget_journal(info.path)

    def _start(self, text: str, info: JournalInfo) -> None:
        self._busy = True
        self._destination = info.destination
        self.status_label.setText(text)
        self.progress_bar.setRange(0, 0)
        self.progress_bar.show()
        self._update_buttons()

    def _stop(self, text: str) -> None:
        self._busy = False
        self.progress_bar.hide()
        self.status_label.setText(text)
        self._update_buttons()
        self.movedPhotos.emit()
        self.summaryShown.emit()

    def _on_progress(self, progress: Progress) -> None:
        if self._busy:
            self.progress_bar.setRange(0, max(1, progress.total))
            self.progress_bar.setValue(progress.done)

    def _on_ended(self, outcome: Outcome) -> None:
        self._stop(describe_outcome(outcome, "move", Path(self._destination)))

    def reject(self) -> None:
        if not self._busy:
            super().reject()
