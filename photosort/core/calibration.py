"""How often an automatically filed photo is right: the confidence dial that speaks in accuracy.

A raw probability threshold ("Unsure below 50 %") is hard to choose: what a
probability of 0.7 is worth depends on the classifier. Once a classifier has
labels it knows better: the cross-validation that picks its penalty
(:func:`photosort.core.classifier.cross_validate`) predicts every labelled photo
with a head that did not see that label. Those held-out predictions say, for
each threshold, how many of the photos at or above it the classifier got right.
This module keeps them (compactly, in the classifier's metrics, so they travel
with exported classifier files) and turns a target accuracy ("file
automatically when at least 95 % likely right") into thresholds, one per class.

The rule, in one place:

* For a threshold ``t`` and the held-out predictions of class ``k`` whose
  probability is at least ``t`` (``n`` of them, ``r`` right), the accuracy
  promised is the **Wilson lower bound** of ``r / n`` at one-sided 90 %
  confidence (``Z``): with few labels the promise is low, and it rises as
  labels accumulate. ``"at least 95 % likely right"`` means: of the photos
  filed automatically, at least 95 % go to the right folder (on average over
  those photos, not each one).
* The threshold for a target is the lowest candidate whose bound reaches it
  (the most photos filed that still keep the promise); candidates are the edges
  of :data:`EDGES`, fine near 1 where confident classifiers put their photos.
  Where no threshold reaches the target, nothing of that class is filed
  automatically (its threshold is infinite): it all goes to Unsure.
* A class has its own threshold once it has :data:`MIN_CLASS_LABELS` (10) labels
  and at least as many held-out predictions; every other class uses the
  threshold of all held-out predictions together. A class's own promise is the
  better of (a) the lower bound of its own record and (b) the bound of all
  classes together, lowered to the class's own record when that is worse
  (smoothed toward all classes as if it had :data:`PRIOR_LABELS` more
  predictions). So a class the labels show to be weaker gets a higher
  threshold, and a class gets a lower one only on its own strong evidence.
* Labels still win (:func:`photosort.core.sorting.decide`): a labelled photo is
  filed under its label whatever the target.

What it cannot see: held-out predictions come from heads trained on 4/5 of the
labels (so they err low), and they describe photos like the labelled ones. If
the user labels mostly the hard photos ("Label these next") the estimate errs
low too; if the library holds many photos unlike any labelled one (a class
nobody labelled), it can err high. tests/test_calibration.py measures it on
synthetic problems.

Typed categories have no labels, hence no estimate: they keep the raw
threshold, and so do classifiers trained before this existed (no
``calibration`` in their metrics).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import UsageError
from .sorting import Decision, decide
from .wording import plural

VERSION = 1
MIN_CLASS_LABELS = 10  # labels (and held-out predictions) a class needs for a threshold of its own
Z = 1.2816  # the Wilson lower bound at one-sided 90 % confidence
PRIOR_LABELS = 10  # a class's record is smoothed toward all classes' as if it had this many more predictions
STEP = 0.02  # candidate thresholds: 1 - 10^(-j * STEP), j = 0..BINS-1 (0, 0.045, ..., 0.9, ..., 0.99, ..., 0.9999)
BINS = 201
EDGES = 1.0 - 10.0 ** (-STEP * np.arange(BINS))
MAX_STORED_CELLS = 25_000  # beyond this (tens of thousands of labels in many classes) only all classes together are kept
MAX_CELLS = 2_000_000  # bounds what a classifier file may claim
DEFAULT_TARGET = 0.9
TARGET_RANGE = (0.5, 0.99)  # what the window's dial offers; the CLI takes anything in (0, 1)


def bin_of(confidence: np.ndarray) -> np.ndarray:
    """The candidate thresholds each probability reaches: ``bin_of(c) >= j`` exactly when ``c >= EDGES[j]``."""
    c = np.nan_to_num(np.asarray(confidence, np.float64), nan=-1.0)
    return np.clip(np.searchsorted(EDGES, c, side="right") - 1, 0, BINS - 1).astype(np.int64)


def wilson_lower_bound(right: np.ndarray, n: np.ndarray, z: float | None = None) -> np.ndarray:
    """The lower end of the Wilson score interval for ``right / n`` (0 where ``n`` is 0), ``z`` :data:`Z` by default."""
    z = Z if z is None else z
    right, n = np.asarray(right, np.float64), np.asarray(n, np.float64)
    safe = np.maximum(n, 1.0)
    p = right / safe
    z2 = z * z
    centre = p + z2 / (2 * safe)
    spread = z * np.sqrt(p * (1 - p) / safe + z2 / (4 * safe * safe))
    return np.where(n > 0, (centre - spread) / (1 + z2 / safe), 0.0)


def check_target(target: float) -> float:
    """A target accuracy strictly between 0 and 1, or a usage error saying so."""
    if not (isinstance(target, int | float) and math.isfinite(target) and 0.0 < target < 1.0):
        raise UsageError(f"The target accuracy must be between 0 and 1, e.g. 0.95 (got {target}).")
    return float(target)


def percent(value: float) -> str:
    """0.95 -> "95 %", 0.955 -> "95.5 %"."""
    text = f"{value * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text} %"


@dataclass(frozen=True, eq=False)
class Calibration:
    """A classifier's held-out predictions on its labels, as counts per predicted class and candidate threshold.

    Rows 0..C-1 are the classes with a threshold of their own; the last row pools the
    predictions of every other class (they only count toward all classes together).
    """

    class_labels: tuple[int, ...]  # labels per class (C)
    right: np.ndarray  # (C + 1) x BINS: held-out predictions in bin j that were right
    wrong: np.ndarray  # (C + 1) x BINS

    @property
    def labels(self) -> int:
        """How many labels (held-out predictions) the estimate rests on."""
        return int(self.right.sum() + self.wrong.sum())

    @property
    def n_classes(self) -> int:
        return len(self.class_labels)

    # ---- building, storing, reading -------------------------------------------------------------
    @classmethod
    def from_held_out(cls, probabilities: np.ndarray, targets: np.ndarray) -> Calibration:
        """From each label's cross-validated probabilities (n x C, its fold held out) and its class."""
        probabilities = np.asarray(probabilities, np.float64)
        targets = np.asarray(targets, np.int64)
        n, classes = probabilities.shape
        predicted = np.nan_to_num(probabilities, nan=-1.0).argmax(axis=1)
        bins = bin_of(probabilities[np.arange(n), predicted])
        right = np.zeros((classes + 1, BINS), np.int64)
        wrong = np.zeros((classes + 1, BINS), np.int64)
        correct = predicted == targets
        np.add.at(right, (predicted[correct], bins[correct]), 1)
        np.add.at(wrong, (predicted[~correct], bins[~correct]), 1)
        class_labels = tuple(int(c) for c in np.bincount(targets, minlength=classes)[:classes])
        calibration = cls(class_labels, right, wrong)._pooled(~calibration_own(class_labels, right + wrong))
        if np.count_nonzero(calibration.right + calibration.wrong) > MAX_STORED_CELLS:
            calibration = calibration._pooled(np.ones(classes, bool))  # a file stays small: all classes together
        return calibration

    def _pooled(self, rows: np.ndarray) -> Calibration:
        """The same predictions with those of the classes in ``rows`` moved to the pooled row."""
        right, wrong = self.right.copy(), self.wrong.copy()
        for k in np.flatnonzero(rows):
            right[-1] += right[k]
            wrong[-1] += wrong[k]
            right[k], wrong[k] = 0, 0
        return Calibration(self.class_labels, right, wrong)

    def to_json(self) -> dict:
        """Compact: one [class, bin, right, wrong] cell per occupied bin (class -1: the pooled row)."""
        last = self.n_classes
        cells = [[int(k) if k < last else -1, int(j), int(self.right[k, j]), int(self.wrong[k, j])]
                 for k, j in zip(*np.nonzero(self.right + self.wrong), strict=True)]
        return {"version": VERSION, "class_labels": list(self.class_labels), "cells": cells}

    @classmethod
    def from_json(cls, data: object, n_classes: int) -> Calibration | None:
        """Read what :meth:`to_json` wrote; None for anything else (a file from anywhere never raises here)."""
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return None
        class_labels, cells = data.get("class_labels"), data.get("cells")
        if not (isinstance(class_labels, list) and len(class_labels) == n_classes and isinstance(cells, list)
                and len(cells) <= MAX_CELLS and all(_count(c) for c in class_labels)):
            return None
        right = np.zeros((n_classes + 1, BINS), np.int64)
        wrong = np.zeros((n_classes + 1, BINS), np.int64)
        for cell in cells:
            if not (isinstance(cell, list) and len(cell) == 4 and all(_count(v) for v in cell[1:])
                    and isinstance(cell[0], int) and not isinstance(cell[0], bool) and -1 <= cell[0] < n_classes
                    and cell[1] < BINS):
                return None
            right[cell[0], cell[1]] += cell[2]  # -1: the pooled (last) row
            wrong[cell[0], cell[1]] += cell[3]
        if not right.sum() + wrong.sum():
            return None
        return cls(tuple(class_labels), right, wrong)

    @classmethod
    def of(cls, metrics: dict | None, n_classes: int) -> Calibration | None:
        """A classifier's calibration from its metrics; None when it has none (trained before, or no labels)."""
        return cls.from_json((metrics or {}).get("calibration"), n_classes)

    # ---- the rule -------------------------------------------------------------------------------
    def has_own_threshold(self) -> np.ndarray:
        """Per class: whether it has enough labels and held-out predictions for a threshold of its own."""
        return calibration_own(self.class_labels, self.right + self.wrong)

    def promised(self, k: int | None = None) -> np.ndarray:
        """The accuracy promised at each candidate threshold (BINS), for class ``k`` or (None) all together.

        A class's promise is its own lower bound, or the one of all labels together
        unless the class's own record (smoothed toward all of them) is worse.
        """
        r_all, n_all = _at_or_above(self.right.sum(axis=0), self.wrong.sum(axis=0))
        overall = wilson_lower_bound(r_all, n_all)
        if k is None:
            return overall
        r, n = _at_or_above(self.right[k], self.wrong[k])
        smoothed = (r + PRIOR_LABELS * r_all / np.maximum(n_all, 1)) / (n + PRIOR_LABELS)
        return np.maximum(wilson_lower_bound(r, n), np.minimum(overall, smoothed))

    def thresholds(self, target: float) -> np.ndarray:
        """Per class, the lowest threshold whose promised accuracy reaches ``target`` (inf: none does)."""
        check_target(target)
        overall = _lowest_reaching(self.promised(None), target)
        own = self.has_own_threshold()
        return np.array([_lowest_reaching(self.promised(k), target) if own[k] else overall
                         for k in range(self.n_classes)], np.float64)


def calibration_own(class_labels: tuple[int, ...], predictions: np.ndarray) -> np.ndarray:
    """Classes with MIN_CLASS_LABELS labels and as many held-out predictions of their own (rows of ``predictions``)."""
    counts = predictions[: len(class_labels)].sum(axis=1)
    return (np.asarray(class_labels, np.int64) >= MIN_CLASS_LABELS) & (counts >= MIN_CLASS_LABELS)


def _at_or_above(right: np.ndarray, wrong: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right and all held-out predictions at or above each candidate threshold."""
    r, w = np.cumsum(right[::-1])[::-1], np.cumsum(wrong[::-1])[::-1]
    return r, r + w


def _lowest_reaching(promised: np.ndarray, target: float) -> float:
    reaching = np.flatnonzero(promised >= target - 1e-12)
    return float(EDGES[reaching[0]]) if len(reaching) else math.inf


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**9


# ---- what a target means for the photos of a library ----------------------------------------------
@dataclass(frozen=True, eq=False)
class AutoFiling:
    """A target accuracy applied to some photos: the thresholds used, and how many are filed or go to Unsure."""

    target: float
    thresholds: np.ndarray  # per class (inf: nothing of it is filed automatically)
    own_threshold: np.ndarray  # per class: its own estimate, else the one of all labels together
    filed: int  # labelled photos (by their label) and predictions that reach their class's threshold
    unsure: int
    labels: int  # the labels the estimate rests on
    decision: Decision

    def headline(self) -> str:
        return headline(self.target)

    def describe(self) -> str:
        """The CLI's summary line."""
        return (f"{self.headline()}: {self.filed:,} filed, {self.unsure:,} to Unsure "
                f"(estimated from {plural(self.labels, 'label')})")

    def describe_counts(self) -> str:
        """The window's line under the dial."""
        return (f"{plural(self.filed, 'photo')} filed, {self.unsure:,} to Unsure "
                f"(estimated from your {plural(self.labels, 'label')})")

    def to_json(self, classes: list[str]) -> dict:
        return {
            "target_accuracy": self.target,
            "thresholds": {c: (None if not math.isfinite(t) else round(float(t), 6))
                           for c, t in zip(classes, self.thresholds.tolist(), strict=True)},
            "own_estimate": {c: bool(o) for c, o in zip(classes, self.own_threshold.tolist(), strict=True)},
            "filed": self.filed,
            "unsure": self.unsure,
            "estimated_from_labels": self.labels,
        }


def headline(target: float) -> str:
    return f"File automatically when at least {percent(target)} likely right"


def unsure_below(filing: AutoFiling | None, threshold: float) -> str:
    """Which photos a sorting calls unsure, in words: "below 95 % likely right", or the raw "below 50 %"."""
    if filing is not None:
        return f"below {percent(filing.target)} likely right"
    return f"below {percent(threshold)}"


def auto_filing(calibration: Calibration, target: float, probabilities: np.ndarray,
                labels: np.ndarray | None = None) -> AutoFiling:
    """Sort photos (N x C probabilities, labels winning) at a target accuracy, with the counts to show."""
    thresholds = calibration.thresholds(target)
    decision = decide(probabilities, thresholds, labels)
    unsure = int((decision.best < 0).sum())
    return AutoFiling(float(target), thresholds, calibration.has_own_threshold(), len(decision.best) - unsure, unsure,
                      calibration.labels, decision)


TARGET_NEEDS_CLASSIFIER = ("--target-accuracy needs a classifier trained on labels (--classifier NAME): typed "
                           "categories have no labels to estimate accuracy from. Use --threshold with them.")
NO_ESTIMATE_TYPED = "The accuracy dial appears once a classifier has labels."


def no_estimate_yet(classes: Sequence[str], counts: Sequence[int]) -> str:
    """Why the window's dial has no estimate for a classifier with these labels per class, and what to do."""
    from .classifier import accuracy_needs

    needs = accuracy_needs(classes, counts)
    return f"The accuracy dial appears once {needs}." if needs else \
        "The accuracy dial appears after the next training (Train Now)."


def no_estimate(classifier: str) -> str:
    """Why a classifier cannot be asked for a target accuracy, and what to do."""
    return (f"The classifier '{classifier}' has no accuracy estimate yet: it needs labels in two classes, each at "
            "least 2 (one trained by an older photosort: train it again). Use --threshold meanwhile.")
