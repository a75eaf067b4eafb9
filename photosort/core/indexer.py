"""Index a folder: scan, find what changed, decode ahead in a pool, embed in batches, commit per batch.

Decoding runs in a thread pool that stays a few batches ahead of the model
(Pillow releases the GIL while decoding), so on a laptop the two cores are
busy with decoding and matrix work at once. This thread owns the model and
the SQLite writes; each batch is committed on its own, so an interrupted run
keeps all finished batches and the next run only does the rest.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .cache import Cache, NewPhoto, PhotoRecord
from .decode import DEFAULT_MAX_PIXELS, DecodedPhoto, DecodeError, Preprocess, decode_photo, fingerprint
from .decode_pool import DecodePool
from .errors import Cancelled
from .progress import CancelFn, ProgressFn, Reporter, check_cancel
from .scan import ScannedFile, resolve_root, scan_folder

log = logging.getLogger(__name__)


@dataclass
class IndexReport:
    """What one indexing run did; ``to_json`` is the CLI's ``--json`` document."""

    folder: str
    total: int = 0
    indexed: int = 0
    unchanged: int = 0
    renamed: int = 0
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    known_failures: int = 0  # failed before and unchanged since: not retried
    ignored: int = 0  # files that are not photos (videos, sidecars, documents)
    cancelled: bool = False
    seconds: float = 0.0
    model: str = ""
    device: str = ""
    precision: str = ""

    @property
    def rate(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict:
        return {
            "folder": self.folder,
            "total": self.total,
            "indexed": self.indexed,
            "unchanged": self.unchanged,
            "renamed": self.renamed,
            "removed": self.removed,
            "failed": [{"path": p, "error": e} for p, e in self.failed],
            "known_failures": self.known_failures,
            "ignored": self.ignored,
            "cancelled": self.cancelled,
            "seconds": round(self.seconds, 3),
            "photos_per_second": round(self.rate, 2),
            "model": self.model,
            "device": self.device,
            "precision": self.precision,
        }


@dataclass
class IndexPlan:
    """The difference between the folder on disk and the cache."""

    to_embed: list[ScannedFile]
    unchanged: int
    known_failures: int
    vanished: list[PhotoRecord]


@dataclass(frozen=True)
class PipelineOptions:
    batch_size: int = 16
    decode_threads: int = max(2, os.cpu_count() or 2)
    max_pixels: int = DEFAULT_MAX_PIXELS
    decode_ahead_batches: int = 3
    decode_timeout_s: float = 60.0


class Embedder(Protocol):
    """What the indexer needs from a model: preprocessing facts and a batch embedding call."""

    prep: Preprocess
    model_key: str
    dim: int

    def embed_pixels(self, batch: np.ndarray) -> np.ndarray: ...


def plan_index(scanned: list[ScannedFile], known: dict[str, PhotoRecord]) -> IndexPlan:
    """Split the scan into photos to embed and photos the cache already has; list vanished ones."""
    to_embed: list[ScannedFile] = []
    unchanged = known_failures = 0
    for f in scanned:
        rec = known.get(f.path)
        same_file = rec is not None and rec.size == f.size and rec.mtime_ns == f.mtime_ns
        if same_file and rec.error is not None:
            known_failures += 1
        elif same_file and rec.has_embedding:
            unchanged += 1
        else:
            to_embed.append(f)
    seen = {f.path for f in scanned}
    vanished = [rec for path, rec in known.items() if path not in seen]
    return IndexPlan(to_embed, unchanged, known_failures, vanished)


def index_folder(
    folder: str | os.PathLike[str],
    cache: Cache,
    model_key: str,
    dim: int,
    get_embedder: Callable[[], Embedder],
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    on_batch: Callable[[list[int]], None] | None = None,
    options: PipelineOptions | None = None,
) -> IndexReport:
    """Bring the cache up to date with ``folder``; the model is loaded only if something needs embedding."""
    options = options or PipelineOptions()
    started = time.monotonic()
    root = resolve_root(folder)
    report = IndexReport(folder=root)
    try:
        Reporter("scanning", 0, progress).update(0, force=True)
        ignored: list[str] = []
        scanned = scan_folder(root, cancel, ignored)
        report.ignored = len(ignored)
        model_id = cache.model_id(model_key, dim)
        plan = plan_index(scanned, cache.photos_under(root, model_id))
        report.total, report.unchanged, report.known_failures = len(scanned), plan.unchanged, plan.known_failures
        report.renamed = _apply_renames(cache, plan, model_id)
        report.removed = cache.delete_photos(rec.id for rec in plan.vanished) if plan.vanished else 0
        report.unchanged += report.renamed
        if plan.to_embed:
            embedder = get_embedder()
            _embed_all(plan.to_embed, cache, model_id, embedder, report, options, progress, cancel, on_batch)
    except Cancelled:
        report.cancelled = True
    report.seconds = time.monotonic() - started
    log.info("indexed %s: %d new, %d unchanged, %d failed in %.1fs", root, report.indexed, report.unchanged,
             len(report.failed), report.seconds)
    return report


def _apply_renames(cache: Cache, plan: IndexPlan, model_id: int) -> int:
    """A new path whose content matches a vanished photo is that photo renamed: keep its vectors and labels."""
    by_print = {(rec.fingerprint, rec.size): rec for rec in plan.vanished if rec.fingerprint and rec.has_embedding}
    if not by_print:
        return 0
    renamed = 0
    still_to_embed: list[ScannedFile] = []
    for f in plan.to_embed:
        rec = None
        if any(size == f.size for _, size in by_print):
            try:
                rec = by_print.pop((fingerprint(f.path, f.size), f.size), None)
            except OSError:
                rec = None
        if rec is None:
            still_to_embed.append(f)
            continue
        cache.move_photo(rec.id, f.path, f.size, f.mtime_ns)
        plan.vanished.remove(rec)
        renamed += 1
    plan.to_embed = still_to_embed
    return renamed


def _embed_all(
    files: list[ScannedFile],
    cache: Cache,
    model_id: int,
    embedder: Embedder,
    report: IndexReport,
    options: PipelineOptions,
    progress: ProgressFn | None,
    cancel: CancelFn | None,
    on_batch: Callable[[list[int]], None] | None,
) -> None:
    reporter = Reporter("indexing", len(files), progress)
    reporter.update(0, force=True)
    done = 0
    with DecodePool(options.decode_threads, options.decode_timeout_s) as pool:
        for batch in _decoded_batches(files, embedder.prep, options, pool):
            check_cancel(cancel)
            ids = _embed_and_store(batch, cache, model_id, embedder, report)
            if on_batch is not None and ids:
                on_batch(ids)
            first = done == 0
            done += len(batch)
            if first:
                reporter.restart_rate(done)  # the first batch pays for model warm-up
            reporter.update(done)
        reporter.update(done, force=True)


Decoded = tuple[ScannedFile, DecodedPhoto | str]


def _decoded_batches(
    files: list[ScannedFile], prep: Preprocess, options: PipelineOptions, pool: DecodePool
) -> Iterator[list[Decoded]]:
    """Decoded photos in scan order, in batches, with the pool kept a few batches ahead."""
    window = options.batch_size * options.decode_ahead_batches
    pending: deque[tuple[ScannedFile, Future]] = deque()
    todo = iter(files)
    batch: list[Decoded] = []

    def submit_more() -> None:
        while len(pending) < window:
            f = next(todo, None)
            if f is None:
                return
            pending.append((f, pool.submit(_decode_or_reason, f.path, prep, options.max_pixels)))

    submit_more()
    while pending:
        f, future = pending.popleft()
        submit_more()
        batch.append((f, pool.result(future, _too_slow)))
        if len(batch) == options.batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _decode_or_reason(path: str, prep: Preprocess, max_pixels: int) -> DecodedPhoto | str:
    """Decode one photo; any failure becomes its one-line reason, so one bad file never stops a run."""
    try:
        return decode_photo(path, prep, max_pixels)
    except DecodeError as exc:
        return str(exc)
    except Exception as exc:
        log.exception("unexpected failure decoding %s", path)
        return f"unexpected error while reading: {type(exc).__name__}: {str(exc)[:120]}"


def _too_slow(seconds: float) -> str:
    return f"took longer than {seconds:.0f} s to read; skipped (a damaged or extreme file?)"


def _embed_and_store(batch: list[Decoded], cache: Cache, model_id: int, embedder: Embedder, report: IndexReport) -> list[int]:
    good = [(f, d) for f, d in batch if isinstance(d, DecodedPhoto)]
    failures = [(f.path, f.size, f.mtime_ns, d) for f, d in batch if isinstance(d, str)]
    photos: list[NewPhoto] = []
    if good:
        vectors = embedder.embed_pixels(np.stack([d.pixels for _, d in good]))
        photos = [
            NewPhoto(f.path, f.size, f.mtime_ns, d.fingerprint, d.width, d.height, d.thumb, v)
            for (f, d), v in zip(good, vectors, strict=True)
        ]
    ids = cache.write_indexed(model_id, photos, failures)
    report.indexed += len(photos)
    report.failed.extend((path, reason) for path, _, _, reason in failures)
    return ids
