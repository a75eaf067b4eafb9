"""``photosort bench --scale N``: what the app's everyday work costs with N photos in the cache.

A throw-away cache is filled with N synthetic photos (random unit vectors,
real thumbnails) and then the things the window does with a big library are
timed: opening it, re-scoring the categories, a text search, training a
classifier on a few hundred labels, grouping near-duplicates and bursts
(:mod:`.duplicates`); and the cache's size per photo.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from photosort.core.config import Settings
from photosort.core.decode import Preprocess, decode_photo
from photosort.core.errors import FolderError
from photosort.core.scan import scan_folder

from .duplicates import capture_facts_of, plant_copies, thumbnail_index, time_grouping
from .photos import generate_photos
from .report import Say, silent

log = logging.getLogger(__name__)


def run_scale(model_name: str, photos: int, thumbs_from: str | None = None,
              say: Say = silent, labels: int = 500) -> dict:
    """Fill a throw-away cache with ``photos`` synthetic photos and time what the app does at that size.

    Thumbnails are real ones, made from ``thumbs_from``'s photos (or from
    generated camera-like photos) and reused round-robin, so the cache size
    per photo is what a library of such photos would cost.
    """
    from photosort.core.classifier import untrained_classifier
    from photosort.core.engine import Engine
    from photosort.core.model import model_identity
    from photosort.core.zeroshot import assign, zero_shot_probabilities

    with tempfile.TemporaryDirectory(prefix="photosort-scale-") as tmp:
        work = Path(tmp)
        settings = Settings(model=model_name, device="cpu", data_dir=work / "cache")
        key, dim = model_identity(settings)
        thumbs = _sample_thumbnails(thumbs_from, work / "thumb-photos", say)
        root = work / "library"
        root.mkdir()
        say(f"writing {photos} synthetic photos into a throw-away cache…")
        started = time.perf_counter()
        _fill_cache(settings, key, dim, root, photos, thumbs)
        fill_s = time.perf_counter() - started
        db = settings.cache_path
        cache_bytes = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
        engine = Engine(settings)
        try:
            rng = np.random.default_rng(0)
            classes = [f"class {i}" for i in range(5)]
            class_vectors = _unit(rng.normal(size=(len(classes), dim)).astype(np.float32))
            results: dict[str, float] = {}
            library, results["open_library_s"] = _timed(lambda: engine.embeddings(root))
            probs_assign = lambda: assign(zero_shot_probabilities(library.vectors, class_vectors, 100.0), 0.5)  # noqa: E731
            _, results["rescore_categories_s"] = _timed(probs_assign, repeat=5)
            query = class_vectors[0]
            _, results["text_search_s"] = _timed(lambda: _top_k(library.vectors @ query, 50), repeat=5)
            targets = np.arange(labels) % len(classes)
            head = untrained_classifier("bench", classes, key, dim, class_vectors, 100.0)
            # Best of two: the first training in a process also pays torch's one-off start-up (~1 s).
            _, results["train_head_s"] = _timed(lambda: _train_like_the_app(head, library.vectors[:labels], targets),
                                                repeat=2)
            say("grouping near-duplicates and bursts…")
            results.update(time_grouping(engine, str(root), photos))
        finally:
            engine.close()
    return {
        "photos": photos,
        "labels": labels,
        "fill_seconds": round(fill_s, 1),
        "cache_bytes_per_photo": round(cache_bytes / photos),
        "thumbnail_bytes_mean": round(float(np.mean([len(t) for t in thumbs]))),
        **{k: float(f"{v:.3g}") for k, v in results.items()},  # 3 significant figures, never rounded to 0
    }


def _train_like_the_app(head: object, vectors: np.ndarray, targets: np.ndarray) -> None:
    """What ``Engine.train_head`` does with the vectors: cross-validate the penalty (and accuracy), then fit."""
    from photosort.core.classifier import train

    train(head, vectors, targets)


def _sample_thumbnails(folder: str | None, scratch: Path, say: Say, count: int = 20) -> list[bytes]:
    """Real thumbnails to reuse: from the user's photos (only read) or generated ones."""
    if folder is not None:
        paths = [f.path for f in scan_folder(folder)[:count]]
    else:
        say(f"generating {count} camera-like photos for real thumbnails…")
        paths = [str(p) for p in generate_photos(scratch, count, megapixels=2.0)]
    thumbs = []
    for path in paths:
        try:
            thumbs.append(decode_photo(path, Preprocess()).thumb)
        except Exception as exc:  # a broken file in the user's folder just gives no thumbnail sample
            log.debug("no thumbnail from %s: %s", path, exc)
    if not thumbs:
        raise FolderError(f"No readable photos in {folder} to make thumbnails from.")
    return thumbs


def _fill_cache(settings: Settings, key: str, dim: int, root: Path, photos: int, thumbs: list[bytes]) -> None:
    """Write ``photos`` synthetic photos in batches of 1000, as indexing would write them."""
    from photosort.core.cache import Cache, NewPhoto

    rng = np.random.default_rng(1)
    with Cache(settings.cache_path) as cache:
        model_id = cache.model_id(key, dim)
        for start in range(0, photos, 1000):
            n = min(1000, photos - start)
            vectors = _unit(rng.normal(size=(n, dim)).astype(np.float32))
            plant_copies(vectors, start, rng)
            batch = [
                NewPhoto(str(root / f"{(start + i) // 500:04d}" / f"IMG_{start + i:07d}.JPG"), 3_500_000 + i,
                         1_700_000_000_000_000_000 + start + i, f"{start + i:032x}", 4000, 3000,
                         thumbs[thumbnail_index(start + i, len(thumbs))], vectors[i], capture_facts_of(start + i))
                for i in range(n)
            ]
            cache.write_indexed(model_id, batch, [])
    # Closing the last connection checkpoints the write-ahead log into the database file.


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The indices of the ``k`` best scores, best first: what a text search shows."""
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def _timed(fn: Callable[[], object], repeat: int = 1) -> tuple[object, float]:
    """The result of ``fn`` and its best time over ``repeat`` calls (seconds)."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return result, best
