"""The side panel's confidence dial, wired to the grid: a raw threshold, or a target accuracy.

With typed categories (or a classifier that has no estimate yet) the slider is
today's raw threshold, "Unsure below 50 %". Once the classifier in use has an
estimate from its labels (:mod:`photosort.core.calibration`) it chooses a
target instead, "File automatically when at least 95 % likely right", and
says what that does to the open photos: "1,840 photos filed, 212 to Unsure
(estimated from your 60 labels)". The thresholds (one per class) and those
numbers come from the core; the grid applies the thresholds through
:func:`photosort.core.sorting.decide`, so its groups, its counts and the
exports (which send the target, :class:`~.worker.ExportRequest`) agree.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from ..core.calibration import NO_ESTIMATE_TYPED, AutoFiling, Calibration, auto_filing, no_estimate_yet
from .photo_model import PhotoModel
from .preferences import Preferences
from .side_panel import SidePanel


class AccuracyDial(QObject):
    """Keeps the dial, the grid's thresholds and the counts under the dial in step with the classifier in use."""

    updated = Signal()  # the dial's text matches the grid

    def __init__(self, panel: SidePanel, model: PhotoModel, prefs: Preferences, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._panel, self._model, self._prefs = panel, model, prefs
        self._classifier = ""
        self._calibration: Calibration | None = None
        self._filing: AutoFiling | None = None
        panel.set_target_accuracy(prefs.target_accuracy())
        panel.targetAccuracyChanged.connect(self._on_target)
        model.groupsChanged.connect(self._update_counts)

    @property
    def calibration(self) -> Calibration | None:
        return self._calibration

    def target_accuracy(self) -> float | None:
        """The target the grid is sorted at; None while the raw threshold applies."""
        return self._panel.target_accuracy() if self._calibration is not None else None

    def filing(self) -> AutoFiling | None:
        """The core's account of the grid at the target (thresholds and counts); None for the raw threshold."""
        return self._filing

    def set_classifier(self, name: str, calibration: Calibration | None, keep_positions: bool = False) -> None:
        """The classifier in use ("" : typed categories) and its estimate; ``keep_positions`` while labelling."""
        self._classifier = name
        n_classes = len(self._model.categories)
        self._calibration = calibration if calibration is not None and calibration.n_classes == n_classes else None
        self._filing = None
        if self._calibration is None:
            self._panel.show_raw_threshold(self._note())
            self._model.set_threshold(self._panel.threshold(), keep_positions=keep_positions)
        else:
            self._panel.show_target_accuracy()
            self._apply(keep_positions)
        self.updated.emit()

    def labels_changed(self) -> None:
        """Labels were added or removed: the note on when the dial appears may change."""
        if self._calibration is None and self._classifier:
            self._panel.set_dial_detail(self._note())

    def _note(self) -> str:
        if not self._classifier:
            return NO_ESTIMATE_TYPED
        return no_estimate_yet([c.name for c in self._model.categories], self._model.label_counts())

    def _on_target(self, target: float) -> None:
        self._prefs.set_target_accuracy(target)
        if self._calibration is not None:
            self._apply(keep_positions=False)

    def _apply(self, keep_positions: bool) -> None:
        """The thresholds of the target for the grid; the counts follow when it has regrouped."""
        assert self._calibration is not None
        self._model.set_threshold(self._calibration.thresholds(self._panel.target_accuracy()),
                                  keep_positions=keep_positions)

    def _update_counts(self) -> None:
        if self._calibration is None:
            return
        probabilities, labels = self._model.scores()
        if probabilities.shape[1] != self._calibration.n_classes:
            return  # another classifier's scores arrived first; its estimate follows
        self._filing = auto_filing(self._calibration, self._panel.target_accuracy(), probabilities, labels)
        self._panel.set_dial_detail(self._filing.describe_counts())
        self.updated.emit()
