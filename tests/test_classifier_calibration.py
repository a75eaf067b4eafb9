"""The confidence dial that speaks in accuracy: the estimate from held-out predictions, and its honesty.

The rule lives in :mod:`photosort.core.calibration`; these tests check it on counts made by
hand (exactly), on files from anywhere (never raises), and on synthetic CLIP-like problems
where the truth is known: trained on a few dozen labels, the photos it files automatically
at a target accuracy are right at least that often (within a few points), seed after seed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import photosort.core.calibration as calibration_module
from photosort.core.calibration import (
    BINS,
    EDGES,
    MIN_CLASS_LABELS,
    Calibration,
    auto_filing,
    bin_of,
    check_target,
    percent,
    wilson_lower_bound,
)
from photosort.core.classifier import Classifier, train, untrained_classifier
from photosort.core.errors import UsageError
from photosort.core.sorting import UNSURE, decide

DIM = 256


# ---- the pieces -----------------------------------------------------------------------------------
def test_a_probability_reaches_a_candidate_threshold_exactly_when_its_bin_does() -> None:
    rng = np.random.default_rng(0)
    confidences = np.concatenate([rng.random(2000), 1 - 10.0 ** -rng.uniform(0, 5, 2000), EDGES, [0.0, 1.0]])
    for c in (confidences, confidences.astype(np.float32)):
        bins = bin_of(c)
        for j in (0, 1, 17, 50, 100, 150, BINS - 1):
            assert np.array_equal(bins >= j, np.asarray(c, np.float64) >= EDGES[j])


def test_the_wilson_bound_is_below_the_record_and_tightens_with_more_labels() -> None:
    assert wilson_lower_bound(np.array([0]), np.array([0]))[0] == 0.0
    bounds = wilson_lower_bound(np.array([10, 100, 1000]), np.array([10, 100, 1000]))
    assert (bounds < 1).all() and np.all(np.diff(bounds) > 0)
    assert wilson_lower_bound(np.array([60]), np.array([60]))[0] == pytest.approx(0.973, abs=0.002)
    assert wilson_lower_bound(np.array([45]), np.array([50]))[0] == pytest.approx(0.836, abs=0.005)


@pytest.mark.parametrize("bad", [0, 1, 0.0, 1.0, -0.2, 1.5, math.nan, math.inf])
def test_a_target_outside_zero_to_one_is_a_usage_error(bad: float) -> None:
    with pytest.raises(UsageError, match="between 0 and 1"):
        check_target(bad)
    assert check_target(0.95) == 0.95


def test_percentages_read_as_people_write_them() -> None:
    assert (percent(0.95), percent(0.9), percent(0.955), percent(0.5)) == ("95 %", "90 %", "95.5 %", "50 %")


def held_out(confidences: list[float], right: list[bool], predicted: list[int] | int = 0,
             n_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Held-out probabilities and true classes for predictions of given confidence and correctness."""
    predicted = np.broadcast_to(np.asarray(predicted), (len(confidences),))
    probabilities = np.zeros((len(confidences), n_classes))
    for i, (c, k) in enumerate(zip(confidences, predicted, strict=True)):
        probabilities[i] = (1 - c) / (n_classes - 1)
        probabilities[i, k] = c
    truth = np.where(right, predicted, (predicted + 1) % n_classes)
    return probabilities, truth


def lowest_threshold_by_hand(confidences: np.ndarray, right: np.ndarray, target: float) -> float:
    for edge in EDGES:
        filed = confidences >= edge
        if filed.any() and wilson_lower_bound(right[filed].sum(), filed.sum()) >= target:
            return float(edge)
    return math.inf


def test_the_threshold_is_the_lowest_whose_bound_reaches_the_target() -> None:
    rng = np.random.default_rng(3)
    confidences = rng.uniform(0.5, 1.0, 400)
    right = rng.random(400) < confidences  # surer predictions are right more often
    probabilities, truth = held_out(list(confidences), list(right), list(rng.integers(0, 2, 400)))
    calibration = Calibration.from_held_out(probabilities, truth)
    assert calibration.labels == 400
    for target in (0.6, 0.8, 0.9, 0.95, 0.99):
        expected = lowest_threshold_by_hand(probabilities.max(axis=1), probabilities.argmax(axis=1) == truth, target)
        assert calibration.promised().shape == (BINS,)
        assert _lowest(calibration.promised(), target) == expected
        assert calibration.thresholds(target).shape == (2,)


def _lowest(promised: np.ndarray, target: float) -> float:
    reaching = np.flatnonzero(promised >= target - 1e-12)
    return float(EDGES[reaching[0]]) if len(reaching) else math.inf


def test_a_target_no_threshold_reaches_files_nothing_but_the_labelled_photos() -> None:
    probabilities, truth = held_out([0.99] * 8 + [0.6] * 4, [True] * 8 + [False] * 4)
    calibration = Calibration.from_held_out(probabilities, truth)
    assert np.isinf(calibration.thresholds(0.95)).all()  # 8 right of 8 cannot promise 95 %
    photos = np.array([[0.999, 0.001], [0.2, 0.8], [0.5, 0.5]], np.float32)
    filing = auto_filing(calibration, 0.95, photos, np.array([-1, 0, -1]))
    assert filing.decision.best.tolist() == [UNSURE, 0, UNSURE]  # labels still win
    assert (filing.filed, filing.unsure, filing.labels) == (1, 2, 12)
    assert filing.to_json(["a", "b"])["thresholds"] == {"a": None, "b": None}


def test_a_class_its_labels_show_to_be_weaker_gets_a_higher_threshold_of_its_own() -> None:
    strong = held_out([0.9] * 60, [True] * 60, 0, 3)
    weak = held_out([0.9] * 30 + [0.99] * 30, [True, False] * 15 + [True] * 30, 1, 3)
    few = held_out([0.9] * 5, [True] * 5, 2, 3)
    probabilities = np.concatenate([strong[0], weak[0], few[0]])
    calibration = Calibration.from_held_out(probabilities, np.concatenate([strong[1], weak[1], few[1]]))
    assert calibration.has_own_threshold().tolist() == [True, True, False]  # class 2: 5 predictions of its own
    assert MIN_CLASS_LABELS == 10
    thresholds = calibration.thresholds(0.9)
    assert thresholds[1] > thresholds[0]  # its 0.9 predictions are right half the time
    assert thresholds[2] == _lowest(calibration.promised(), 0.9)  # too few labels: all classes together
    photos = np.array([[0.92, 0.04, 0.04], [0.05, 0.9, 0.05], [0.01, 0.995, 0.005]], np.float32)
    assert decide(photos, thresholds).predicted.tolist() == [0, UNSURE, 1]


def test_decide_takes_one_threshold_per_class() -> None:
    photos = np.array([[0.7, 0.3], [0.3, 0.7], [0.55, 0.45]], np.float32)
    assert decide(photos, np.array([0.6, 0.8])).predicted.tolist() == [0, UNSURE, UNSURE]
    assert decide(photos, np.array([0.5, math.inf]), np.array([-1, 1, -1])).best.tolist() == [0, 1, 0]
    assert decide(photos, 0.6).predicted.tolist() == decide(photos, np.array([0.6, 0.6])).predicted.tolist()


def test_the_calibration_is_kept_compactly_and_read_back_the_same() -> None:
    rng = np.random.default_rng(1)
    probabilities = rng.dirichlet(np.ones(4) * 0.3, 300)
    calibration = Calibration.from_held_out(probabilities, rng.integers(0, 4, 300))
    stored = calibration.to_json()
    assert len(stored["cells"]) <= 300
    again = Calibration.from_json(stored, 4)
    assert again is not None and again.class_labels == calibration.class_labels
    for target in (0.5, 0.7, 0.9):
        assert np.array_equal(again.thresholds(target), calibration.thresholds(target))
    assert Calibration.of({"calibration": stored}, 4) is not None
    assert Calibration.of({"cv_accuracy": 0.9}, 4) is None  # trained before the estimate existed


@pytest.mark.parametrize("bad", [
    None, [], "x", {"version": 2, "class_labels": [1, 1], "cells": [[0, 0, 1, 0]]},
    {"version": 1, "class_labels": [1], "cells": [[0, 0, 1, 0]]},
    {"version": 1, "class_labels": [1, 1], "cells": []},
    {"version": 1, "class_labels": [1, 1], "cells": [[2, 0, 1, 0]]},
    {"version": 1, "class_labels": [1, 1], "cells": [[-2, 0, 1, 0]]},
    {"version": 1, "class_labels": [1, 1], "cells": [[0, BINS, 1, 0]]},
    {"version": 1, "class_labels": [1, 1], "cells": [[0, 0, -1, 0]]},
    {"version": 1, "class_labels": [1, 1], "cells": [[True, 0, 1, 0]]},
    {"version": 1, "class_labels": [1, 1], "cells": [["0", 0, 1, 0]]},
    {"version": 1, "class_labels": [1, 1], "cells": [[0, 0.5, 1, 0]]},
    {"version": 1, "class_labels": [1, 1], "cells": [[0, 0, 1]]},
    {"version": 1, "class_labels": [1, "1"], "cells": [[0, 0, 1, 0]]},
    {"version": 1, "class_labels": [1, 1], "cells": [[0, 0, 10**12, 0]]},
])
def test_a_calibration_from_anywhere_is_refused_without_raising(bad: object) -> None:
    assert Calibration.from_json(bad, 2) is None


def test_many_labels_in_many_classes_keep_only_all_classes_together(monkeypatch) -> None:
    monkeypatch.setattr(calibration_module, "MAX_STORED_CELLS", 5)
    rng = np.random.default_rng(2)
    probabilities = rng.dirichlet(np.ones(3) * 0.3, 200)
    calibration = Calibration.from_held_out(probabilities, rng.integers(0, 3, 200))
    assert not calibration.has_own_threshold().any() and calibration.labels == 200
    assert len(set(calibration.thresholds(0.5).tolist())) == 1


def test_training_keeps_the_estimate_in_the_file_and_an_old_file_has_none() -> None:
    x, y = gaussian_problem(0, per_class=20)
    base = untrained_classifier("h", ["a", "b", "c", "d"], "m", DIM, None)
    assert train(base, x[:1], y[:1]).calibration is None  # too few labels: no estimate, as no accuracy
    chosen = np.concatenate([np.flatnonzero(y == k)[:6] for k in range(4)])
    training = train(base, x[chosen], y[chosen])
    assert training.accuracy is not None and training.calibration is not None
    assert training.calibration.labels == len(chosen)
    head = training.head
    head.metrics = {"cv_accuracy": training.accuracy, "calibration": training.calibration.to_json()}
    read = Classifier.from_bytes(head.to_bytes())
    again = Calibration.of(read.metrics, len(read.classes))
    assert again is not None and np.array_equal(again.thresholds(0.8), training.calibration.thresholds(0.8))


# ---- honesty on synthetic problems ------------------------------------------------------------------
def gaussian_problem(seed: int, n_classes: int = 4, per_class: int = 600, separation: float = 0.4,
                     close: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CLIP-like vectors: unit vectors in a narrow cone, class means that overlap, shared nuisance directions.

    ``close``: classes 0 and 1 overlap much more (their means differ by this little), the others are apart.
    """
    rng = np.random.default_rng(seed)
    cone = rng.normal(size=DIM)
    cone /= np.linalg.norm(cone)
    means = separation * rng.normal(size=(n_classes, DIM)) / np.sqrt(DIM)
    if close is not None:
        means[1] = means[0] + close * rng.normal(size=DIM) / np.sqrt(DIM)
    nuisance = rng.normal(size=(8, DIM)) / np.sqrt(DIM)
    targets = np.repeat(np.arange(n_classes), per_class)
    vectors = (2.0 * cone + means[targets] + 0.5 * rng.normal(size=(len(targets), DIM)) / np.sqrt(DIM)
               + 0.75 * rng.normal(size=(len(targets), 8)) @ nuisance)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), targets


TARGETS = (0.8, 0.9, 0.95)
SLACK = 0.03  # "within a few points": the realised accuracy may fall this far below the promise
MIN_FILED = 30  # below this many photos filed, a realised accuracy says little


def realised(seed: int, n_labels: int, **problem) -> dict[float, tuple[float, float]]:
    """Train on ``n_labels`` random labels; per target, the accuracy of the photos it files and the share filed."""
    vectors, targets = gaussian_problem(seed, **problem)
    rng = np.random.default_rng(1000 + seed)
    labelled = rng.choice(len(targets), n_labels, replace=False)
    rest = np.setdiff1d(np.arange(len(targets)), labelled)
    base = untrained_classifier("h", [f"c{k}" for k in range(int(targets.max()) + 1)], "m", DIM, None)
    training = train(base, vectors[labelled], targets[labelled])
    assert training.calibration is not None
    probabilities = training.head.probabilities(vectors[rest])
    out = {}
    for target in TARGETS:
        predicted = auto_filing(training.calibration, target, probabilities).decision.predicted
        filed = predicted >= 0
        accuracy = float((predicted[filed] == targets[rest][filed]).mean()) if filed.any() else math.nan
        out[target] = (accuracy, float(filed.mean()))
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("n_labels", "problem"), [(60, {"separation": 0.4}), (200, {"close": 0.25})],
                         ids=["60 labels, overlapping", "200 labels, two classes nearly alike"])
def test_the_photos_filed_automatically_are_right_as_often_as_promised(n_labels: int, problem: dict) -> None:
    rows = {seed: realised(seed, n_labels, **problem) for seed in range(5)}
    report = {seed: {t: f"{a:.3f} ({f:.0%} filed)" for t, (a, f) in row.items()} for seed, row in rows.items()}
    for seed, row in rows.items():
        for target, (accuracy, share) in row.items():
            if share * 2400 >= MIN_FILED:
                assert accuracy >= target - SLACK, (seed, target, report)
        assert row[0.8][1] >= 0.5, ("the dial files most photos at 80 %", report)  # honest, and still of use
