"""Per-user classifier heads: a small MLP on frozen CLIP vectors, learned from a few labels.

Why an MLP: the product spec fixes the head as "embedding → 256 → ReLU → classes, trained
with Adam and cross-entropy on the frozen embeddings". It is trained here with torch,
full-batch and deterministically, and kept close to the typed categories so that it is
at least as good as a linear probe with few labels (measured below) while able to bend its
class boundaries when labels are many.

How typed categories and labels work together. The head's logits are

    logits(x) = W2 · ReLU(W1 · x̃ + b1) + b2  +  prior_weight * prior_scale * (x · prior^T)
    x̃ = (x - center) * input_scale

where ``prior`` holds the classes' text vectors (their zero-shot classifier). With no
labels ``W2 = b2 = 0`` and ``prior_weight = 1``: the head predicts exactly like the typed
categories, whatever ``W1`` holds. With labels:

* ``prior_weight`` is *calibrated* on the labels: the temperature in [0, 1] under which the
  zero-shot scores best explain them. The prior never saw the labels, so this is an honest
  check: a prior that is right keeps its full weight, a prior that is guessing (a random
  or unsuitable model) fades to nothing and cannot drown the labels.
* the MLP fits the labels on top of that: class-balanced cross-entropy plus an L2 penalty
  that pulls ``W2, b2`` toward 0 (toward the prior) and ``W1`` toward its fixed starting
  point. Its strength is chosen by cross-validation among a few values: with one or two
  labels per class the penalty keeps the head near the prior; as labels accumulate they win.

The cross-validation that picks the penalty also gives the accuracy shown to the user, and
its held-out predictions give the accuracy dial's estimate (:mod:`photosort.core.calibration`).
All folds and penalties train at once, as one batch of small MLPs, on one CPU thread:
on a busy two-core machine extra threads mostly wait for each other.

Measured (tests/test_classifier_accuracy.py's CLIP-like problem, 10 classes, mean held-out accuracy
with 0/1/3/10 labels per class over 5 draws; the linear probe this replaced in brackets):
no prior .10/.36/.86/1.0 (.10/.25/.76/1.0), random prior .07/.36/.85/1.0 (.07/.23/.76/1.0),
weak prior .61/.72/.94/1.0 (.61/.70/.91/1.0), good prior .90/.94/.98/1.0 (.90/.92/.98/1.0).
Training on 500 labels of 512 numbers, cross-validation included, on two cores: about 0.5 s,
0.8 s with the other core busy, up to 1.5 s for the first training after the app starts.

Heads are stored and exported as safetensors (tensors plus JSON metadata), never pickle:
reading a head file cannot run code, and every tensor's name, shape, dtype and values are
checked before use. Files come from anywhere, so every failure is a :class:`ClassifierError`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from .calibration import Calibration
from .errors import ClassifierError
from .threads import torch_threads

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

FORMAT = "photosort-head"
FORMAT_VERSION = 3
HIDDEN = 256
MAX_CLASSES = 1000
MAX_DIM = 16384
MAX_NAME_CHARS = 200
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 1_000_000
MAX_ABS_VALUE = 1e6  # bounds every stored number, so logits stay finite in float32
MIN_LABELS_FOR_ACCURACY = 2  # per labelled class, for a cross-validated accuracy
FEW_LABELS = 3  # classes with fewer labels than this are flagged to the user

# Penalty strengths tried by cross-validation, strongest first (closest to the prior).
PENALTIES = (1.0, 0.3, 0.1, 0.03, 0.01)
MANY_LABELS_PENALTIES = (0.1, 0.01)  # with this many labels the weak end wins; fewer fits keep training fast
DEFAULT_PENALTY = 0.1  # when there are too few labels to cross-validate
MAX_FOLDS = 5
MANY_LABELS = 200  # from here on: 3 folds and the short penalty list (the estimate is still sound)
PRIOR_WEIGHT_GRID = np.linspace(0.0, 1.0, 41)
MIN_SPREAD = 1e-3  # labelled vectors closer than this (duplicates) are not magnified further

# The optimiser: full-batch Adam from a fixed start, stopped when the objective stops improving.
INIT_SEED = 0
INIT_GAIN = 1.0  # W1's starting rows are N(0, gain²) per number: pre-activations of about unit size
W1_PENALTY_RATIO = 1.0  # W1's pull toward its start, relative to W2's pull toward the prior
LEARNING_RATE = 0.03
MAX_STEPS = 150
MIN_STEPS = 30
PLATEAU_STEPS = 10
PLATEAU_TOLERANCE = 5e-4  # improvement of the objective per label over PLATEAU_STEPS below which training stops
TRAINING_THREADS = 1


@dataclass
class Classifier:
    """A classifier over the CLIP vectors of one model (trained, or prior-only)."""

    name: str
    classes: list[str]
    model_key: str
    w1: np.ndarray  # HIDDEN x dim, applied to centred, scaled vectors
    b1: np.ndarray  # HIDDEN
    w2: np.ndarray  # C x HIDDEN
    b2: np.ndarray  # C
    center: np.ndarray  # dim
    input_scale: float = 1.0
    prior: np.ndarray | None = None  # C x dim class text vectors, or None
    prior_scale: float = 100.0  # the model's logit scale, as in zero-shot
    prior_weight: float = 1.0
    prompts: list[str | None] = field(default_factory=list)  # per class: the user's own prompt, or None
    metrics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.prompts:
            self.prompts = [None] * len(self.classes)

    @property
    def dim(self) -> int:
        return int(self.w1.shape[1])

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, np.float32)
        out = np.broadcast_to(self.b2, (len(vectors), len(self.classes))).astype(np.float32)
        if np.any(self.w2):  # an untrained head is its prior alone, exactly
            hidden = np.maximum(((vectors - self.center) * np.float32(self.input_scale)) @ self.w1.T + self.b1, 0)
            out = out + hidden @ self.w2.T
        if self.prior is not None and self.prior_weight > 0:
            out = out + np.float32(self.prior_weight * self.prior_scale) * (vectors @ self.prior.T)
        return out.astype(np.float32)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        from .zeroshot import softmax

        if len(vectors) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        return softmax(self.logits(vectors))

    def renamed(self, name: str) -> Classifier:
        return replace(self, name=name)

    # ---- files ---------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The head as a safetensors file: tensors plus JSON metadata (no pickle)."""
        from safetensors.numpy import save

        tensors = {"w1": self.w1, "b1": self.b1, "w2": self.w2, "b2": self.b2, "center": self.center}
        if self.prior is not None:
            tensors["prior"] = self.prior
        meta = {
            "format": FORMAT,
            "version": str(FORMAT_VERSION),
            "name": self.name,
            "classes": json.dumps(self.classes, ensure_ascii=False),
            "prompts": json.dumps(self.prompts, ensure_ascii=False),
            "model_key": self.model_key,
            "input_scale": repr(float(self.input_scale)),
            "prior_scale": repr(float(self.prior_scale)),
            "prior_weight": repr(float(self.prior_weight)),
            "metrics": json.dumps(self.metrics),
        }
        return save({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, metadata=meta)

    @classmethod
    def from_bytes(cls, data: bytes, expected_model_key: str | None = None, expected_dim: int | None = None) -> Classifier:
        """Read and validate a head file; ClassifierError with the reason when it is not a usable head."""
        if len(data) > MAX_FILE_BYTES:
            raise ClassifierError(f"The classifier file is too large ({len(data) // 1_000_000} MB, limit "
                            f"{MAX_FILE_BYTES // 1_000_000} MB).")
        meta, tensors = _read_safetensors(data)
        head = _classifier_from_parts(meta, tensors)
        if expected_model_key is not None and head.model_key != expected_model_key:
            raise ClassifierError(
                f"The classifier '{head.name}' was made for another model ({head.model_key}); this library uses "
                f"{expected_model_key}. Switch to that model in settings, or train the classifier again here."
            )
        if expected_dim is not None and head.dim != expected_dim:
            raise ClassifierError(f"The classifier '{head.name}' expects {head.dim}-number vectors but this model makes "
                            f"{expected_dim}; it was made for another model.")
        return head


# ---- reading untrusted files ------------------------------------------------------------------
def _read_safetensors(data: bytes) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    if len(data) < 8:
        raise ClassifierError("Not a photosort classifier file (too short).")
    header_len = int.from_bytes(data[:8], "little")
    if header_len <= 1 or header_len > min(len(data) - 8, MAX_HEADER_BYTES):
        raise ClassifierError("Not a photosort classifier file (bad header).")
    try:
        header = json.loads(data[8 : 8 + header_len])
        meta = header.get("__metadata__") if isinstance(header, dict) else None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ClassifierError("Not a photosort classifier file (no photosort metadata).")
        tensors = load(data)
    except (SafetensorError, ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise ClassifierError(f"Not a photosort classifier file ({str(exc)[:120]}).") from None
    return meta, tensors


def _classifier_from_parts(meta: dict[str, str], tensors: dict[str, np.ndarray]) -> Classifier:
    try:
        version = int(meta.get("version", "0"))
        if version > FORMAT_VERSION:
            raise ClassifierError("This classifier file was written by a newer photosort; update photosort to use it.")
        if version < FORMAT_VERSION:
            raise ClassifierError("This classifier file was written by an older photosort; train the classifier again.")
        classes = json.loads(meta["classes"])
        prompts = json.loads(meta.get("prompts", "[]")) or [None] * len(classes)
        name = str(meta["name"])
        model_key = str(meta["model_key"])
        numbers = {k: float(meta.get(k, default)) for k, default in
                   (("input_scale", "1"), ("prior_scale", "100"), ("prior_weight", "1"))}
        metrics = json.loads(meta.get("metrics", "{}"))
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        raise ClassifierError(f"The classifier file's metadata is invalid ({str(exc)[:120]}).") from None
    _check_names(name, classes, prompts)
    _check_numbers(**numbers)
    _check_tensors(tensors, len(classes))
    return Classifier(name, classes, model_key, tensors["w1"], tensors["b1"], tensors["w2"], tensors["b2"],
                tensors["center"], numbers["input_scale"], tensors.get("prior"), numbers["prior_scale"],
                numbers["prior_weight"], prompts, metrics if isinstance(metrics, dict) else {})


def _check_names(name: str, classes: object, prompts: object) -> None:
    if not name.strip() or len(name) > MAX_NAME_CHARS:
        raise ClassifierError("The classifier file's name is empty or too long.")
    if not (isinstance(classes, list) and 1 <= len(classes) <= MAX_CLASSES
            and all(isinstance(c, str) and c.strip() and len(c) <= MAX_NAME_CHARS for c in classes)
            and len({c.casefold() for c in classes}) == len(classes)):
        raise ClassifierError("The classifier file's class list is invalid (empty, duplicated, too long or not text).")
    if not (isinstance(prompts, list) and len(prompts) == len(classes)
            and all(p is None or (isinstance(p, str) and len(p) <= 1000) for p in prompts)):
        raise ClassifierError("The classifier file's prompts do not match its classes.")


def _check_numbers(input_scale: float, prior_scale: float, prior_weight: float) -> None:
    if not (math.isfinite(input_scale) and 0 < input_scale <= MAX_ABS_VALUE
            and math.isfinite(prior_scale) and 0 < prior_scale <= 1000
            and math.isfinite(prior_weight) and 0 <= prior_weight <= 1):
        raise ClassifierError("The classifier file's settings (scales, prior weight) are out of range.")


def _check_tensors(tensors: dict[str, np.ndarray], n_classes: int) -> None:
    required = {"w1", "b1", "w2", "b2", "center"}
    if not required <= set(tensors) or not set(tensors) <= required | {"prior"}:
        raise ClassifierError("The classifier file does not hold the expected tensors.")
    for key, t in tensors.items():
        if t.dtype != np.float32 or not np.all(np.isfinite(t)) or (t.size and float(np.abs(t).max()) > MAX_ABS_VALUE):
            raise ClassifierError(f"The classifier file's tensor '{key}' is not float32 within ±{MAX_ABS_VALUE:g}.")
    w1 = tensors["w1"]
    dim = w1.shape[1] if w1.ndim == 2 else -1
    shapes_ok = (w1.shape == (HIDDEN, dim) and 1 <= dim <= MAX_DIM and tensors["b1"].shape == (HIDDEN,)
                 and tensors["w2"].shape == (n_classes, HIDDEN) and tensors["b2"].shape == (n_classes,)
                 and tensors["center"].shape == (dim,))
    prior = tensors.get("prior")
    if prior is not None and prior.shape != (n_classes, dim):
        shapes_ok = False
    if not shapes_ok:
        raise ClassifierError("The classifier file's tensor shapes do not match its classes.")


# ---- building and training ----------------------------------------------------------------------
def initial_w1(dim: int) -> np.ndarray:
    """W1's fixed starting point (seeded): every training run, fold and penalty starts from it."""
    rng = np.random.default_rng(INIT_SEED)
    return (INIT_GAIN * rng.standard_normal((HIDDEN, dim))).astype(np.float32)


def untrained_classifier(name: str, classes: list[str], model_key: str, dim: int, prior: np.ndarray | None = None,
                   prior_scale: float = 100.0, prompts: list[str | None] | None = None) -> Classifier:
    """A head with no labels yet: predicts from the prior (zero-shot) alone, if it has one."""
    n = len(classes)
    return Classifier(name, list(classes), model_key, initial_w1(dim), np.zeros(HIDDEN, np.float32),
                np.zeros((n, HIDDEN), np.float32), np.zeros(n, np.float32), np.zeros(dim, np.float32), 1.0,
                None if prior is None else np.asarray(prior, np.float32), float(prior_scale), 1.0,
                list(prompts) if prompts else [None] * n)


@dataclass(frozen=True)
class Training:
    """A trained head and what the user is told about it."""

    head: Classifier
    accuracy: float | None  # cross-validated; None when there are too few labels to say
    penalty: float
    calibration: Calibration | None = None  # how often a filed photo is right per threshold; None like accuracy


@dataclass(frozen=True)
class CrossValidation:
    """The penalty chosen, its cross-validated accuracy, and every label's held-out probabilities under it."""

    penalty: float
    accuracy: float | None  # None unless every labelled class has MIN_LABELS_FOR_ACCURACY labels
    held_out: np.ndarray | None  # n x C, each label predicted by the fold that did not see it; None without folds


def train(base: Classifier, vectors: np.ndarray, targets: np.ndarray) -> Training:
    """Fit ``base``'s classes to labelled vectors (targets are class indices), penalty chosen by cross-validation.

    Deterministic: the same labels give the same head.
    """
    vectors = np.asarray(vectors, np.float32)
    targets = np.asarray(targets, np.int64)
    if len(targets) == 0:
        head = untrained_classifier(base.name, base.classes, base.model_key, base.dim, base.prior, base.prior_scale,
                              base.prompts)
        return Training(head, None, DEFAULT_PENALTY)
    cv = cross_validate(base, vectors, targets)
    calibration = None
    if cv.accuracy is not None and cv.held_out is not None:  # the same labels the accuracy needs
        calibration = Calibration.from_held_out(cv.held_out, targets)
    return Training(fit_classifier(base, vectors, targets, cv.penalty), cv.accuracy, cv.penalty, calibration)


def fit_classifier(base: Classifier, vectors: np.ndarray, targets: np.ndarray, penalty: float = DEFAULT_PENALTY) -> Classifier:
    """A copy of ``base`` fitted to labelled vectors with one penalty strength."""
    problem = _Problem.make(base, np.asarray(vectors, np.float32), np.asarray(targets, np.int64))
    return problem.head(base, _train_mlps([problem], (penalty,))[0][0])


def can_estimate_accuracy(counts_per_class: Sequence[int] | np.ndarray) -> bool:
    """Whether labels this many per class give a cross-validated accuracy: two classes labelled, and every labelled
    class at least twice (cross-validation holds out each label in turn; a class's only label could not be)."""
    return not accuracy_needs(["?"] * len(counts_per_class), counts_per_class)


def accuracy_needs(classes: Sequence[str], counts_per_class: Sequence[int] | np.ndarray) -> str:
    """What labelling is missing before the accuracy can be estimated, as the end of "… once {this}." ("": none)."""
    present = [(name, int(n)) for name, n in zip(classes, counts_per_class, strict=True) if n > 0]
    if len(present) < 2:
        return "at least two classes have labels"
    short = [name for name, n in present if n < MIN_LABELS_FOR_ACCURACY]
    if not short:
        return ""
    names = short[0] if len(short) == 1 else f"{', '.join(short[:-1])} and {short[-1]}"
    return (f"every labelled class has at least {MIN_LABELS_FOR_ACCURACY} labels "
            f"({names} {'has' if len(short) == 1 else 'have'} fewer)")


def penalties_for(n_labels: int) -> tuple[float, ...]:
    return MANY_LABELS_PENALTIES if n_labels >= MANY_LABELS else PENALTIES


def select_penalty(base: Classifier, vectors: np.ndarray, targets: np.ndarray) -> tuple[float, float | None]:
    """The penalty with the best class-balanced cross-validated accuracy, and that plain accuracy."""
    cv = cross_validate(base, vectors, targets)
    return cv.penalty, cv.accuracy


def cross_validate(base: Classifier, vectors: np.ndarray, targets: np.ndarray) -> CrossValidation:
    """The penalty with the best class-balanced cross-validated accuracy, that plain accuracy, and the
    held-out probabilities behind it (which :mod:`photosort.core.calibration` turns into the accuracy dial).

    Ties (common with few labels) go to the better cross-validated likelihood, which prefers
    the penalty that is confident only where the labels support it.

    Folds are stratified and spread singletons across folds, so even one label per class
    tells whether fitting the labels helps or hurts the other photos. The accuracy is
    reported only when every labelled class has at least two labels. It is that of the
    chosen penalty, so the choice could flatter it; measured against unlabelled photos it
    errs low instead (each fold learns from 4/5 of the labels), by up to 3 points high at
    worst (tests/test_classifier_accuracy.py checks this).
    """
    counts = np.bincount(targets, minlength=len(base.classes))
    present = counts[counts > 0]
    if len(targets) < 2 or len(present) < 2:
        return CrossValidation(DEFAULT_PENALTY, None, None)
    penalties = penalties_for(len(targets))
    folds = stratified_folds(targets, min(MAX_FOLDS if len(targets) < MANY_LABELS else 3, len(targets)))
    log_probs = _cross_validated_log_probabilities(base, vectors, targets, folds, penalties)
    correct = log_probs.argmax(axis=2) == targets
    rows = np.arange(len(targets))
    balanced_accuracy = (correct / counts[targets]).sum(axis=1)
    balanced_likelihood = (log_probs[:, rows, targets] / counts[targets]).sum(axis=1)
    best = max(range(len(penalties)), key=lambda i: (round(float(balanced_accuracy[i]), 9), balanced_likelihood[i]))
    accuracy = float(correct[best].mean()) if can_estimate_accuracy(counts) else None
    return CrossValidation(penalties[best], accuracy, np.exp(log_probs[best]))


def _cross_validated_log_probabilities(base: Classifier, vectors: np.ndarray, targets: np.ndarray, folds: np.ndarray,
                                       penalties: tuple[float, ...]) -> np.ndarray:
    """Log-probabilities of every label's photo when its fold is held out, per penalty (penalties x n x C).

    Every fold's problem (its own centring, scaling and prior calibration, from its training
    labels only) and every penalty train together as one batch.
    """
    out = np.empty((len(penalties), len(targets), len(base.classes)), np.float64)
    held_out = [folds == fold for fold in np.unique(folds)]
    problems = [_Problem.make(base, vectors[~test], targets[~test]) for test in held_out]
    for test, problem, fitted in zip(held_out, problems, _train_mlps(problems, penalties), strict=True):
        for i, parameters in enumerate(fitted):
            logits = problem.head(base, parameters).logits(vectors[test]).astype(np.float64)
            logits -= logits.max(axis=1, keepdims=True)
            out[i, test] = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return out


def stratified_folds(targets: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fold of each label: classes in turn, shuffled within, dealt round-robin (so classes spread evenly)."""
    rng = np.random.default_rng(seed)
    order = []
    for c in np.unique(targets):
        members = np.flatnonzero(targets == c)
        rng.shuffle(members)
        order.append(members)
    folds = np.empty(len(targets), np.int64)
    folds[np.concatenate(order)] = np.arange(len(targets)) % k
    return folds


def calibrated_prior_weight(prior_logits: np.ndarray, targets: np.ndarray, sample_weight: np.ndarray) -> float:
    """The weight in [0, 1] under which the zero-shot logits best explain the labels (max likelihood)."""
    rows = np.arange(len(targets))
    best, best_ll = 0.0, -np.inf
    for a in PRIOR_WEIGHT_GRID:
        z = a * prior_logits
        z = z - z.max(axis=1, keepdims=True)
        ll = float((sample_weight * (z[rows, targets] - np.log(np.exp(z).sum(axis=1)))).sum())
        if ll > best_ll + 1e-12:
            best, best_ll = float(a), ll
    return best


_Parameters = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # w1, b1, w2, b2


@dataclass
class _Problem:
    """One training set: centred, scaled inputs, class-balanced weights and the calibrated prior's logits."""

    z: np.ndarray  # n x dim, centred and scaled inputs (float32)
    targets: np.ndarray
    sample_weight: np.ndarray  # balanced, mean 1
    offset: np.ndarray  # n x C prior logits, already weighted
    center: np.ndarray
    input_scale: float
    prior_weight: float

    @classmethod
    def make(cls, base: Classifier, vectors: np.ndarray, targets: np.ndarray) -> _Problem:
        x = np.asarray(vectors, np.float32)
        n_classes = len(base.classes)
        counts = np.bincount(targets, minlength=n_classes)
        sample_weight = len(targets) / (np.count_nonzero(counts) * counts[targets])
        center = np.mean([x[targets == c].mean(axis=0) for c in np.flatnonzero(counts)], axis=0)
        spread = float(np.sqrt(((x - center) ** 2).sum(axis=1).mean()))
        input_scale = 1.0 / max(spread, MIN_SPREAD)
        offset = np.zeros((len(targets), n_classes), np.float32)
        prior_weight = 0.0
        if base.prior is not None:
            prior_logits = base.prior_scale * (x @ base.prior.T)
            prior_weight = calibrated_prior_weight(prior_logits, targets, sample_weight)
            offset = (prior_weight * prior_logits).astype(np.float32)
        return cls(((x - center) * input_scale).astype(np.float32), targets, sample_weight, offset,
                   center.astype(np.float32), input_scale, prior_weight)

    def head(self, base: Classifier, parameters: _Parameters) -> Classifier:
        w1, b1, w2, b2 = parameters
        return Classifier(base.name, list(base.classes), base.model_key, w1, b1, w2, b2, self.center, self.input_scale,
                    base.prior, base.prior_scale, self.prior_weight, list(base.prompts), dict(base.metrics))


def _train_mlps(problems: list[_Problem], penalties: tuple[float, ...]) -> list[list[_Parameters]]:
    """Train one MLP per (problem, penalty), all in one batch; their parameters, per problem then penalty.

    Full-batch Adam on class-balanced cross-entropy (summed over labels, so more labels
    outweigh a given penalty) plus 0.5 * penalty * (|W2|² + |b2|² + ratio * |W1 - W1₀|²).
    W1's change is trained in the span of the problem's inputs (``W1 = W1₀ + A · basisᵀ``):
    the cross-entropy's gradient lies there and the penalty has its minimum there, and
    with fewer labels than dimensions it makes each step several times cheaper.
    Problems of unequal size are padded with zero-weight rows. The models are independent
    (Adam is per-parameter), so batching them changes nothing but the speed. Deterministic:
    a fixed start and no randomness during training.
    """
    import torch

    with torch_threads(TRAINING_THREADS), torch.enable_grad():
        data = _Batch.of(problems, len(penalties))
        lam = torch.tensor(penalties, dtype=torch.float32).view(1, -1, 1, 1)
        shape = (len(problems), len(penalties))
        a = torch.zeros(*shape, HIDDEN, data.basis.shape[-1], requires_grad=True)
        b1 = torch.zeros(*shape, 1, HIDDEN, requires_grad=True)
        w2 = torch.zeros(*shape, data.n_classes, HIDDEN, requires_grad=True)
        b2 = torch.zeros(*shape, 1, data.n_classes, requires_grad=True)
        optimiser = torch.optim.Adam([a, b1, w2, b2], lr=LEARNING_RATE)
        history: list[torch.Tensor] = []
        for step in range(MAX_STEPS):
            optimiser.zero_grad(set_to_none=True)
            hidden = torch.relu(data.start_pre_activation + data.projected @ a.transpose(-1, -2) + b1)
            logits = hidden @ w2.transpose(-1, -2) + b2 + data.offset
            log_probs = logits.log_softmax(dim=-1).gather(-1, data.targets).squeeze(-1)
            fit = -(data.weight * log_probs).sum(dim=-1)[..., None, None]
            pull = (w2.square().sum(dim=(-1, -2), keepdim=True) + b2.square().sum(dim=(-1, -2), keepdim=True)
                    + W1_PENALTY_RATIO * a.square().sum(dim=(-1, -2), keepdim=True))
            objective = fit + 0.5 * lam * pull
            objective.sum().backward()
            optimiser.step()
            history.append(objective.detach().flatten())
            if step >= MIN_STEPS and _has_plateaued(history, data.labels):
                break
        log.debug("trained %d MLPs in %d steps", shape[0] * shape[1], len(history))
        with torch.no_grad():
            w1 = (data.w1_start + a @ data.basis.transpose(-1, -2)).numpy()
        b1n, w2n, b2n = (t.detach().numpy() for t in (b1, w2, b2))
    return [[(w1[i, j].copy(), b1n[i, j, 0].copy(), w2n[i, j].copy(), b2n[i, j, 0].copy())
             for j in range(len(penalties))] for i in range(len(problems))]


def _has_plateaued(history: list[torch.Tensor], labels: torch.Tensor) -> bool:
    """Whether no model improved its objective by more than PLATEAU_TOLERANCE per label in PLATEAU_STEPS."""
    return bool(((history[-1 - PLATEAU_STEPS] - history[-1]) <= PLATEAU_TOLERANCE * labels).all())


@dataclass
class _Batch:
    """Problems stacked into tensors (problems x 1 x rows x ...), padded rows weighing nothing."""

    start_pre_activation: torch.Tensor  # z · W1₀ᵀ
    projected: torch.Tensor  # z in its span's basis
    basis: torch.Tensor  # problems x 1 x dim x rank, orthonormal columns (zero columns pad)
    w1_start: torch.Tensor
    targets: torch.Tensor
    weight: torch.Tensor
    offset: torch.Tensor
    n_classes: int
    labels: torch.Tensor  # per model (problems x penalties, flattened): how many labels it learns from

    @classmethod
    def of(cls, problems: list[_Problem], n_penalties: int) -> _Batch:
        import torch

        rows, dim = max(len(p.targets) for p in problems), problems[0].z.shape[1]
        n_classes = problems[0].offset.shape[1]
        bases = [_span_basis(p.z) for p in problems]
        rank = max(b.shape[1] for b in bases)
        z = np.zeros((len(problems), 1, rows, dim), np.float32)
        basis = np.zeros((len(problems), 1, dim, rank), np.float32)
        targets = np.zeros((len(problems), 1, rows, 1), np.int64)
        weight = np.zeros((len(problems), 1, rows), np.float32)
        offset = np.zeros((len(problems), 1, rows, n_classes), np.float32)
        for i, (p, b) in enumerate(zip(problems, bases, strict=True)):
            n = len(p.targets)
            z[i, 0, :n], targets[i, 0, :n, 0], weight[i, 0, :n], offset[i, 0, :n] = p.z, p.targets, p.sample_weight, p.offset
            basis[i, 0, :, : b.shape[1]] = b
        w1_start = torch.from_numpy(initial_w1(dim))
        z_t, basis_t = torch.from_numpy(z), torch.from_numpy(basis)
        return cls(z_t @ w1_start.T, z_t @ basis_t, basis_t, w1_start,
                   torch.from_numpy(targets).expand(-1, n_penalties, -1, -1), torch.from_numpy(weight),
                   torch.from_numpy(offset), n_classes,
                   torch.tensor([float(len(p.targets)) for p in problems]).repeat_interleave(n_penalties))


def _span_basis(z: np.ndarray) -> np.ndarray:
    """Orthonormal columns spanning the rows of ``z`` (dim x rank); the identity when they span everything."""
    if len(z) >= z.shape[1]:
        return np.eye(z.shape[1], dtype=np.float32)
    _, singular, vt = np.linalg.svd(z.astype(np.float64), full_matrices=False)
    keep = singular > 1e-6 * max(float(singular[0]), 1e-30)
    return vt[keep].T.astype(np.float32)
