"""Classifier ▸ Train from Keywords…: learn a classifier from the keywords a photo manager already wrote.

The window's face of ``photosort train --from-keywords``: it asks for the
classifier and the keyword pattern, runs the core's
:func:`~photosort.core.keywords.train_from_keywords` as a task on the worker
(progress in the message bar, Cancel there), and says what it found: how many
photos got which label, and how many were left out because their keywords
disagreed. The trained classifier then sorts the grid.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog, QMainWindow

from ..core.keywords import KeywordTraining
from ..core.progress import Progress
from ..core.wording import plural
from .message_bar import MessageBar
from .task_runner import Outcome, TaskWatch
from .worker import WorkerClient

log = logging.getLogger(__name__)

TITLE = "Train from Keywords"
DEFAULT_PATTERN = "trip/*"


class KeywordTrainer(QObject):
    """Asks, starts the task, follows it, and tells how it went."""

    done = Signal(str)  # the message shown when it ended

    def __init__(self, window: QMainWindow, worker: WorkerClient, message_bar: MessageBar) -> None:
        super().__init__(window)
        self._window, self._worker, self._message_bar = window, worker, message_bar
        self._watch = TaskWatch(worker.tasks, self)
        self._watch.progressed.connect(self._on_progress)
        self._watch.ended.connect(self._on_ended)

    @property
    def busy(self) -> bool:
        return self._watch.task is not None

    def start(self, classifier: str = "") -> None:
        """Ask which classifier and which keywords, then train (``classifier``: the one in use, suggested)."""
        if self.busy:
            return
        name, ok = QInputDialog.getText(self._window, TITLE, "Train the classifier (a new name makes a new one):",
                                        text=classifier or "Keywords")
        if not ok or not name.strip():
            return
        pattern, ok = QInputDialog.getText(
            self._window, TITLE, "Learn from the keywords matching (trip/* gives a photo tagged trip/italy the "
            "label 'italy'; separate several with commas):", text=DEFAULT_PATTERN)
        patterns = [p.strip() for p in pattern.split(",") if p.strip()] if ok else []
        if not patterns:
            return
        self._watch.follow(self._worker.train_from_keywords(name.strip(), patterns))
        self._message_bar.show_message("Reading the photos' keywords…", "info", ("Cancel", self._watch.cancel))

    def _on_progress(self, progress: Progress) -> None:
        self._message_bar.show_message(f"Reading the photos' keywords: {progress.done:,} of {progress.total:,}…",
                                       "info", ("Cancel", self._watch.cancel))

    def _on_ended(self, outcome: Outcome) -> None:
        if outcome.failure is not None:
            text, level = outcome.failure.message, "error"
        elif outcome.cancelled or not isinstance(outcome.result, KeywordTraining):
            text, level = "Stopped: the classifier was not trained.", "info"
        else:
            text, level = describe(outcome.result), "info"
        self._message_bar.show_message(text, level)
        self.done.emit(text)


def describe(done: KeywordTraining) -> str:
    """``Trained 'Trips' from keywords: 12 beach, 9 forest; 1 photo left out (its keywords match two labels).``"""
    counts = ", ".join(f"{n:,} {label}" for label, n in done.found.counts().items())
    text = f"Trained '{done.trained.classifier}' from keywords: {counts}"
    if done.found.ambiguous:
        text += f"; {plural(len(done.found.ambiguous), 'photo')} left out (keywords matching more than one label)"
    if done.trained.accuracy is not None:
        text += f"; cross-validated accuracy {done.trained.accuracy:.0%}"
    return text + "."
