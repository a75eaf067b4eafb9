"""Click-to-label: labels for the classifier in use, undoable, saved at once and trained on shortly after.

A label change shows in the grid immediately (the model regroups the photo),
is written to the cache by the worker right away (labels survive a crash),
and restarts a short timer; when the user pauses, the classifier is trained
on all its labels in the worker and its new predictions come back. Every
change is a :class:`QUndoCommand`, so Ctrl+Z walks back through labelling
actions; the stack belongs to one classifier and is cleared when the user
switches to another.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from .photo_model import PhotoModel
from .worker import WorkerClient

log = logging.getLogger(__name__)

TRAIN_DEBOUNCE_MS = 300  # retrain this long after the last label change

Changes = dict[int, tuple[int | None, int | None]]  # photo id -> (label before, label after)


class LabelCommand(QUndoCommand):
    """One labelling action on one or many photos; undo puts every photo's previous label back."""

    def __init__(self, labeller: Labeller, classifier: str, changes: Changes, text: str) -> None:
        super().__init__(text)
        self._labeller = labeller
        self._classifier = classifier
        self._changes = changes

    def redo(self) -> None:
        self._labeller.apply(self._classifier, {pid: after for pid, (_before, after) in self._changes.items()})

    def undo(self) -> None:
        self._labeller.apply(self._classifier, {pid: before for pid, (before, _after) in self._changes.items()})


class Labeller(QObject):
    """Labels photos of the classifier in use, through an undo stack, and schedules its training."""

    labelsChanged = Signal()  # label counts changed (label, unlabel, undo, redo)
    trainingRequested = Signal()  # a training was sent to the worker

    def __init__(self, model: PhotoModel, client: WorkerClient, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._model = model
        self._client = client
        self._classifier = ""
        self.undo_stack = QUndoStack(self)
        self._train_timer = QTimer(self, singleShot=True, interval=TRAIN_DEBOUNCE_MS)
        self._train_timer.timeout.connect(self.train_now)

    @property
    def classifier(self) -> str:
        return self._classifier

    def set_classifier(self, name: str) -> None:
        """Label for this classifier from now on ("" : none); the undo history of the previous one is dropped."""
        if name != self._classifier:
            self.flush()
            self.undo_stack.clear()
        self._classifier = name

    def label(self, photo_ids: list[int], class_index: int | None) -> bool:
        """Give these photos this class (None: remove their labels); False when there was nothing to change."""
        if not self._classifier or (class_index is not None and not 0 <= class_index < len(self._model.categories)):
            return False
        changes: Changes = {}
        for photo_id in photo_ids:
            before = self._model.label_of(photo_id)
            if before != class_index:
                changes[photo_id] = (before, class_index)
        if not changes:
            return False
        self.undo_stack.push(LabelCommand(self, self._classifier, changes, self._describe(len(changes), class_index)))
        return True

    def apply(self, classifier: str, labels: dict[int, int | None]) -> None:
        """Show, save and (soon) train on label changes; called by the undo commands."""
        if classifier != self._classifier:
            log.debug("ignoring label changes for %s: %s is in use", classifier, self._classifier)
            return
        self._model.set_labels(labels)
        names = {c: cat.name for c, cat in enumerate(self._model.categories)}
        self._client.set_labels(classifier, {pid: None if label is None else names[label] for pid, label in labels.items()})
        self._train_timer.start()
        self.labelsChanged.emit()

    def train_now(self) -> None:
        """Train on all labels now (the Train button; also the end of the debounce)."""
        self._train_timer.stop()
        if self._classifier:
            self._client.train_classifier(self._classifier)
            self.trainingRequested.emit()

    def flush(self) -> None:
        """Train at once if a training was waiting (before switching classifiers or closing)."""
        if self._train_timer.isActive():
            self.train_now()

    @property
    def training_pending(self) -> bool:
        return self._train_timer.isActive()

    def _describe(self, count: int, class_index: int | None) -> str:
        photos = f"{count} photo{'s' if count != 1 else ''}"
        if class_index is None:
            return f"Remove Label of {photos}"
        return f"Label {photos} as {self._model.categories[class_index].name}"
