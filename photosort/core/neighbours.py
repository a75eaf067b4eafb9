"""Each photo's nearest neighbours in CLIP space, fast enough for 100,000 photos on two cores.

The distance of two photos is ``1 - cosine`` of their unit vectors (half their
squared Euclidean distance). It is computed from vectors with the library's
mean taken off first: with random-weight models every vector points nearly the
same way (cosine 0.9998 between unrelated photos), and centring keeps those
small differences out of float32's rounding. Only the ranking and ratios of
distances are used by callers (:mod:`photosort.core.duplicates`), never an
absolute value.

Up to :data:`EXACT_LIMIT` photos every pair is compared (blocked matrix
products). Comparing every pair of 100,000 photos would be 10^10 distances of
512 numbers (about a minute of two cores), so larger libraries use an inverted
file, as faiss's ``IndexIVFFlat`` does: the vectors are projected on their
:data:`PCA_DIMS` main axes (PCA), cut into cells of about :data:`CELL_SIZE`
photos by k-means, and each photo is compared exactly, on the full vectors,
with the photos of its :data:`PROBES` nearest cells. Near neighbours nearly
always fall in those cells; one that does not is missed, which makes a photo's
k-th neighbour distance a little larger than it is (never smaller). Measured on
100,000 random 512-d vectors with 2,000 planted near-copies (the worst case:
random vectors have no clusters), looking in 5 cells made in 32 dimensions
finds 99.5 % of the copies (2 cells made in 64 dimensions: 94 %) in about 3 s
of two cores (2.3 s idle); ``photosort bench --scale 100000`` measures it in
the app. faiss-cpu 1.15 was measured on the same vectors and lost: its
``IndexIVFFlat`` with the same 781 cells and 5 probes took 8.7 s (99.8 %, its
default training included), ``IndexHNSWFlat`` (M=16) 37 s (82 %); so no
dependency for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from .progress import CancelToken, check_cancel
from .threads import cpu_cores

log = logging.getLogger(__name__)

EXACT_LIMIT = 5000  # up to this many photos, every pair is compared
CELL_SIZE = 128  # photos per cell of the inverted file, on average
PROBES = 5  # nearest cells each photo looks in
PCA_DIMS = 32  # dimensions the cells are made in
KMEANS_SAMPLE = 24  # photos sampled per cell to train the cells
KMEANS_ROUNDS = 6
PCA_SAMPLE = 8192  # photos the main axes are computed from
ROW_BLOCK = 1024  # rows per matrix product (keeps each product in cache-sized pieces)


@dataclass(frozen=True)
class Neighbours:
    """The ``k`` nearest others of each row, nearest first: row numbers and distances (``1 - cosine``).

    Where a row has fewer than ``k`` others, ``index`` is -1 and ``distance`` inf.
    """

    index: np.ndarray  # N x k, int64
    distance: np.ndarray  # N x k, float32

    @property
    def k(self) -> int:
        return int(self.index.shape[1])

    def reference(self) -> np.ndarray:
        """Each row's distance to its farthest listed neighbour (its k-th, or its last where it has fewer)."""
        finite = np.where(np.isfinite(self.distance), self.distance, -np.inf)
        far = finite.max(axis=1, initial=-np.inf)
        return np.where(np.isfinite(far), far, np.inf).astype(np.float32)


def nearest_neighbours(vectors: np.ndarray, k: int, cancel: CancelToken | None = None,
                       exact_limit: int = EXACT_LIMIT) -> Neighbours:
    """The ``k`` nearest neighbours of every row of ``vectors`` (N x dim, unit rows), exactly up to ``exact_limit``."""
    n = len(vectors)
    k = max(1, k)
    if n:
        centred = np.asarray(vectors, np.float32) - vectors.mean(axis=0, dtype=np.float64).astype(np.float32)
    else:
        centred = np.zeros((0, 1), np.float32)
    norms = np.einsum("ij,ij->i", centred, centred)
    # BLAS's own threads cost more than they gain on these products, most of them small (measured: 11.6 ms for a
    # 256 x 512 x 128 product with OpenBLAS's 2 threads on a busy 2-core machine, 0.5 ms with 1), so BLAS gets
    # one thread and the pieces of work are shared out between threads here.
    with threadpool_limits(limits=1, user_api="blas"), \
            ThreadPoolExecutor(max_workers=cpu_cores(), thread_name_prefix="neighbours") as pool:
        if n <= exact_limit:
            found = _Found(n, 1, k)
            everyone = np.arange(n)
            list(pool.map(lambda rows: found.put(rows, 0, _against(centred, norms, rows, everyone, k, cancel)),
                          _blocks(n)))
        else:
            found = _inverted_file(centred, norms, k, pool, cancel)
    return found.best(k)


def pair_distances(vectors: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``1 - cosine`` of rows ``a[i]`` and ``b[i]``, as :func:`nearest_neighbours` measures it (centred)."""
    if not len(a):
        return np.zeros(0, np.float32)
    diff = vectors[a].astype(np.float32) - vectors[b].astype(np.float32)
    return (0.5 * np.einsum("ij,ij->i", diff, diff)).astype(np.float32)


def _blocks(n: int) -> list[np.ndarray]:
    return [np.arange(start, min(n, start + ROW_BLOCK)) for start in range(0, n, ROW_BLOCK)]


class _Found:
    """Candidate neighbours: for each photo, ``k`` per searched cell (slot), written by the threads in place."""

    def __init__(self, n: int, slots: int, k: int) -> None:
        self.k = k
        self.index = np.full((n, slots * k), -1, np.int64)
        self.distance = np.full((n, slots * k), np.inf, np.float32)

    def put(self, queries: np.ndarray, slot: np.ndarray | int, nearest: tuple[np.ndarray, np.ndarray]) -> None:
        index, distance = nearest
        columns = np.asarray(slot)[..., None] * self.k + np.arange(index.shape[1])  # disjoint for every call
        self.index[queries[:, None], columns] = index
        self.distance[queries[:, None], columns] = distance

    def best(self, k: int) -> Neighbours:
        """Each photo's ``k`` nearest of its candidates (each neighbour is a candidate once: from its own cell)."""
        index, distance = self.index, self.distance
        if index.shape[1] > k:
            nearest = np.argpartition(distance, k - 1, axis=1)[:, :k]
            index, distance = np.take_along_axis(index, nearest, 1), np.take_along_axis(distance, nearest, 1)
        order = np.lexsort((index, distance), axis=1)  # nearest first; ties: lower row number first
        index, distance = np.take_along_axis(index, order, 1), np.take_along_axis(distance, order, 1)
        out_index = np.full((len(index), k), -1, np.int64)
        out_distance = np.full((len(index), k), np.inf, np.float32)
        out_index[:, : index.shape[1]] = np.where(np.isfinite(distance), index, -1)
        out_distance[:, : index.shape[1]] = distance
        return Neighbours(out_index, out_distance)


def _inverted_file(centred: np.ndarray, norms: np.ndarray, k: int, pool: ThreadPoolExecutor,
                   cancel: CancelToken | None) -> _Found:
    n = len(centred)
    rng = np.random.default_rng(0)  # the same library gives the same cells, so the same groups
    cells = max(2, n // CELL_SIZE)
    sample = rng.choice(n, size=min(n, cells * KMEANS_SAMPLE), replace=False)
    axes = _main_axes(centred[sample[:PCA_SAMPLE]])
    projected = _joined_rows(pool.map(lambda rows: centred[rows] @ axes, _blocks(n)))
    check_cancel(cancel)
    centroids = _kmeans(projected[sample], cells, rng, cancel)
    check_cancel(cancel)
    probes = _joined_rows(pool.map(lambda rows: _nearest_centroids(projected[rows], centroids, min(PROBES, cells)),
                                   _blocks(n)))
    home = _by_cell(probes[:, 0], cells)
    visits = _by_cell(probes.ravel(), cells)  # entries of probes.ravel(): photo = entry // P, slot = entry % P
    found = _Found(n, probes.shape[1], k)

    def search(cell: int) -> None:
        if len(home[cell]) and len(visits[cell]):
            queries, slots = np.divmod(visits[cell], probes.shape[1])
            found.put(queries, slots, _against(centred, norms, queries, home[cell], k, cancel))

    list(pool.map(search, range(cells)))
    log.debug("inverted file: %d photos in %d cells (largest %d)", n, cells, max(len(h) for h in home))
    return found


def _joined_rows(parts: Iterable[np.ndarray]) -> np.ndarray:
    return np.concatenate(list(parts))


def _against(centred: np.ndarray, norms: np.ndarray, queries: np.ndarray, members: np.ndarray, k: int,
             cancel: CancelToken | None) -> tuple[np.ndarray, np.ndarray]:
    """Each query's ``k`` nearest among ``members`` (itself left out), compared exactly on the full vectors.

    Returns their row numbers and distances (queries x min(k, members)); itself, where it is a member, at inf.
    """
    check_cancel(cancel)
    kk = min(k, len(members))
    dist = centred[queries] @ centred[members].T  # half squared distance = half norms - dot products
    np.subtract(0.5 * norms[members][None, :], dist, out=dist)
    dist += 0.5 * norms[queries][:, None]
    dist[queries[:, None] == members[None, :]] = np.inf  # not its own neighbour
    nearest = np.argpartition(dist, kk - 1, axis=1)[:, :kk] if kk < len(members) else \
        np.broadcast_to(np.arange(kk), (len(queries), kk))
    return members[nearest], np.maximum(np.take_along_axis(dist, nearest, axis=1), 0.0)


def _by_cell(cell: np.ndarray, cells: int) -> list[np.ndarray]:
    """For each cell, the positions in ``cell`` (an array of cell numbers) that name it."""
    order = np.argsort(cell, kind="stable")
    bounds = np.searchsorted(cell[order], np.arange(cells + 1))
    return [order[bounds[c] : bounds[c + 1]] for c in range(cells)]


def _main_axes(sample: np.ndarray) -> np.ndarray:
    """The PCA_DIMS directions along which the vectors vary most (dim x PCA_DIMS)."""
    covariance = (sample.T @ sample).astype(np.float64)
    _, vectors = np.linalg.eigh(covariance)
    return np.ascontiguousarray(vectors[:, ::-1][:, : min(PCA_DIMS, sample.shape[1])], dtype=np.float32)


def _kmeans(points: np.ndarray, cells: int, rng: np.random.Generator, cancel: CancelToken | None) -> np.ndarray:
    """Lloyd's k-means, a few rounds from a random start (cells need only be reasonable, not optimal)."""
    centroids = points[rng.choice(len(points), size=cells, replace=False)].copy()
    for _ in range(KMEANS_ROUNDS):
        check_cancel(cancel)
        nearest = _nearest_centroids(points, centroids, 1)[:, 0]
        counts = np.bincount(nearest, minlength=cells)
        filled = counts > 0
        order = np.argsort(nearest, kind="stable")
        starts = np.searchsorted(nearest[order], np.flatnonzero(filled))
        sums = np.add.reduceat(points[order].astype(np.float64), starts, axis=0)
        centroids[filled] = (sums / counts[filled, None]).astype(np.float32)
        empty = np.flatnonzero(~filled)
        if len(empty):  # an empty cell restarts at a random point
            centroids[empty] = points[rng.choice(len(points), size=len(empty), replace=False)]
    return centroids


def _nearest_centroids(points: np.ndarray, centroids: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` nearest centroids of each point (N x count, nearest first), in blocks."""
    half_norms = 0.5 * np.einsum("ij,ij->i", centroids, centroids)
    out = np.empty((len(points), count), np.int64)
    for start in range(0, len(points), 8 * ROW_BLOCK):
        score = points[start : start + 8 * ROW_BLOCK] @ centroids.T - half_norms  # larger is nearer
        for c in range(count):
            best = np.argmax(score, axis=1)
            out[start : start + len(best), c] = best
            score[np.arange(len(best)), best] = -np.inf
    return out


