"""Zero-shot sorting: typed category names (or prompts) scored against cached photo vectors.

Each category becomes text through several prompt templates whose embeddings
are averaged (the prompt ensembling of the CLIP paper), unless the user gave a
prompt of their own (``pets = a photo of a cat or a dog``). Scores are CLIP's
scaled cosine similarities, softmaxed over the categories; a photo whose best
probability is under the threshold is "unsure" rather than forced into a folder.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import UsageError

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


def typed_categories(text: str) -> list[Category]:
    """Every category in user text, in order, duplicates included: one per line, or comma-separated on one line;
    ``name = prompt`` sets a prompt. (:func:`parse_categories` merges duplicates; :func:`checked_categories` refuses them.)"""
    parts = text.splitlines() if "\n" in text.strip() else text.split(",")
    categories: list[Category] = []
    for part in parts:
        name, _, prompt = part.partition("=")
        name = re.sub(r"\s+", " ", name).strip()
        if name:
            categories.append(Category(name, prompt.strip() or None))
    return categories


def parse_categories(text: str) -> list[Category]:
    """Categories from user text, duplicate names (case-insensitively) merged, keeping the first.

    Merging rather than refusing suits text being typed (the window parses on every keystroke);
    a command refuses duplicates instead (:func:`checked_categories`), since their prompts may differ.
    """
    seen: set[str] = set()
    categories: list[Category] = []
    for category in typed_categories(text):
        if category.name.casefold() not in seen:
            seen.add(category.name.casefold())
            categories.append(category)
    return categories


# Zero-shot scores are a softmax over the categories: with one, every photo gets 100 % of it.
MIN_CATEGORIES = 2
NO_CATEGORIES = 'No categories given: type at least two, e.g. "beach, city".'
ONE_CATEGORY = ("With one category ('{name}'), every photo goes to it at 100 %: add at least one more "
                "(e.g. 'other') so photos can be told apart.")


def category_warnings(categories: Sequence[Category]) -> list[str]:
    """What is wrong, though not refused, with sorting by ``categories`` (one line each; none when all is well).

    Fewer than :data:`MIN_CATEGORIES` is degenerate: the softmax over one category is always 1, so every
    photo would be filed at 100 % and none told apart. (No categories at all is said by :data:`NO_CATEGORIES`.)
    """
    if 0 < len(categories) < MIN_CATEGORIES:
        return [ONE_CATEGORY.format(name=categories[0].name)]
    return []


def duplicate_categories(text: str) -> list[str]:
    """One line per category name typed more than once (case-insensitively) in ``text``; none when each is once."""
    groups: dict[str, list[Category]] = {}
    for category in typed_categories(text):
        groups.setdefault(category.name.casefold(), []).append(category)
    return [_duplicate_line(group) for group in groups.values() if len(group) > 1]


def _duplicate_line(group: list[Category]) -> str:
    """Names the duplicate, and each way it was typed where those differ (another case, another prompt)."""
    times = "twice" if len(group) == 2 else f"{len(group)} times"
    spellings = list(dict.fromkeys(f"{c.name} = {c.prompt}" if c.prompt else c.name for c in group))
    quoted = ", ".join(f"'{s}'" for s in spellings)
    how = f" ({quoted})" if len(spellings) > 1 else ""
    return f"The category '{group[0].name}' is typed {times}{how}: give each category once."


def typing_notes(text: str) -> list[str]:
    """What the window says under the categories as they are typed: duplicates (it uses the first) and too few."""
    return duplicate_categories(text) + category_warnings(parse_categories(text))


def checked_categories(text: str) -> list[Category]:
    """The categories a command sorts by; :class:`UsageError` when there are none, or when a name is typed twice
    (which prompt was meant cannot be guessed). Warnings that do not stop it: :func:`category_warnings`."""
    if duplicates := duplicate_categories(text):
        raise UsageError(duplicates[0])
    categories = typed_categories(text)
    if not categories:
        raise UsageError(NO_CATEGORIES)
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
