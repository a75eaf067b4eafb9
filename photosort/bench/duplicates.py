"""``photosort bench --scale N``, near-duplicates: planted copies and bursts, and the time to group them.

The synthetic cache of :mod:`.scale` gets near-copies (every
:data:`COPY_EVERY`-th photo is a copy of the one before: nearly the same
vector, the same thumbnail) and capture times (a shot every ten minutes, with
a three-shot burst a second apart every :data:`BURST_EVERY` photos). Then
grouping is timed twice: the first time, when every thumbnail's signature is
computed (once in a library's life), and with the signatures cached (every
time after), and the share of planted copies found is counted.
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np

from photosort.core.capture import CaptureFacts

COPY_EVERY = 50
BURST_EVERY = 100
_START = dt.datetime(2020, 1, 1, 8, 0, 0)


def is_copy(n: int) -> bool:
    """Photo number ``n`` is a near-copy of photo ``n - 1``."""
    return n % COPY_EVERY == 1


def thumbnail_index(n: int, count: int) -> int:
    """Which sample thumbnail photo ``n`` gets (a copy gets its original's)."""
    return (n - 1 if is_copy(n) else n) % count


def plant_copies(vectors: np.ndarray, first: int, rng: np.random.Generator) -> None:
    """Make the copies' vectors (rows of a batch starting at photo ``first``) nearly their originals' (in place)."""
    for row in range(1, len(vectors)):
        if is_copy(first + row):
            noisy = vectors[row - 1] + rng.normal(scale=0.01, size=vectors.shape[1]).astype(np.float32)
            vectors[row] = noisy / np.linalg.norm(noisy)


def capture_facts_of(n: int) -> CaptureFacts:
    """A shot every ten minutes; photos 10, 11, 12 of every hundred a second apart (a burst)."""
    block, within = divmod(n, BURST_EVERY)
    offset = dt.timedelta(minutes=10 * n)
    if within in (11, 12):
        offset = dt.timedelta(minutes=10 * (block * BURST_EVERY + 10), seconds=within - 10)
    return CaptureFacts((_START + offset).isoformat(), "Canon EOS R6")


def time_grouping(engine, root: str, photos: int) -> dict[str, float]:
    """Group the library twice (signatures computed, then cached); planted copies found."""
    from photosort.core import perceptual
    from photosort.core.duplicates import find_groups

    library = engine.open_library([root])
    started = time.perf_counter()
    perceptual.signatures(engine.cache, library.ids.tolist())
    signatures_s = time.perf_counter() - started
    started = time.perf_counter()
    groups = find_groups(library)
    group_s = time.perf_counter() - started
    number = {pid: int(path.rsplit("_", 1)[1].split(".")[0]) for pid, path in zip(library.ids.tolist(),
                                                                                    library.photos.paths, strict=True)}
    together = {frozenset(number[i] for i in g.ids) for g in groups}
    copies = [n for n in range(photos) if is_copy(n)]
    found = sum(any({n - 1, n} <= members for members in together) for n in copies)
    return {"duplicates_signatures_s": signatures_s, "duplicates_group_s": group_s,
            "duplicates_groups": float(len(groups)), "duplicates_copies_found": found / max(1, len(copies))}
