"""The rules every face shares: the unsure threshold, labels beat predictions, least sure first."""

from __future__ import annotations

import numpy as np
import pytest

from photosort.core.sorting import NO_LABEL, UNSURE, decide, least_sure


def test_labels_beat_predictions_and_the_threshold() -> None:
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.4, 0.35, 0.25]], np.float32)
    decision = decide(probs, 0.6, np.array([NO_LABEL, 1, NO_LABEL]))
    assert decision.best.tolist() == [0, 1, UNSURE]  # the label wins over "hiking 50 %"; the third is unsure
    assert decision.predicted.tolist() == [0, UNSURE, UNSURE]  # the prediction alone, for the tooltip
    assert decision.score.tolist() == pytest.approx([0.9, 1.0, 0.4])
    assert decision.labelled.tolist() == [False, True, False]


def test_unscored_photos_are_unsure_but_keep_their_label() -> None:
    probs = np.full((2, 2), np.nan, np.float32)
    decision = decide(probs, 0.5, np.array([0, NO_LABEL]))
    assert decision.best.tolist() == [0, UNSURE]


def test_no_classes_means_everything_is_unsure() -> None:
    assert decide(np.zeros((3, 0), np.float32), 0.5).best.tolist() == [UNSURE] * 3


def test_least_sure_skips_labelled_and_unscored_photos_and_puts_ties_first() -> None:
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.55, 0.45], [np.nan, np.nan], [0.51, 0.49]], np.float32)
    labels = np.array([NO_LABEL, NO_LABEL, NO_LABEL, NO_LABEL, 0])
    assert least_sure(probs, labels, 10).tolist() == [0, 2, 1]
    assert least_sure(probs, labels, 1).tolist() == [0]
    assert least_sure(probs[:, :1], labels, 10).tolist() == []  # one class: nothing to hesitate between
