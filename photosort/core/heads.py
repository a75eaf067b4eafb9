"""Per-user classifier heads: a linear classifier on frozen CLIP vectors, learned from a few labels.

Why linear: on CLIP vectors a linear probe is the standard few-shot classifier; it fits a
few hundred labels in milliseconds with NumPy alone, which is what lets the app retrain
after every few clicks and still cross-validate. (The 256-unit MLP it replaced was less
accurate with few labels on every benchmark, and took seconds per fit on two busy cores.)

How typed categories and labels work together. The head's logits are

    logits(x) = W · (x - center) * input_scale + b  +  prior_weight * prior_scale * (x · prior^T)

where ``prior`` holds the classes' text vectors (their zero-shot classifier). With no
labels ``W = b = 0`` and ``prior_weight = 1``: the head predicts exactly like the typed
categories. With labels:

* ``prior_weight`` is *calibrated* on the labels: the temperature in [0, 1] under which the
  zero-shot scores best explain them. The prior never saw the labels, so this is an honest
  check: a prior that is right keeps its full weight, a prior that is guessing (a random
  or unsuitable model) fades to nothing and cannot drown the labels.
* ``W, b`` fit the labels on top of that (class-balanced cross-entropy plus an L2 penalty
  whose strength is chosen by cross-validation among a few values): with one or two labels
  per class the penalty keeps the head near the prior; as labels accumulate they win.

The cross-validation that picks the penalty also gives the accuracy shown to the user.

Heads are stored and exported as safetensors (tensors plus JSON metadata), never pickle:
reading a head file cannot run code, and every tensor's name, shape, dtype and values are
checked before use. Files come from anywhere, so every failure is a :class:`HeadError`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .errors import HeadError

log = logging.getLogger(__name__)

FORMAT = "photosort-head"
FORMAT_VERSION = 2
MAX_CLASSES = 1000
MAX_DIM = 16384
MAX_NAME_CHARS = 200
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 1_000_000
MAX_ABS_VALUE = 1e6  # bounds every stored number, so logits stay finite in float32
MIN_LABELS_FOR_ACCURACY = 2  # per labelled class, for a cross-validated accuracy
FEW_LABELS = 3  # classes with fewer labels than this are flagged to the user

# Penalty strengths tried by cross-validation, strongest first (closest to the prior).
PENALTIES = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003)
DEFAULT_PENALTY = 0.1  # when there are too few labels to cross-validate
MAX_FOLDS = 5
MANY_LABELS = 1000  # above this, 3 folds: the estimate is still sound and training stays under a second
PRIOR_WEIGHT_GRID = np.linspace(0.0, 1.0, 41)
MIN_SPREAD = 1e-3  # labelled vectors closer than this (duplicates) are not magnified further
LBFGS_MEMORY = 10
LBFGS_MAX_ITER = 300
LBFGS_TOLERANCE = 1e-4  # per label


@dataclass
class Head:
    """A classifier over the CLIP vectors of one model (trained, or prior-only)."""

    name: str
    classes: list[str]
    model_key: str
    weight: np.ndarray  # C x dim, applied to centred, scaled vectors
    bias: np.ndarray  # C
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
        return int(self.weight.shape[1])

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, np.float32)
        out = ((vectors - self.center) * np.float32(self.input_scale)) @ self.weight.T + self.bias
        if self.prior is not None and self.prior_weight > 0:
            out = out + np.float32(self.prior_weight * self.prior_scale) * (vectors @ self.prior.T)
        return out.astype(np.float32)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        from .zeroshot import softmax

        if len(vectors) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        return softmax(self.logits(vectors))

    def renamed(self, name: str) -> Head:
        return replace(self, name=name)

    # ---- files ---------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The head as a safetensors file: tensors plus JSON metadata (no pickle)."""
        from safetensors.numpy import save

        tensors = {"weight": self.weight, "bias": self.bias, "center": self.center}
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
    def from_bytes(cls, data: bytes, expected_model_key: str | None = None, expected_dim: int | None = None) -> Head:
        """Read and validate a head file; HeadError with the reason when it is not a usable head."""
        if len(data) > MAX_FILE_BYTES:
            raise HeadError(f"The classifier file is too large ({len(data) // 1_000_000} MB, limit "
                            f"{MAX_FILE_BYTES // 1_000_000} MB).")
        meta, tensors = _read_safetensors(data)
        head = _head_from_parts(meta, tensors)
        if expected_model_key is not None and head.model_key != expected_model_key:
            raise HeadError(
                f"The classifier '{head.name}' was made for another model ({head.model_key}); this library uses "
                f"{expected_model_key}. Switch to that model in settings, or train the classifier again here."
            )
        if expected_dim is not None and head.dim != expected_dim:
            raise HeadError(f"The classifier '{head.name}' expects {head.dim}-number vectors but this model makes "
                            f"{expected_dim}; it was made for another model.")
        return head


# ---- reading untrusted files ------------------------------------------------------------------
def _read_safetensors(data: bytes) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    if len(data) < 8:
        raise HeadError("Not a photosort classifier file (too short).")
    header_len = int.from_bytes(data[:8], "little")
    if header_len <= 1 or header_len > min(len(data) - 8, MAX_HEADER_BYTES):
        raise HeadError("Not a photosort classifier file (bad header).")
    try:
        header = json.loads(data[8 : 8 + header_len])
        meta = header.get("__metadata__") if isinstance(header, dict) else None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise HeadError("Not a photosort classifier file (no photosort metadata).")
        tensors = load(data)
    except (SafetensorError, ValueError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise HeadError(f"Not a photosort classifier file ({str(exc)[:120]}).") from None
    return meta, tensors


def _head_from_parts(meta: dict[str, str], tensors: dict[str, np.ndarray]) -> Head:
    try:
        version = int(meta.get("version", "0"))
        if version > FORMAT_VERSION:
            raise HeadError("This classifier file was written by a newer photosort; update photosort to use it.")
        if version < FORMAT_VERSION:
            raise HeadError("This classifier file was written by an older photosort; train the classifier again.")
        classes = json.loads(meta["classes"])
        prompts = json.loads(meta.get("prompts", "[]")) or [None] * len(classes)
        name = str(meta["name"])
        model_key = str(meta["model_key"])
        numbers = {k: float(meta.get(k, default)) for k, default in
                   (("input_scale", "1"), ("prior_scale", "100"), ("prior_weight", "1"))}
        metrics = json.loads(meta.get("metrics", "{}"))
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        raise HeadError(f"The classifier file's metadata is invalid ({str(exc)[:120]}).") from None
    _check_names(name, classes, prompts)
    _check_numbers(**numbers)
    _check_tensors(tensors, len(classes))
    return Head(name, classes, model_key, tensors["weight"], tensors["bias"], tensors["center"],
                numbers["input_scale"], tensors.get("prior"), numbers["prior_scale"], numbers["prior_weight"],
                prompts, metrics if isinstance(metrics, dict) else {})


def _check_names(name: str, classes: object, prompts: object) -> None:
    if not name.strip() or len(name) > MAX_NAME_CHARS:
        raise HeadError("The classifier file's name is empty or too long.")
    if not (isinstance(classes, list) and 1 <= len(classes) <= MAX_CLASSES
            and all(isinstance(c, str) and c.strip() and len(c) <= MAX_NAME_CHARS for c in classes)
            and len({c.casefold() for c in classes}) == len(classes)):
        raise HeadError("The classifier file's class list is invalid (empty, duplicated, too long or not text).")
    if not (isinstance(prompts, list) and len(prompts) == len(classes)
            and all(p is None or (isinstance(p, str) and len(p) <= 1000) for p in prompts)):
        raise HeadError("The classifier file's prompts do not match its classes.")


def _check_numbers(input_scale: float, prior_scale: float, prior_weight: float) -> None:
    if not (math.isfinite(input_scale) and 0 < input_scale <= MAX_ABS_VALUE
            and math.isfinite(prior_scale) and 0 < prior_scale <= 1000
            and math.isfinite(prior_weight) and 0 <= prior_weight <= 1):
        raise HeadError("The classifier file's settings (scales, prior weight) are out of range.")


def _check_tensors(tensors: dict[str, np.ndarray], n_classes: int) -> None:
    required = {"weight", "bias", "center"}
    if not required <= set(tensors) or not set(tensors) <= required | {"prior"}:
        raise HeadError("The classifier file does not hold the expected tensors.")
    for key, t in tensors.items():
        if t.dtype != np.float32 or not np.all(np.isfinite(t)) or (t.size and float(np.abs(t).max()) > MAX_ABS_VALUE):
            raise HeadError(f"The classifier file's tensor '{key}' is not float32 within ±{MAX_ABS_VALUE:g}.")
    weight = tensors["weight"]
    dim = weight.shape[1] if weight.ndim == 2 else -1
    shapes_ok = (weight.shape == (n_classes, dim) and 1 <= dim <= MAX_DIM
                 and tensors["bias"].shape == (n_classes,) and tensors["center"].shape == (dim,))
    prior = tensors.get("prior")
    if prior is not None and prior.shape != (n_classes, dim):
        shapes_ok = False
    if not shapes_ok:
        raise HeadError("The classifier file's tensor shapes do not match its classes.")


# ---- building and training ----------------------------------------------------------------------
def untrained_head(name: str, classes: list[str], model_key: str, dim: int, prior: np.ndarray | None = None,
                   prior_scale: float = 100.0, prompts: list[str | None] | None = None) -> Head:
    """A head with no labels yet: predicts from the prior (zero-shot) alone, if it has one."""
    n = len(classes)
    return Head(name, list(classes), model_key, np.zeros((n, dim), np.float32), np.zeros(n, np.float32),
                np.zeros(dim, np.float32), 1.0, None if prior is None else np.asarray(prior, np.float32),
                float(prior_scale), 1.0, list(prompts) if prompts else [None] * n)


@dataclass(frozen=True)
class Training:
    """A trained head and what the user is told about it."""

    head: Head
    accuracy: float | None  # cross-validated; None when there are too few labels to say
    penalty: float


def train(base: Head, vectors: np.ndarray, targets: np.ndarray) -> Training:
    """Fit ``base``'s classes to labelled vectors (targets are class indices), penalty chosen by cross-validation.

    Deterministic: the same labels give the same head.
    """
    vectors = np.asarray(vectors, np.float32)
    targets = np.asarray(targets, np.int64)
    if len(targets) == 0:
        head = untrained_head(base.name, base.classes, base.model_key, base.dim, base.prior, base.prior_scale,
                              base.prompts)
        return Training(head, None, DEFAULT_PENALTY)
    penalty, accuracy = select_penalty(base, vectors, targets)
    return Training(fit_head(base, vectors, targets, penalty), accuracy, penalty)


def fit_head(base: Head, vectors: np.ndarray, targets: np.ndarray, penalty: float = DEFAULT_PENALTY) -> Head:
    """A copy of ``base`` fitted to labelled vectors with one penalty strength."""
    problem = _Problem.make(base, vectors, targets)
    return problem.head(base, problem.solve(penalty))


def select_penalty(base: Head, vectors: np.ndarray, targets: np.ndarray) -> tuple[float, float | None]:
    """The penalty with the best class-balanced cross-validated accuracy, and that plain accuracy.

    Ties (common with few labels) go to the better cross-validated likelihood, which prefers
    the penalty that is confident only where the labels support it.

    Folds are stratified and spread singletons across folds, so even one label per class
    tells whether fitting the labels helps or hurts the other photos. The accuracy is
    reported only when every labelled class has at least two labels. It is that of the
    chosen penalty, so the choice could flatter it; measured against unlabelled photos it
    errs low instead (each fold learns from 4/5 of the labels), by up to 3 points high at
    worst (tests/test_heads_accuracy.py checks this).
    """
    counts = np.bincount(targets, minlength=len(base.classes))
    present = counts[counts > 0]
    if len(targets) < 2 or len(present) < 2:
        return DEFAULT_PENALTY, None
    folds = stratified_folds(targets, min(MAX_FOLDS if len(targets) <= MANY_LABELS else 3, len(targets)))
    log_probs = _cross_validated_log_probabilities(base, vectors, targets, folds)
    correct = log_probs.argmax(axis=2) == targets
    rows = np.arange(len(targets))
    balanced_accuracy = (correct / counts[targets]).sum(axis=1)
    balanced_likelihood = (log_probs[:, rows, targets] / counts[targets]).sum(axis=1)
    best = max(range(len(PENALTIES)), key=lambda i: (round(float(balanced_accuracy[i]), 9), balanced_likelihood[i]))
    enough = present.min() >= MIN_LABELS_FOR_ACCURACY
    return PENALTIES[best], float(correct[best].mean()) if enough else None


def _cross_validated_log_probabilities(base: Head, vectors: np.ndarray, targets: np.ndarray,
                                       folds: np.ndarray) -> np.ndarray:
    """Log-probabilities of every label's photo when its fold is held out, per penalty (penalties x n x C).

    Within a fold the penalties go from strong to weak, each fit starting where the previous
    one ended, which roughly halves the optimiser's work.
    """
    out = np.empty((len(PENALTIES), len(targets), len(base.classes)), np.float64)
    for fold in np.unique(folds):
        test = folds == fold
        problem = _Problem.make(base, vectors[~test], targets[~test])
        theta = None
        for i, penalty in enumerate(PENALTIES):
            theta = problem.solve(penalty, start=theta)
            logits = problem.head(base, theta).logits(vectors[test]).astype(np.float64)
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


def least_sure_order(probabilities: np.ndarray) -> np.ndarray:
    """Row indices from least to most sure: by the margin between the two most likely classes."""
    if probabilities.shape[1] < 2:
        return np.arange(len(probabilities))
    top2 = np.sort(probabilities, axis=1)[:, -2:]
    return np.argsort(top2[:, 1] - top2[:, 0], kind="stable")


@dataclass
class _Problem:
    """Class-balanced, L2-penalised multinomial logistic regression with a fixed prior offset.

    The products use float32 ``np.einsum`` rather than BLAS on purpose: these matrices are
    small, and a multi-threaded BLAS on a busy two-core machine made training 3-50x slower
    (its threads wait for each other); einsum runs on the calling thread only.
    """

    z: np.ndarray  # n x dim, centred and scaled inputs (float32)
    targets: np.ndarray
    sample_weight: np.ndarray  # balanced, mean 1
    offset: np.ndarray  # n x C prior logits, already weighted
    center: np.ndarray
    input_scale: float
    prior_weight: float

    @classmethod
    def make(cls, base: Head, vectors: np.ndarray, targets: np.ndarray) -> _Problem:
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
            prior_logits = base.prior_scale * np.einsum("nd,cd->nc", x, base.prior)
            prior_weight = calibrated_prior_weight(prior_logits, targets, sample_weight)
            offset = (prior_weight * prior_logits).astype(np.float32)
        return cls(((x - center) * input_scale).astype(np.float32), targets, sample_weight, offset,
                   center.astype(np.float32), input_scale, prior_weight)

    @property
    def shape(self) -> tuple[int, int]:
        return self.offset.shape[1], self.z.shape[1]

    def solve(self, penalty: float, start: np.ndarray | None = None) -> np.ndarray:
        n_classes, dim = self.shape
        theta = np.zeros(n_classes * (dim + 1)) if start is None else start
        tolerance = LBFGS_TOLERANCE * len(self.targets)  # the loss sums over labels, so does its gradient
        return minimise_lbfgs(lambda t: self.loss_and_gradient(t, penalty), theta, tolerance=tolerance)

    def loss_and_gradient(self, theta: np.ndarray, penalty: float) -> tuple[float, np.ndarray]:
        n_classes, dim = self.shape
        weight = theta[: n_classes * dim].reshape(n_classes, dim).astype(np.float32)
        logits = np.einsum("nd,cd->nc", self.z, weight) + theta[n_classes * dim :] + self.offset
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        total = exp.sum(axis=1)
        rows = np.arange(len(self.targets))
        loss = float((self.sample_weight * (np.log(total) - logits[rows, self.targets])).sum())
        residual = exp / total[:, None]
        residual[rows, self.targets] -= 1.0
        residual *= self.sample_weight[:, None]
        gradient = np.concatenate([np.einsum("nc,nd->cd", residual.astype(np.float32), self.z).ravel(),
                                   residual.sum(axis=0)])
        return loss + 0.5 * penalty * float(theta @ theta), gradient + penalty * theta

    def head(self, base: Head, theta: np.ndarray) -> Head:
        n_classes, dim = self.shape
        weight = theta[: n_classes * dim].reshape(n_classes, dim).astype(np.float32)
        return Head(base.name, list(base.classes), base.model_key, weight, theta[n_classes * dim :].astype(np.float32),
                    self.center, self.input_scale, base.prior, base.prior_scale, self.prior_weight,
                    list(base.prompts), dict(base.metrics))


def minimise_lbfgs(fun: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, tolerance: float,
                   max_iter: int = LBFGS_MAX_ITER) -> np.ndarray:
    """Minimise a smooth convex function with L-BFGS and a backtracking (Armijo) line search.

    Small and dependency-free (no SciPy); the problems here are strongly convex, so this
    converges in tens of iterations. Stops when no gradient component exceeds ``tolerance``.
    """
    x = x0.copy()
    f, g = fun(x)
    g0 = max(float(np.abs(g).max()), 1e-12)
    s_hist: list[np.ndarray] = []
    y_hist: list[np.ndarray] = []
    for _ in range(max_iter):
        if float(np.abs(g).max()) <= tolerance:
            break
        d = -_two_loop(g, s_hist, y_hist)
        slope = float(g @ d)
        if slope >= 0:  # not a descent direction: restart from steepest descent
            s_hist.clear()
            y_hist.clear()
            d, slope = -g, -float(g @ g)
        step = 1.0 if s_hist else min(1.0, 1.0 / g0)
        for _ in range(40):
            x_new = x + step * d
            f_new, g_new = fun(x_new)
            if f_new <= f + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break
        s, y = x_new - x, g_new - g
        if float(s @ y) > 1e-12:
            s_hist.append(s)
            y_hist.append(y)
            if len(s_hist) > LBFGS_MEMORY:
                s_hist.pop(0)
                y_hist.pop(0)
        x, f, g = x_new, f_new, g_new
    return x


def _two_loop(g: np.ndarray, s_hist: list[np.ndarray], y_hist: list[np.ndarray]) -> np.ndarray:
    """L-BFGS's approximate inverse Hessian times ``g``."""
    q = g.copy()
    alphas = []
    for s, y in zip(reversed(s_hist), reversed(y_hist), strict=True):
        alpha = float(s @ q) / float(y @ s)
        alphas.append(alpha)
        q -= alpha * y
    if s_hist:
        q *= float(s_hist[-1] @ y_hist[-1]) / float(y_hist[-1] @ y_hist[-1])
    for (s, y), alpha in zip(zip(s_hist, y_hist, strict=True), reversed(alphas), strict=True):
        beta = float(y @ q) / float(y @ s)
        q += (alpha - beta) * s
    return q
