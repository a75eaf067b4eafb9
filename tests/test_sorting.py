"""Where a photo goes: the unsure threshold, labels beating predictions, and "label these next" (least sure first)."""

from __future__ import annotations

import numpy as np

from photosort.core.sorting import DEFAULT_THRESHOLD, NO_LABEL, UNSURE, decide, least_sure, margin_order

PROBABILITIES = np.array([
    [0.90, 0.05, 0.05],  # sure: class 0
    [0.40, 0.35, 0.25],  # unsure at 0.5
    [0.10, 0.20, 0.70],  # sure: class 2
    [0.34, 0.33, 0.33],  # the least sure of all
], dtype=np.float32)


def test_default_threshold_is_one_half_for_categories_and_classifiers_alike() -> None:
    assert DEFAULT_THRESHOLD == 0.5
    assert list(decide(PROBABILITIES).best) == [0, UNSURE, 2, UNSURE]


def test_photos_below_the_threshold_are_unsure_and_at_it_are_not() -> None:
    decision = decide(PROBABILITIES, threshold=0.7)
    assert list(decision.best) == [0, UNSURE, 2, UNSURE]
    np.testing.assert_allclose(decision.score, [0.90, 0.40, 0.70, 0.34])
    assert list(decide(PROBABILITIES, threshold=0.0).best) == [0, 0, 2, 0]
    assert list(decide(PROBABILITIES, threshold=1.0).best) == [UNSURE] * 4


def test_a_label_wins_over_the_prediction_with_full_score() -> None:
    labels = np.array([2, 1, NO_LABEL, NO_LABEL])  # photo 0 is predicted 0 but labelled 2
    decision = decide(PROBABILITIES, threshold=0.5, labels=labels)
    assert list(decision.best) == [2, 1, 2, UNSURE]
    np.testing.assert_allclose(decision.score, [1.0, 1.0, 0.70, 0.34])
    assert list(decision.predicted) == [0, UNSURE, 2, UNSURE]  # what the classifier alone says is kept
    np.testing.assert_allclose(decision.confidence, [0.90, 0.40, 0.70, 0.34])
    assert list(decision.labelled) == [True, True, False, False]


def test_a_label_that_is_no_class_is_ignored() -> None:
    decision = decide(PROBABILITIES, labels=np.array([7, NO_LABEL, NO_LABEL, NO_LABEL]))
    assert decision.best[0] == 0 and not decision.labelled[0] and decision.labels[0] == NO_LABEL


def test_no_classes_leaves_every_photo_unsure_and_no_photos_is_fine() -> None:
    decision = decide(np.zeros((3, 0), np.float32))
    assert list(decision.best) == [UNSURE] * 3
    assert len(decide(np.zeros((0, 3), np.float32)).best) == 0


def test_margin_order_puts_the_closest_call_first() -> None:
    assert list(margin_order(PROBABILITIES)) == [3, 1, 2, 0]
    assert list(margin_order(np.ones((3, 1), np.float32))) == [0, 1, 2]  # one class: nothing to hesitate on


def test_least_sure_skips_labelled_and_unscored_photos_and_stops_at_the_limit() -> None:
    probabilities = np.vstack([PROBABILITIES, [[np.nan, np.nan, np.nan]]]).astype(np.float32)
    labels = np.array([NO_LABEL, NO_LABEL, NO_LABEL, 0, NO_LABEL])  # the least sure photo is labelled
    assert list(least_sure(probabilities, labels, limit=10)) == [1, 2, 0]
    assert list(least_sure(probabilities, labels, limit=2)) == [1, 2]
    assert list(least_sure(probabilities, labels, limit=0)) == []
    assert list(least_sure(np.ones((3, 1), np.float32), np.full(3, NO_LABEL), limit=5)) == []


def test_ties_keep_the_photos_order() -> None:
    same = np.tile(np.array([[0.6, 0.4]], np.float32), (5, 1))
    assert list(least_sure(same, np.full(5, NO_LABEL), limit=5)) == [0, 1, 2, 3, 4]
