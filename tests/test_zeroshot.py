"""Typed categories: parsing, prompt ensembling and CLIP's probabilities (the unsure threshold: test_sorting)."""

from __future__ import annotations

import numpy as np
import pytest

from photosort.core.errors import UsageError
from photosort.core.sorting import UNSURE, decide
from photosort.core.zeroshot import (
    TEMPLATES,
    Category,
    category_vectors,
    category_warnings,
    checked_categories,
    duplicate_categories,
    parse_categories,
    zero_shot_probabilities,
)


def test_parse_comma_list_and_custom_prompts() -> None:
    cats = parse_categories("beach, mountains , pets=a photo of a cat or a dog,, Beach")
    assert cats == [Category("beach"), Category("mountains"), Category("pets", "a photo of a cat or a dog")]


def test_parse_one_per_line_allows_commas_in_prompts() -> None:
    cats = parse_categories("receipts = a scan of a receipt, invoice or bill\n\n  city   lights \n")
    assert cats == [Category("receipts", "a scan of a receipt, invoice or bill"), Category("city lights")]


def test_one_category_is_warned_about_since_every_photo_would_get_it_at_100_percent() -> None:
    assert category_warnings([Category("beach")]) == [
        "With one category ('beach'), every photo goes to it at 100 %: add at least one more (e.g. 'other') so photos "
        "can be told apart."]
    assert category_warnings([Category("beach"), Category("other")]) == []
    assert category_warnings([]) == []  # none at all is refused instead (checked_categories)


def test_a_command_refuses_a_category_typed_twice_while_typing_merges_it() -> None:
    typed = "pets = a cat, night, Pets = a dog"
    assert duplicate_categories(typed) == [
        "The category 'pets' is typed twice ('pets = a cat', 'Pets = a dog'): give each category once."]
    with pytest.raises(UsageError, match=r"^The category 'pets' is typed twice"):
        checked_categories(typed)
    assert parse_categories(typed) == [Category("pets", "a cat"), Category("night")]  # the window, as the user types
    assert duplicate_categories("beach, night") == []
    assert checked_categories("beach, night = a dark photo") == [Category("beach"), Category("night", "a dark photo")]


def test_a_command_refuses_no_categories() -> None:
    with pytest.raises(UsageError, match=r"^No categories given"):
        checked_categories(" ,, ")


def test_templates_are_ensembled_and_custom_prompt_used_alone() -> None:
    seen: list[list[str]] = []

    def fake_text_vectors(prompts: list[str]) -> np.ndarray:
        seen.append(prompts)
        rng = np.random.default_rng(len(prompts))
        v = rng.normal(size=(len(prompts), 8)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    vecs = category_vectors([Category("dog"), Category("pets", "a cat")], fake_text_vectors)
    assert seen[0] == [t.format("dog") for t in TEMPLATES] + ["a cat"]
    assert vecs.shape == (2, 8)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)


def test_low_confidence_photos_are_unsure() -> None:
    classes = np.eye(3, 4, dtype=np.float32)
    photos = np.array([[1, 0, 0, 0], [0.6, 0.6, 0, 0.52]], dtype=np.float32)
    photos /= np.linalg.norm(photos, axis=1, keepdims=True)
    probs = zero_shot_probabilities(photos, classes, logit_scale=100.0)
    assert np.allclose(probs.sum(axis=1), 1.0)
    result = decide(probs, threshold=0.6)
    assert result.best[0] == 0 and result.score[0] > 0.99
    assert result.best[1] == UNSURE  # torn between two categories: unsure, not forced
    assert decide(probs, threshold=0.0).best[1] in (0, 1)
