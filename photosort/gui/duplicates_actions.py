"""The Duplicates view's controller: asks the worker for groups, records decisions, moves rejected photos to the trash.

Finding groups runs as a task on the worker (it may read originals to measure
their focus), again whenever the sensitivity or the Bursts box changes
(debounced, an older search stopped) and when indexing brought new photos
while the view is open. Keep and reject go to the worker's mailbox; it records
them (:func:`photosort.core.rejects.set_decisions`) and sends the groups back
with their keepers chosen again, since a decision can change the keeper.

"Move Rejected to Trash…" asks first, naming how many photos and where they go
(the system's trash, from where they can be put back), then runs
:func:`photosort.core.rejects.trash_rejected` as a task with progress and
Cancel in the message bar, and says what it did there: trashed, and refused
with why. The grid loses the trashed photos (the worker sends it the library
again). photosort never deletes a photo itself.
"""

from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from ..core.config import Settings
from ..core.paths import display_path
from ..core.progress import Progress
from ..core.rejects import Decision, TrashReport
from ..core.wording import plural
from .duplicates_view import TILE_MAX, DuplicatesView
from .message_bar import MessageBar
from .task_runner import Outcome, TaskWatch
from .thumbnail_cache import ThumbnailCache
from .worker import DuplicateReview, WorkerClient

log = logging.getLogger(__name__)

REVIEW_DELAY_MS = 300  # the slider settles before the search starts again
MAX_LISTED_REFUSED = 5


def describe_trash(report: TrashReport, cancelled: bool) -> str:
    """``Moved 3 rejected photos to the trash (the trash can put them back). 1 kept: IMG_1.JPG (its content ...)``."""
    text = f"Moved {plural(len(report.trashed), 'rejected photo')} to the trash (the trash can put them back)."
    for label, items in (("kept", report.refused), ("could not be moved", report.failed)):
        if items:
            listed = "; ".join(f"{display_path(path)}: {why}" for path, why in items[:MAX_LISTED_REFUSED])
            more = f"; and {len(items) - MAX_LISTED_REFUSED:,} more" if len(items) > MAX_LISTED_REFUSED else ""
            text += f" {plural(len(items), 'photo')} {label}: {listed}{more}."
    if cancelled or report.cancelled:
        text += " Stopped: the others are still rejected; move them again to finish."
    return text


class DuplicatesActions(QObject):
    """Owns the Duplicates view and its thumbnails; follows the tasks it starts."""

    trashDone = Signal(str)  # the message shown when moving to the trash ended

    def __init__(self, window: QWidget, worker: WorkerClient, message_bar: MessageBar, settings: Settings,
                 db_lock: threading.Lock) -> None:
        super().__init__(window)
        self._window, self._worker, self._message_bar = window, worker, message_bar
        self.thumbnails = ThumbnailCache(settings.cache_path, db_lock, TILE_MAX, window.devicePixelRatioF(),
                                         parent=self)
        self.view = DuplicatesView(self.thumbnails)
        self.view.reviewWanted.connect(self._schedule_review)
        self.view.decided.connect(self._on_decided)
        self.view.rejectOthersWanted.connect(worker.reject_others)
        self.view.trashRequested.connect(self.trash_rejected)
        self._review_id = 0  # the review on screen (decisions come back with its number)
        self._timer = QTimer(self, singleShot=True, interval=REVIEW_DELAY_MS)
        self._timer.timeout.connect(self.refresh)
        self._review_watch = TaskWatch(worker.tasks, self)
        self._review_watch.progressed.connect(self._on_review_progress)
        self._review_watch.ended.connect(self._on_reviewed)
        self._trash_watch = TaskWatch(worker.tasks, self)
        self._trash_watch.progressed.connect(self._on_trash_progress)
        self._trash_watch.ended.connect(self._on_trashed)
        worker.worker.duplicatesUpdated.connect(self._on_updated)
        worker.worker.cacheCleared.connect(lambda _deleted: self.thumbnails.clear())

    @property
    def busy(self) -> bool:
        return self._review_watch.task is not None

    # ---- finding -------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Look for groups again with the view's settings (an older search still running stops)."""
        self._timer.stop()
        self.view.set_message("Looking for near-duplicates and bursts…")
        self._review_watch.follow(self._worker.review_duplicates(self.view.sensitivity(), self.view.bursts()))

    def refresh_if_shown(self) -> None:
        if self.view.isVisible() and self._trash_watch.task is None:
            self.refresh()

    def _schedule_review(self, _sensitivity: float, _bursts: bool) -> None:
        self._timer.start()

    def _on_review_progress(self, progress: Progress) -> None:
        verb = {"measuring focus": "Measuring sharpness", "comparing looks": "Comparing looks"}.get(
            progress.phase, "Looking for near-duplicates")
        self.view.set_message(f"{verb}: {progress.done:,} of {plural(progress.total, 'photo')}…")

    def _on_reviewed(self, outcome: Outcome) -> None:
        if outcome.failure is not None:
            self.view.set_message(outcome.failure.message)
        elif isinstance(outcome.result, DuplicateReview) and not outcome.cancelled:
            self._review_id = outcome.result.review
            self.view.show_review(outcome.result)
            if QApplication.focusWidget() not in (self.view.slider, self.view.bursts_check):
                self.view.focus_photos()  # the keys work at once; one moving the slider keeps it
        elif self._review_watch.task is None and not self._timer.isActive():
            self.view.set_message("Stopped looking for near-duplicates.")

    def _on_updated(self, review: DuplicateReview) -> None:
        if review.review == self._review_id and self._review_watch.task is None:
            self.view.show_review(review)

    def _on_decided(self, choices: dict[int, Decision | None]) -> None:
        self._worker.decide_duplicates(choices)

    # ---- the trash ---------------------------------------------------------------------------------------
    def trash_rejected(self) -> None:
        """Ask, then move every rejected photo of the open folders to the system's trash."""
        count = self.view.rejected
        if self._trash_watch.task is not None or count == 0:
            return
        answer = QMessageBox.question(
            self._window, "Move Rejected Photos to the Trash?",
            f"Move the {plural(count, 'photo')} you rejected to the system's trash?\n\nYou can restore them from "
            "the trash. photosort never deletes a photo itself; a photo that changed since you rejected it "
            "stays where it is.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._trash_watch.follow(self._worker.trash_rejected())
        self.view.trash_button.setEnabled(False)
        self._message_bar.show_message(f"Moving {plural(count, 'rejected photo')} to the trash…", "info",
                                       ("Cancel", self._trash_watch.cancel))

    def _on_trash_progress(self, progress: Progress) -> None:
        self._message_bar.show_message(f"Moving rejected photos to the trash: {progress.done:,} of "
                                       f"{progress.total:,}…", "info", ("Cancel", self._trash_watch.cancel))

    def _on_trashed(self, outcome: Outcome) -> None:
        if outcome.failure is not None:
            text, level = outcome.failure.message, "error"
        elif isinstance(outcome.result, TrashReport):
            report = outcome.result
            text = describe_trash(report, outcome.cancelled)
            level = "warning" if report.refused or report.failed else "info"
        else:
            text, level = "Stopped: nothing was moved to the trash.", "info"
        self._message_bar.show_message(text, level)
        if self.view.isVisible():
            self.refresh()  # the trashed photos have left their groups
        self.trashDone.emit(text)

    def shutdown(self) -> None:
        self.thumbnails.shutdown()
