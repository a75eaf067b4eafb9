"""What a photo looks like at a glance: a perceptual signature of its cached thumbnail, for near-duplicates.

The signature is the one pHash (Zauner 2010, what ``imagehash.phash`` computes)
is made of: the thumbnail in grey at 32 x 32 pixels, its 2-D DCT, and the 8 x 8
lowest frequencies. pHash then keeps one bit per coefficient (above or below
their median) and compares bit counts; photosort keeps the 63 coefficients
after the DC term themselves and compares two photos by their correlation
(:func:`look_distances`: 0 is the same picture, 1 unrelated). Why not the bits:
measured on ``make_library.py``'s edited copies (re-encoded at a quarter of
the size), ``imagehash.phash`` put a photo of smooth sky and sea 24 bits of 64
apart from its copy, nearly as far as unrelated photos (32), because nearly
all its coefficients are close to their median and flip with any re-encoding;
the correlation of the same coefficients was above 0.998 for every copy.
Dropping the DC term and normalising makes brightness and contrast changes not
count.

Why numpy rather than the ``imagehash`` package: the same transform is one
matrix product here, batched over many thumbnails, while imagehash brings SciPy
and PyWavelets along for it; and reading the thumbnail with JPEG DCT scaling
(decoded at 1/4 size, already grey) is most of the cost: 0.27 ms a thumbnail
against 1.8 ms for ``imagehash.phash`` (measured on 208 cached thumbnails).

Signatures are derived data: computed once per thumbnail and kept in the cache
(``looks.signature``, float16, 128 bytes a photo); the cache forgets one when its
thumbnail is written again (:mod:`photosort.core.cache`), so only photos whose
signature is missing are ever read.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .progress import CancelToken, ProgressFn, Reporter, check_cancel
from .threads import cpu_cores

if TYPE_CHECKING:
    from .cache import Cache

log = logging.getLogger(__name__)

SIDE = 32  # the thumbnail is reduced to SIDE x SIDE grey pixels
BAND = 8  # and its BAND x BAND lowest DCT frequencies are kept
SIGNATURE_LENGTH = BAND * BAND - 1  # the DC term (mean brightness) is left out
BATCH = 512  # thumbnails read, and signatures stored, per transaction


def _dct_rows(n: int, rows: int) -> np.ndarray:
    """The first ``rows`` rows of the orthonormal DCT-II matrix of size ``n``."""
    k = np.arange(rows)[:, None]
    i = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    matrix[0] /= np.sqrt(2.0)
    return matrix.astype(np.float32)


_DCT = _dct_rows(SIDE, BAND)


def grey_of_thumbnail(jpeg: bytes) -> np.ndarray | None:
    """The thumbnail as SIDE x SIDE grey pixels (float32), or None when it cannot be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(jpeg)) as image:
                image.draft("L", (SIDE, SIDE))  # JPEG DCT scaling: decode at 1/4 or 1/8, already grey
                grey = image.convert("L").resize((SIDE, SIDE), Image.Resampling.LANCZOS)
                return np.asarray(grey, np.float32)
    except Exception as exc:  # a damaged thumbnail only means no signature for this photo
        log.debug("unreadable thumbnail: %s", exc)
        return None


def signatures_of_greys(greys: np.ndarray) -> np.ndarray:
    """The signatures (K x 63, float32, unit length; zero for a flat picture) of K x SIDE x SIDE grey images."""
    coefficients = _DCT @ greys.astype(np.float32) @ _DCT.T  # K x BAND x BAND
    ac = coefficients.reshape(len(greys), -1)[:, 1:]
    return unit_rows(ac)


def signature_of_thumbnail(jpeg: bytes) -> np.ndarray | None:
    """One thumbnail's signature, or None when the thumbnail cannot be read."""
    grey = grey_of_thumbnail(jpeg)
    return None if grey is None else signatures_of_greys(grey[None])[0]


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; an all-zero row (a flat picture: nothing to compare) stays zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x, dtype=np.float32), where=norms > 1e-6).astype(np.float32)


def look_distances(signatures: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - correlation of the signatures of photos ``a[i]`` and ``b[i]`` (rows of ``signatures``).

    0: the same picture; about 1: unrelated; a photo without a signature (flat,
    or unreadable) is 1 from everything, so it is never a near-duplicate by its look.
    """
    if not len(a):
        return np.zeros(0, np.float32)
    return (1.0 - np.einsum("ij,ij->i", signatures[a], signatures[b])).astype(np.float32)


def to_blob(signature: np.ndarray) -> bytes:
    return signature.astype(np.float16).tobytes()


def from_blob(blob: bytes) -> np.ndarray | None:
    """A stored signature; None for one of another length (written by another version: computed again)."""
    value = np.frombuffer(blob, np.float16)
    return value.astype(np.float32) if len(value) == SIGNATURE_LENGTH else None


def signatures(cache: Cache, ids: Iterable[int], progress: ProgressFn | None = None,
               cancel: CancelToken | None = None, threads: int | None = None) -> np.ndarray:
    """The signature of each photo (rows in the order of ``ids``), reading only thumbnails not signed before.

    Missing ones are computed from the cached thumbnails in batches (several
    threads: Pillow decodes without the GIL) and stored batch by batch, so a
    cancelled run keeps what it computed. A photo without a readable thumbnail
    gets a zero row.
    """
    ids = [int(i) for i in ids]
    out = np.zeros((len(ids), SIGNATURE_LENGTH), np.float32)
    row = {pid: r for r, pid in enumerate(ids)}
    known: set[int] = set()
    for pid, blob in cache.signatures_for_ids(ids).items():
        value = from_blob(blob)
        if value is not None:
            out[row[pid]] = value
            known.add(pid)
    missing = [pid for pid in dict.fromkeys(ids) if pid not in known]
    if missing:
        _compute_missing(cache, missing, out, row, progress, cancel, threads)
    return out


def _compute_missing(cache: Cache, missing: list[int], out: np.ndarray, row: dict[int, int],
                     progress: ProgressFn | None, cancel: CancelToken | None, threads: int | None) -> None:
    reporter = Reporter("comparing looks", len(missing), progress)
    workers = threads or cpu_cores()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="looks") as pool:
        for start in range(0, len(missing), BATCH):
            check_cancel(cancel)
            chunk = missing[start : start + BATCH]
            thumbs = cache.thumbnails(chunk)
            greys = list(pool.map(grey_of_thumbnail, [thumbs.get(pid, b"") for pid in chunk]))
            readable = [(pid, g) for pid, g in zip(chunk, greys, strict=True) if g is not None]
            if readable:
                values = signatures_of_greys(np.stack([g for _, g in readable]))
                for (pid, _), value in zip(readable, values, strict=True):
                    out[row[pid]] = value
                cache.store_signatures({pid: to_blob(v) for (pid, _), v in zip(readable, values, strict=True)})
            reporter.update(start + len(chunk))
    log.info("computed the look signatures of %d photos", len(missing))
