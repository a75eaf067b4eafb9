"""Zero-shot sorting: typed category names (or prompts) scored against cached photo vectors.

Each category becomes text through several prompt templates whose embeddings
are averaged (the prompt ensembling of the CLIP paper), unless the user gave a
prompt of their own (``pets = a photo of a cat or a dog``). Scores are CLIP's
scaled cosine similarities, softmaxed over the categories; a photo whose best
probability is under the threshold is "unsure" rather than forced into a folder.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a close-up photo of a {}.",
    "a bright photo of a {}.",
    "a dark photo of a {}.",
    "a photo of my {}.",
)
# A photo goes into a category only when CLIP gives that category at least
# this share of the probability (over the categories typed). See README.
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Category:
    name: str
    prompt: str | None = None

    def prompts(self) -> list[str]:
        if self.prompt:
            return [self.prompt]
        return [t.format(self.name) for t in TEMPLATES]


def parse_categories(text: str) -> list[Category]:
    """Categories from user text: one per line, or comma-separated on one line; ``name = prompt`` sets a prompt.

    Duplicate names (case-insensitively) are merged, keeping the first.
    """
    parts = text.splitlines() if "\n" in text.strip() else text.split(",")
    seen: set[str] = set()
    categories: list[Category] = []
    for part in parts:
        name, _, prompt = part.partition("=")
        name = re.sub(r"\s+", " ", name).strip()
        prompt = prompt.strip()
        if not name or name.casefold() in seen:
            continue
        seen.add(name.casefold())
        categories.append(Category(name, prompt or None))
    return categories


def category_vectors(categories: list[Category], text_vectors: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """One unit vector per category: the normalised mean of its prompts' embeddings (C x dim)."""
    prompts = [p for c in categories for p in c.prompts()]
    vectors = text_vectors(prompts)
    out = []
    start = 0
    for c in categories:
        n = len(c.prompts())
        mean = vectors[start : start + n].mean(axis=0)
        out.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        start += n
    return np.stack(out).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def zero_shot_probabilities(photo_vectors: np.ndarray, class_vectors: np.ndarray, logit_scale: float) -> np.ndarray:
    """Softmax over categories of CLIP's scaled cosine similarity (N x C)."""
    return softmax(logit_scale * (photo_vectors @ class_vectors.T))


@dataclass(frozen=True)
class Assignment:
    """Best category per photo (index, or -1 when unsure) and its probability."""

    best: np.ndarray  # int64, N; -1 = unsure
    score: np.ndarray  # float32, N
    probabilities: np.ndarray  # float32, N x C


def assign(probabilities: np.ndarray, threshold: float) -> Assignment:
    if probabilities.shape[1] == 0:
        n = probabilities.shape[0]
        return Assignment(np.full(n, -1, np.int64), np.zeros(n, np.float32), probabilities)
    best = probabilities.argmax(axis=1)
    score = probabilities[np.arange(len(best)), best].astype(np.float32)
    return Assignment(np.where(score >= threshold, best, -1).astype(np.int64), score, probabilities)
