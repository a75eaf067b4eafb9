"""The tutorial pipeline: the reference the speed-up and the fidelity are measured against.

One photo at a time, fp32: ``Image.open`` -> ``CLIPProcessor(images=...)`` ->
``vision_model`` -> ``visual_projection``, with a full decode. Like the
tutorials it ignores EXIF orientation, while the indexer embeds photos
upright; so for rotated photos the fidelity reference is this pipeline run on
the upright photo, outside its timing, and the rate stays the tutorial's own.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageOps

from photosort.core.decode import orientation_of

log = logging.getLogger(__name__)


def naive_pipeline(model_name: str, paths: list[str], device: str = "cpu") -> tuple[float, dict[str, np.ndarray]]:
    """The tutorial pipeline's rate (photos/s) and its unit vectors (of the upright photo) per real path."""
    embed = _tutorial_embedder(model_name, device)
    embed(Image.open(paths[0]))  # warm-up, as a tutorial's second photo would be
    vectors: dict[str, np.ndarray] = {}
    timed = 0.0
    for path in paths:
        started = time.perf_counter()
        image = Image.open(path)
        vector = embed(image)
        timed += time.perf_counter() - started
        if orientation_of(image) != 1:
            vector = embed(ImageOps.exif_transpose(image))  # the upright reference, not timed
        vectors[os.path.realpath(path)] = vector
    return len(paths) / timed, vectors


def _tutorial_embedder(model_name: str, device: str) -> Callable[[Image.Image], np.ndarray]:
    """``image -> unit vector`` exactly as the Hugging Face CLIP examples do it."""
    import torch
    from transformers import CLIPModel, CLIPProcessor
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    processor = CLIPProcessor.from_pretrained(model_name)
    model = CLIPModel.from_pretrained(model_name, dtype=torch.float32).eval().to(device)

    def embed(image: Image.Image) -> np.ndarray:
        inputs = processor(images=image, return_tensors="pt").to(device)
        with torch.no_grad():
            features = model.visual_projection(model.vision_model(**inputs).pooler_output)
        vector = features[0].float().cpu().numpy()
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    return embed
