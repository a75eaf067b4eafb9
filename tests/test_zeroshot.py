"""Typed categories: parsing, prompt ensembling and CLIP's probabilities (the unsure threshold: test_sorting)."""

from __future__ import annotations

import numpy as np

from photosort.core.sorting import UNSURE, decide
from photosort.core.zeroshot import TEMPLATES, Category, category_vectors, parse_categories, zero_shot_probabilities


def test_parse_comma_list_and_custom_prompts() -> None:
    cats = parse_categories("beach, mountains , pets=a photo of a cat or a dog,, Beach")
    assert cats == [Category("beach"), Category("mountains"), Category("pets", "a photo of a cat or a dog")]


def test_parse_one_per_line_allows_commas_in_prompts() -> None:
    cats = parse_categories("receipts = a scan of a receipt, invoice or bill\n\n  city   lights \n")
    assert cats == [Category("receipts", "a scan of a receipt, invoice or bill"), Category("city lights")]


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
