"""How a head learns from labels on top of typed categories, measured where the truth is known.

The problem imitates CLIP vectors (unit vectors in a narrow cone, 10 classes whose means
differ a little, within-class spread and shared nuisance directions) so that one label per
class gives a weak classifier. The typed categories' text vectors are made at chosen
quality: none, random (a model whose zero-shot is at chance, like the random stand-in),
weak (~60% zero-shot) and good (~90%, like the real CLIP on easy categories).
Trains 80 small heads (torch, one thread): about half a minute on a busy two-core machine.
"""

from __future__ import annotations

import numpy as np
import pytest

from photosort.core.classifier import train, untrained_classifier

pytestmark = pytest.mark.slow  # every test reads the module's learning curves (about a minute to train)

N_CLASSES, PER_CLASS, DIM = 10, 40, 256
LABELS_PER_CLASS = (0, 1, 3, 10)
DRAWS = 5


def clip_like_vectors(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cone = rng.normal(size=DIM)
    cone /= np.linalg.norm(cone)
    means = rng.normal(size=(N_CLASSES, DIM)) / np.sqrt(DIM)
    nuisance = rng.normal(size=(8, DIM)) / np.sqrt(DIM)
    targets = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    vectors = (2.0 * cone + means[targets] + 0.5 * rng.normal(size=(len(targets), DIM)) / np.sqrt(DIM)
               + 0.75 * rng.normal(size=(len(targets), 8)) @ nuisance)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), targets, means


def text_vectors(vectors: np.ndarray, targets: np.ndarray, means: np.ndarray, zero_shot_accuracy: float) -> np.ndarray:
    """Class 'text' vectors: a modality-gap direction, a bit of each class's direction, noise tuned to an accuracy."""
    rng = np.random.default_rng(1)
    gap = rng.normal(size=DIM)
    gap /= np.linalg.norm(gap)
    direction = means - means.mean(axis=0)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    noise = rng.normal(size=(N_CLASSES, DIM))
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    candidates = []
    for level in np.linspace(0, 6, 61):
        text = gap + 0.25 * (direction + level * noise)
        text /= np.linalg.norm(text, axis=1, keepdims=True)
        candidates.append((abs(float(((vectors @ text.T).argmax(1) == targets).mean()) - zero_shot_accuracy), level))
    level = min(candidates)[1]
    text = gap + 0.25 * (direction + level * noise)
    return (text / np.linalg.norm(text, axis=1, keepdims=True)).astype(np.float32)


def random_text_vectors() -> np.ndarray:
    text = np.random.default_rng(5).normal(size=(N_CLASSES, DIM))
    return (text / np.linalg.norm(text, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def problem() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    vectors, targets, means = clip_like_vectors()
    return {
        "no prior": (vectors, targets, None),
        "random prior": (vectors, targets, random_text_vectors()),
        "weak prior": (vectors, targets, text_vectors(vectors, targets, means, 0.6)),
        "good prior": (vectors, targets, text_vectors(vectors, targets, means, 0.9)),
    }


def learning_curve(vectors: np.ndarray, targets: np.ndarray, prior: np.ndarray | None) -> dict[int, tuple[float, float]]:
    """Mean held-out accuracy and mean reported (cross-validated) accuracy per labels-per-class."""
    base = untrained_classifier("h", [f"c{i}" for i in range(N_CLASSES)], "m", DIM, prior, 100.0)
    curve = {}
    for per_class in LABELS_PER_CLASS:
        held_out, reported = [], []
        for draw in range(DRAWS):
            rng = np.random.default_rng(100 + draw)
            chosen = np.concatenate([rng.choice(np.flatnonzero(targets == c), per_class, replace=False)
                                     for c in range(N_CLASSES)]).astype(np.int64)
            rest = np.setdiff1d(np.arange(len(targets)), chosen)
            training = train(base, vectors[chosen], targets[chosen])
            held_out.append(float((training.head.logits(vectors[rest]).argmax(1) == targets[rest]).mean()))
            reported.append(np.nan if training.accuracy is None else training.accuracy)
        curve[per_class] = (float(np.mean(held_out)), float(np.mean(reported)))
    return curve


@pytest.fixture(scope="module")
def curves(problem) -> dict[str, dict[int, tuple[float, float]]]:
    return {name: learning_curve(*args) for name, args in problem.items()}


@pytest.mark.parametrize("regime", ["no prior", "random prior", "weak prior", "good prior"])
def test_accuracy_never_drops_as_labels_are_added(curves, regime: str) -> None:
    accuracy = [curves[regime][k][0] for k in LABELS_PER_CLASS]
    assert accuracy == sorted(accuracy), dict(zip(LABELS_PER_CLASS, accuracy, strict=True))


def test_one_label_per_class_already_improves_on_a_good_prior(curves) -> None:
    assert curves["good prior"][1][0] > curves["good prior"][0][0] + 0.02


def test_a_random_prior_fades_once_there_are_labels(curves) -> None:
    """A model whose zero-shot is at chance must not hold the labels back."""
    for per_class in (3, 10):
        assert curves["random prior"][per_class][0] >= curves["no prior"][per_class][0] - 0.02


def test_priors_help_most_when_labels_are_few(curves) -> None:
    assert curves["weak prior"][1][0] > curves["no prior"][1][0] + 0.2
    assert curves["good prior"][3][0] > curves["no prior"][3][0]


def test_reported_accuracy_is_not_optimistic(curves) -> None:
    """The cross-validated accuracy shown to the user may err low (each fold trains on 4/5 of the
    labels), but must not promise more than the head delivers on unlabelled photos."""
    for regime, curve in curves.items():
        for per_class in (3, 10):
            held_out, reported = curve[per_class]
            assert reported <= held_out + 0.03, (regime, per_class, reported, held_out)
