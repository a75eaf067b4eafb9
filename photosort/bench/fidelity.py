"""How faithful each fast decode path is: its embeddings against those of a full decode of the same photos.

Indexing takes the cheapest source that is big enough (a JPEG's DCT-scaled
draft, a camera's MPF preview, a HEIC's embedded thumbnail, a RAW's embedded
preview, its binned sensor data or LibRaw's half-size development; see ``Upright.source`` in
:mod:`photosort.core.decode`). Each is compared here with
``decode_photo(..., fast=False)``, which decodes every pixel, through the same
encoder: the cosine of the two unit vectors per photo, and the mean absolute
difference of the two 224 x 224 model inputs (0-255), which says the same
without the model. With a random-weight stand-in model the cosine is a
pixel-level check (such a model finds unrelated photos alike too), so the
pixel difference is reported beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from photosort.core.decode import DEFAULT_MAX_PIXELS, DecodedPhoto, DecodeError, Preprocess, decode_photo

log = logging.getLogger(__name__)

Embed = Callable[[np.ndarray], np.ndarray]  # uint8 N x crop x crop x 3 -> unit vectors N x dim


@dataclass
class Fidelity:
    """One fast path measured against the full decode, over ``photos`` photos that took it."""

    source: str
    photos: int
    cosine_mean: float
    cosine_worst: float
    pixel_diff: float  # mean absolute difference of the model inputs, 0-255


def fast_path_fidelity(paths: Iterable[str], prep: Preprocess, embed: Embed,
                       max_pixels: int = DEFAULT_MAX_PIXELS) -> dict[str, Fidelity]:
    """{fast path: its fidelity} for the photos in ``paths`` (a photo decoded in full has no fast path to check)."""
    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for path in paths:
        try:
            fast = decode_photo(path, prep, max_pixels)
            if fast.source == "full":
                continue
            full = decode_photo(path, prep, max_pixels, fast=False)
        except DecodeError as exc:  # unreadable photos are the indexer's to report, not a fidelity figure
            log.debug("no fidelity for %s: %s", path, exc)
            continue
        pairs.setdefault(fast.source, []).append((fast.pixels, full.pixels))
    return {source: _compare(source, found, embed) for source, found in sorted(pairs.items())}


def compare_decodes(fast: list[DecodedPhoto], full: list[DecodedPhoto], embed: Embed) -> Fidelity:
    """The fidelity of ``fast`` decodes against ``full`` decodes of the same photos (in order)."""
    return _compare(fast[0].source if fast else "none", [(a.pixels, b.pixels) for a, b in zip(fast, full, strict=True)],
                    embed)


def _compare(source: str, pairs: list[tuple[np.ndarray, np.ndarray]], embed: Embed) -> Fidelity:
    if not pairs:
        return Fidelity(source, 0, 0.0, 0.0, 0.0)
    fast = np.stack([a for a, _ in pairs])
    full = np.stack([b for _, b in pairs])
    cosines = np.sum(embed(fast) * embed(full), axis=1)
    pixel_diff = float(np.abs(fast.astype(np.int16) - full.astype(np.int16)).mean())
    return Fidelity(source, len(pairs), float(cosines.mean()), float(cosines.min()), pixel_diff)
