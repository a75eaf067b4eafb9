"""Per-user classifier heads: a small MLP on frozen CLIP vectors, learned from a few labels.

The head is embedding -> 256 -> ReLU -> classes, trained with Adam and
cross-entropy. When its classes have text prompts (e.g. they came from typed
categories), the zero-shot scores of those prompts are a *prior* added to the
MLP's logits with a weight that shrinks as labels per class grow; the MLP's
last layer starts at zero, so with no labels the head predicts exactly like
the zero-shot categories, and each label moves it from there.

Heads are stored and exported as safetensors (tensors plus JSON metadata),
never pickle: loading a head file cannot run code, and every tensor's name,
shape and dtype is checked before use.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import numpy as np

from .errors import HeadError

log = logging.getLogger(__name__)

HIDDEN = 256
FORMAT_VERSION = 1
PRIOR_HALF_LIFE_LABELS = 2.0  # labels per class at which the zero-shot prior has half its weight
MAX_CLASSES = 1000


@dataclass
class Head:
    """A trained (or prior-only) classifier over CLIP vectors of one model."""

    name: str
    classes: list[str]
    model_key: str
    w1: np.ndarray  # HIDDEN x dim
    b1: np.ndarray  # HIDDEN
    w2: np.ndarray  # C x HIDDEN
    b2: np.ndarray  # C
    prior: np.ndarray | None = None  # C x dim class text vectors, or None
    prior_scale: float = 100.0  # CLIP's logit scale for the prior
    prior_weight: float = 0.0
    metrics: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.w1.shape[1])

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        hidden = np.maximum(_scaled(vectors) @ self.w1.T + self.b1, 0.0)
        out = hidden @ self.w2.T + self.b2
        if self.prior is not None and self.prior_weight > 0:
            out = out + self.prior_weight * self.prior_scale * (vectors @ self.prior.T)
        return out.astype(np.float32)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        from .zeroshot import softmax

        if len(vectors) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        return softmax(self.logits(vectors))

    # ---- files ---------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The head as a safetensors file: tensors plus JSON metadata (no pickle)."""
        from safetensors.numpy import save

        tensors = {"w1": self.w1, "b1": self.b1, "w2": self.w2, "b2": self.b2}
        if self.prior is not None:
            tensors["prior"] = self.prior
        meta = {
            "format": "photosort-head",
            "version": str(FORMAT_VERSION),
            "name": self.name,
            "classes": json.dumps(self.classes),
            "model_key": self.model_key,
            "prior_scale": repr(float(self.prior_scale)),
            "prior_weight": repr(float(self.prior_weight)),
            "metrics": json.dumps(self.metrics),
        }
        return save({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, metadata=meta)

    @classmethod
    def from_bytes(cls, data: bytes, expected_model_key: str | None = None) -> Head:
        """Read and validate a head file; HeadError with the reason when it is not a usable head."""
        meta, tensors = _read_safetensors(data)
        head = _head_from_parts(meta, tensors)
        if expected_model_key is not None and head.model_key != expected_model_key:
            raise HeadError(
                f"The classifier '{head.name}' was made for another model ({head.model_key}); this library uses "
                f"{expected_model_key}. Switch to that model in settings, or train the classifier again here."
            )
        return head


def _read_safetensors(data: bytes) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    if len(data) < 8:
        raise HeadError("Not a photosort classifier file (too short).")
    try:
        header_len = int.from_bytes(data[:8], "little")
        if header_len <= 0 or header_len > min(len(data) - 8, 10_000_000):
            raise HeadError("Not a photosort classifier file (bad header).")
        meta = json.loads(data[8 : 8 + header_len]).get("__metadata__") or {}
        tensors = load(data)
    except (SafetensorError, ValueError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HeadError(f"Not a photosort classifier file ({str(exc)[:120]}).") from None
    if meta.get("format") != "photosort-head":
        raise HeadError("Not a photosort classifier file (no photosort metadata).")
    return meta, tensors


def _head_from_parts(meta: dict[str, str], tensors: dict[str, np.ndarray]) -> Head:
    try:
        if int(meta.get("version", "0")) > FORMAT_VERSION:
            raise HeadError("This classifier file was written by a newer photosort; update photosort to use it.")
        classes = json.loads(meta["classes"])
        name = str(meta["name"])
        model_key = str(meta["model_key"])
        prior_scale = float(meta.get("prior_scale", "100"))
        prior_weight = float(meta.get("prior_weight", "0"))
        metrics = json.loads(meta.get("metrics", "{}"))
    except (KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
        raise HeadError(f"The classifier file's metadata is invalid ({exc}).") from None
    if not (isinstance(classes, list) and 1 <= len(classes) <= MAX_CLASSES
            and all(isinstance(c, str) and c.strip() for c in classes)
            and len({c.casefold() for c in classes}) == len(classes)):
        raise HeadError("The classifier file's class list is invalid (empty, duplicated or not text).")
    if not (np.isfinite(prior_scale) and np.isfinite(prior_weight) and 0 <= prior_weight <= 10 and 0 < prior_scale <= 1000):
        raise HeadError("The classifier file's prior settings are out of range.")
    _check_tensors(tensors, len(classes))
    return Head(name, classes, model_key, tensors["w1"], tensors["b1"], tensors["w2"], tensors["b2"],
                tensors.get("prior"), prior_scale, prior_weight, metrics if isinstance(metrics, dict) else {})


def _check_tensors(tensors: dict[str, np.ndarray], n_classes: int) -> None:
    allowed = {"w1", "b1", "w2", "b2", "prior"}
    if not {"w1", "b1", "w2", "b2"} <= set(tensors) or not set(tensors) <= allowed:
        raise HeadError("The classifier file does not hold the expected tensors.")
    for key, t in tensors.items():
        if t.dtype != np.float32 or not np.all(np.isfinite(t)):
            raise HeadError(f"The classifier file's tensor '{key}' is not finite float32.")
    w1, b1, w2, b2 = tensors["w1"], tensors["b1"], tensors["w2"], tensors["b2"]
    dim = w1.shape[1] if w1.ndim == 2 else -1
    shapes_ok = (
        w1.ndim == 2 and w1.shape[0] == HIDDEN and 1 <= dim <= 16384
        and b1.shape == (HIDDEN,) and w2.shape == (n_classes, HIDDEN) and b2.shape == (n_classes,)
    )
    prior = tensors.get("prior")
    if prior is not None and prior.shape != (n_classes, dim):
        shapes_ok = False
    if not shapes_ok:
        raise HeadError("The classifier file's tensor shapes do not match its classes.")


def _scaled(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors have tiny coordinates; scale them to unit variance per coordinate for the MLP."""
    return vectors * np.float32(np.sqrt(vectors.shape[1]))


def prior_weight_for(labels_per_class: float, has_prior: bool) -> float:
    if not has_prior:
        return 0.0
    return PRIOR_HALF_LIFE_LABELS / (PRIOR_HALF_LIFE_LABELS + labels_per_class)


def untrained_head(name: str, classes: list[str], model_key: str, dim: int,
                   prior: np.ndarray | None = None, prior_scale: float = 100.0, seed: int = 0) -> Head:
    """A head with no labels yet: predicts from the prior (zero-shot) alone, if it has one."""
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(dim)
    w1 = rng.uniform(-bound, bound, (HIDDEN, dim)).astype(np.float32)
    b1 = rng.uniform(-bound, bound, HIDDEN).astype(np.float32)
    w2 = np.zeros((len(classes), HIDDEN), np.float32)
    b2 = np.zeros(len(classes), np.float32)
    return Head(name, list(classes), model_key, w1, b1, w2, b2, prior, prior_scale, prior_weight_for(0, prior is not None))


def fit_head(base: Head, vectors: np.ndarray, targets: np.ndarray, *, steps: int = 250, lr: float = 3e-3,
             weight_decay: float = 1e-4, seed: int = 0) -> Head:
    """Train a copy of ``base`` on labelled vectors (targets are class indices)."""
    import torch

    n_classes = len(base.classes)
    counts = np.bincount(targets, minlength=n_classes).astype(np.float32)
    labelled = counts[counts > 0]
    weight = prior_weight_for(float(labelled.mean()) if len(labelled) else 0.0, base.prior is not None)
    generator = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(_scaled(vectors.astype(np.float32)))
    y = torch.from_numpy(targets.astype(np.int64))
    prior_logits = None
    if base.prior is not None and weight > 0:
        prior_logits = torch.from_numpy(weight * base.prior_scale * (vectors.astype(np.float32) @ base.prior.T))
    layer1 = torch.nn.Linear(base.dim, HIDDEN)
    layer2 = torch.nn.Linear(HIDDEN, n_classes)
    with torch.no_grad():
        bound = 1.0 / np.sqrt(base.dim)
        layer1.weight.uniform_(-bound, bound, generator=generator)
        layer1.bias.uniform_(-bound, bound, generator=generator)
        layer2.weight.zero_()
        layer2.bias.zero_()
    balanced = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(len(labelled), 1), 0.0)
    class_weight = torch.from_numpy(balanced.astype(np.float32))
    params = [*layer1.parameters(), *layer2.parameters()]
    optimiser = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weight)
    with torch.enable_grad():
        for _ in range(steps):
            optimiser.zero_grad(set_to_none=True)
            logits = layer2(torch.relu(layer1(x)))
            if prior_logits is not None:
                logits = logits + prior_logits
            loss = loss_fn(logits, y)
            loss.backward()
            optimiser.step()
    detach = lambda t: t.detach().numpy().astype(np.float32).copy()  # noqa: E731
    return Head(base.name, list(base.classes), base.model_key, detach(layer1.weight), detach(layer1.bias),
                detach(layer2.weight), detach(layer2.bias), base.prior, base.prior_scale, weight, dict(base.metrics))


def cross_validated_accuracy(base: Head, vectors: np.ndarray, targets: np.ndarray, folds: int = 5,
                             seed: int = 0) -> float | None:
    """Stratified k-fold accuracy, or None when there are too few labels to say (under 2 per class)."""
    counts = np.bincount(targets, minlength=len(base.classes))
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < 2:
        return None
    k = int(min(folds, present.min()))
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(targets), np.int64)
    for c in np.unique(targets):
        members = np.flatnonzero(targets == c)
        rng.shuffle(members)
        fold_of[members] = np.arange(len(members)) % k
    correct = 0
    for fold in range(k):
        train, test = fold_of != fold, fold_of == fold
        head = fit_head(base, vectors[train], targets[train], seed=seed)
        correct += int((head.probabilities(vectors[test]).argmax(axis=1) == targets[test]).sum())
    return correct / len(targets)
