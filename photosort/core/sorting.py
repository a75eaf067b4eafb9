"""The rules that put a photo in a group: the unsure threshold, labels beat predictions, least sure first.

Every face asks these functions: ``photosort sort`` and ``export`` through
:class:`~photosort.core.library.Library`, the window's grid directly (it
re-applies them as the user drags the threshold, without a round trip to the
worker). So the folder a photo is exported to is always the group the grid
showed it in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_THRESHOLD = 0.5  # below this probability a photo is Unsure (typed categories and classifiers alike)
NO_LABEL = -1
UNSURE = -1


@dataclass(frozen=True)
class Decision:
    """Where each photo goes (N photos, C classes): the user's label if it has one, else the prediction."""

    best: np.ndarray  # int64, N: class index, or UNSURE
    score: np.ndarray  # float32, N: 1.0 for a labelled photo, else the prediction's probability
    predicted: np.ndarray  # int64, N: the prediction alone (UNSURE below the threshold), labels ignored
    confidence: np.ndarray  # float32, N: the predicted class's probability (NaN where not scored)
    labels: np.ndarray  # int64, N: the label's class index, or NO_LABEL
    probabilities: np.ndarray  # float32, N x C

    @property
    def labelled(self) -> np.ndarray:
        return self.labels >= 0


def decide(probabilities: np.ndarray, threshold: float | np.ndarray = DEFAULT_THRESHOLD,
           labels: np.ndarray | None = None) -> Decision:
    """Predictions below ``threshold`` are unsure; a labelled photo goes where its label says, with score 1.

    ``threshold`` is one number for every class, or one per class (C; ``inf``: that class
    is never predicted with enough confidence), as a target accuracy gives them
    (:mod:`photosort.core.calibration`): a prediction is kept when its probability reaches
    the threshold of the class it predicts.
    """
    n, classes = probabilities.shape
    labels = np.full(n, NO_LABEL, np.int64) if labels is None else np.asarray(labels, np.int64)
    if classes == 0:
        predicted, confidence = np.full(n, UNSURE, np.int64), np.zeros(n, np.float32)
    else:
        top = np.nan_to_num(probabilities, nan=-1.0).argmax(axis=1)
        confidence = probabilities[np.arange(n), top].astype(np.float32)
        limits = np.asarray(threshold, np.float32)  # compared as the probabilities are: 0.7 reaches 0.7
        limit = limits[top] if limits.ndim else limits
        predicted = np.where(confidence >= limit, top, UNSURE).astype(np.int64)
    labelled = (labels >= 0) & (labels < max(classes, 1))
    best = np.where(labelled, labels, predicted).astype(np.int64)
    score = np.where(labelled, np.float32(1.0), confidence).astype(np.float32)
    return Decision(best, score, predicted, confidence, np.where(labelled, labels, NO_LABEL), probabilities)


def margin_order(probabilities: np.ndarray) -> np.ndarray:
    """Row indices from least to most sure: by the margin between the two most likely classes."""
    if probabilities.shape[1] < 2:
        return np.arange(len(probabilities))
    top2 = np.sort(probabilities, axis=1)[:, -2:]
    return np.argsort(top2[:, 1] - top2[:, 0], kind="stable")


def least_sure(probabilities: np.ndarray, labels: np.ndarray, limit: int) -> np.ndarray:
    """"Label these next": unlabelled, scored rows the classifier hesitates most on, least sure first.

    A photo the classifier hesitates on between two classes teaches it most when labelled.
    """
    if probabilities.shape[1] < 2 or limit <= 0:
        return np.zeros(0, np.int64)
    candidates = np.flatnonzero((np.asarray(labels) < 0) & np.isfinite(probabilities).all(axis=1))
    order = margin_order(probabilities[candidates])
    return candidates[order[:limit]].astype(np.int64)
