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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .cache import Cache, NewPhoto, PhotoRecord, Rewritten
from .capture import CaptureFacts
from .decode import (
    DEFAULT_MAX_PIXELS,
    DecodedPhoto,
    Preprocess,
    decode_or_reason,
    decode_photo,
    fingerprint,
    read_capture_facts,
)
from .decode_pool import DecodePool
from .errors import Cancelled, ModelLoadError
from .paths import display_path
from .progress import CancelToken, ProgressFn, Reporter, check_cancel, is_cancelled
from .scan import ScannedFile, resolve_root, scan_folder
from .threads import cpu_cores, plan_threads, torch_threads
from .wording import plural

if TYPE_CHECKING:
    from .gpudecode import EncodedPhoto

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
    thumbnailed: int = 0  # photos given only a thumbnail and capture facts: the model was not there to analyse them
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

    def summary(self) -> str:
        """One line whose counts add up to the total: photos that failed before and have not changed since are
        not read again, yet they are still among those that could not be read."""
        unreadable = len(self.failed) + self.known_failures
        counted = self.indexed + self.unchanged + unreadable
        parts = [f"{self.indexed:,} indexed", f"{self.unchanged:,} unchanged", f"{unreadable:,} could not be read"
                 + (f" ({self.known_failures:,} known from before)" if self.known_failures else "")]
        if self.total > counted:  # cancelled before the end
            parts.append(f"{self.total - counted:,} not reached")
        removed = f"; {self.removed:,} removed (no longer in the folder)" if self.removed else ""
        rate = f" ({self.rate:.1f} photos/s)" if self.indexed else ""
        return f"{display_path(self.folder)}: {plural(self.total, 'photo')} — {', '.join(parts)}{removed}{rate}"

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
    to_thumbnail: list[ScannedFile] = field(default_factory=list)  # of to_embed: new or changed, no thumbnail yet


@dataclass(frozen=True)
class PipelineOptions:
    """How indexing uses the machine; ``None`` means "chosen at run time for these cores and this device".

    ``batch_size``: photos per model call (default: the encoder's, 16 on a CPU, up to 256 on a GPU).
    ``decode_threads`` / ``torch_threads``: see :func:`plan_threads`.
    ``reserve_cores``: cores left to the app's interface; the GUI passes 1.
    ``gpu_decode``: decode JPEGs on the GPU (nvJPEG) when the model runs on CUDA; default: when torchvision can.
    """

    batch_size: int | None = None
    decode_threads: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    decode_ahead_batches: int = 3
    decode_timeout_s: float = 60.0
    torch_threads: int | None = None
    reserve_cores: int = 0
    gpu_decode: bool | None = None


class Embedder(Protocol):
    """What the indexer needs from a model: preprocessing facts and a batch embedding call.

    An embedder may also have ``device`` (a torch device) and ``batch_size``
    (its preferred photos per call); the pipeline uses them when present.
    """

    prep: Preprocess
    model_key: str
    dim: int

    def embed_pixels(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelAccess:
    """What indexing knows of the model before it is loaded, and how to load it.

    ``identity`` is (cache key, vector size), known without loading the weights;
    None when the model cannot be had at all (offline before its first download, a
    wrong id or folder): ``problem`` says why. ``needs_download``: loading must fetch
    the weights first, which takes minutes on a first run.
    """

    load: Callable[[], Embedder]
    identity: tuple[str, int] | None
    problem: ModelLoadError | None = None
    needs_download: bool = False

    @classmethod
    def loaded(cls, embedder: Embedder) -> ModelAccess:
        """A model already in memory (the benchmarks)."""
        return cls(lambda: embedder, (embedder.model_key, embedder.dim))


def plan_index(scanned: list[ScannedFile], known: dict[str, PhotoRecord]) -> IndexPlan:
    """Split the scan into photos to embed and photos the cache already has; list vanished ones."""
    to_embed: list[ScannedFile] = []
    to_thumbnail: list[ScannedFile] = []
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
            if not (same_file and rec.has_thumb):
                to_thumbnail.append(f)
    seen = {f.path for f in scanned}
    vanished = [rec for path, rec in known.items() if path not in seen]
    return IndexPlan(to_embed, unchanged, known_failures, vanished, to_thumbnail)


def index_folder(
    folder: str | os.PathLike[str],
    cache: Cache,
    model: ModelAccess,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    on_batch: Callable[[list[int]], None] | None = None,
    on_replaced: Callable[[list[Rewritten]], None] | None = None,
    options: PipelineOptions | None = None,
    browse_without_model: bool = False,
) -> IndexReport:
    """Bring the cache up to date with ``folder``; the model is loaded only if something needs embedding.

    ``browse_without_model`` (the window): photos the model cannot analyse yet still
    get their thumbnail and capture facts, written as they are decoded and passed to
    ``on_batch`` like embedded ones, so they can be looked at, sorted by name or date
    and previewed — while a first run downloads the model, and when it cannot be had
    at all (then its :class:`ModelLoadError` is raised after that). Without it (the
    command line) a model that cannot be had is said at once.

    ``on_replaced`` hears of photos rewritten in place (:class:`Rewritten`) before the
    cache forgets their old identity: the engine carries their labels over. Told
    first and written second, a run cut in between carries them again the next time.
    """
    options = options or PipelineOptions()
    started = time.monotonic()
    root = resolve_root(folder)
    report = IndexReport(folder=root)
    if model.identity is None and not browse_without_model:
        raise model.problem or ModelLoadError("The CLIP model cannot be loaded.")
    try:
        Reporter("scanning", 0, progress).update(0, force=True)
        ignored: list[str] = []
        scanned = scan_folder(root, cancel, ignored)
        report.ignored = len(ignored)
        model_id = cache.model_id(*model.identity) if model.identity is not None else None
        plan = plan_index(scanned, cache.photos_under(root, model_id))
        report.total, report.unchanged, report.known_failures = len(scanned), plan.unchanged, plan.known_failures
        report.renamed, kept_vectors = _apply_renames(cache, plan)
        report.removed = cache.delete_photos(rec.id for rec in plan.vanished) if plan.vanished else 0
        report.unchanged += kept_vectors  # (a renamed photo that was only browsed is still embedded: indexed)
        _read_missing_facts(cache, root, options, progress, cancel)
        if plan.to_embed:
            pipeline = _Pipeline(cache, report, options, progress, cancel, on_batch, on_replaced)
            embedder = pipeline.model_or_thumbnails(model, plan) if browse_without_model else model.load()
            pipeline.embed_all(plan.to_embed, model_id, embedder)
    except Cancelled:
        report.cancelled = True
    report.seconds = time.monotonic() - started
    log.info("indexed %s: %d new, %d unchanged, %d failed in %.1fs", root, report.indexed, report.unchanged,
             len(report.failed), report.seconds)
    return report


FACTS_BATCH = 500


def _read_missing_facts(cache: Cache, root: str, options: PipelineOptions, progress: ProgressFn | None,
                        cancel: CancelToken | None) -> None:
    """Give photos cached before capture dates were kept their dates: a header read each, nothing re-embedded."""
    undated = cache.photos_without_facts(root)
    if not undated:
        return
    reporter = Reporter("reading dates", len(undated), progress)
    threads = max(1, options.decode_threads or plan_threads(cpu_cores(), "cpu", options.reserve_cores).decode_threads)
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="facts") as pool:
        for start in range(0, len(undated), FACTS_BATCH):
            check_cancel(cancel)
            chunk = undated[start : start + FACTS_BATCH]
            facts: list[CaptureFacts] = list(pool.map(read_capture_facts, [path for _, path in chunk]))
            cache.store_facts({photo_id: f for (photo_id, _), f in zip(chunk, facts, strict=True)})
            reporter.update(start + len(chunk))
    log.info("read capture dates of %d photos cached before dates were kept", len(undated))


def _apply_renames(cache: Cache, plan: IndexPlan) -> tuple[int, int]:
    """A new path whose content matches a vanished photo is that photo renamed: keep its vectors and labels.

    A renamed photo that has no vector for this model yet (it was only browsed) keeps its row and
    thumbnail and is still embedded. Returns (photos renamed, of them those that kept their vectors).
    """
    by_print = {(rec.fingerprint, rec.size): rec for rec in plan.vanished
                if rec.fingerprint and (rec.has_embedding or rec.has_thumb)}
    if not by_print:
        return 0, 0
    renamed = 0
    still_to_embed: list[ScannedFile] = []
    moved_browsable: set[str] = set()
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
        if not rec.has_embedding:
            still_to_embed.append(f)
            moved_browsable.add(f.path)
    plan.to_embed = still_to_embed
    plan.to_thumbnail = [f for f in plan.to_thumbnail if f in still_to_embed and f.path not in moved_browsable]
    return renamed, renamed - len(moved_browsable)


class _Pipeline:
    """One indexing run's decode → (embed) → write pipeline, with what it reports to and where it writes."""

    def __init__(self, cache: Cache, report: IndexReport, options: PipelineOptions, progress: ProgressFn | None,
                 cancel: CancelToken | None, on_batch: Callable[[list[int]], None] | None,
                 on_replaced: Callable[[list[Rewritten]], None] | None = None) -> None:
        self.cache = cache
        self.on_replaced = on_replaced
        self.report = report
        self.options = options
        self.progress = progress
        self.cancel = cancel
        self.on_batch = on_batch
        self._thumbnail_failures: set[str] = set()

    # ---- without the model ----------------------------------------------------------------------
    def model_or_thumbnails(self, model: ModelAccess, plan: IndexPlan) -> Embedder:
        """The model, ready to embed; photos get their thumbnails first wherever it is not there yet.

        A model that must be downloaded loads on a thread of its own while the photos
        get thumbnails (the grid fills during the download); once it is ready, the
        embedding starts (photos thumbnailed meanwhile are decoded again: only a first
        run pays that). A model that cannot be had at all leaves every photo browsable
        and then says why.
        """
        if model.identity is None:
            self.thumbnails(plan.to_thumbnail)
            raise model.problem or ModelLoadError("The CLIP model cannot be loaded.")
        if not model.needs_download:
            try:
                return model.load()
            except ModelLoadError:
                self.thumbnails(plan.to_thumbnail)
                raise
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader") as loader:
            loading = loader.submit(model.load)
            self.thumbnails(plan.to_thumbnail, until=loading)
            embedder = loading.result()  # a failure is raised once every photo has its thumbnail
        plan.to_embed = [f for f in plan.to_embed if f.path not in self._thumbnail_failures]
        return embedder

    def thumbnails(self, files: list[ScannedFile], until: Future | None = None) -> None:
        """Decode ``files`` for their thumbnails and capture facts only (no model); stop when ``until`` (the model
        loading) has succeeded. Progress is reported unless ``until`` is still running: then the download's is."""
        if not files:
            return
        run = resolve_run(self.options, None)
        run = replace(run, decode_threads=self.options.decode_threads or max(1, cpu_cores() - self.options.reserve_cores))
        reporter = Reporter("thumbnails", len(files), self.progress)
        done = 0
        with DecodePool(run.decode_threads, self.options.decode_timeout_s) as pool:
            for batch in _decoded_batches(files, Preprocess(), run, pool):
                if until is not None and until.done() and until.exception() is None:
                    return  # the model is here: embedding takes over
                check_cancel(self.cancel)
                photos = [_new_photo(f, d, None) for f, d in batch if isinstance(d, DecodedPhoto)]
                failures = [(f.path, f.size, f.mtime_ns, d) for f, d in batch if isinstance(d, str)]
                self._write(None, photos, failures)
                self.report.thumbnailed += len(photos)
                self._thumbnail_failures.update(path for path, *_ in failures)
                done += len(batch)
                if until is None or until.done():
                    reporter.update(done)
        check_cancel(self.cancel)

    # ---- with it -----------------------------------------------------------------------------------
    def embed_all(self, files: list[ScannedFile], model_id: int | None, embedder: Embedder) -> None:
        """Decode ahead in a pool, embed in a model thread, write here: all three overlap.

        While the model works on batch N, this thread writes batch N-1 to SQLite
        and the pool decodes batches N+1.., so the model never waits on the disk
        in steady state. Cancelling keeps every batch written so far; the batch
        still in the model is dropped (it is indexed again next time).
        """
        if not files:
            return
        run = resolve_run(self.options, embedder)
        reporter = Reporter("indexing", len(files), self.progress)
        reporter.update(0, force=True)
        done = 0
        pending: tuple[list[Decoded], Future] | None = None
        with torch_threads(run.torch_threads), DecodePool(run.decode_threads, self.options.decode_timeout_s) as pool, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="model") as model_thread:
            for batch in _decoded_batches(files, embedder.prep, run, pool):
                if is_cancelled(self.cancel):
                    break
                future = model_thread.submit(_embed_batch, embedder, batch, run)
                if pending is not None:
                    done += self._store(pending, model_id, reporter, done)
                pending = (batch, future)
            if pending is not None and not is_cancelled(self.cancel):
                done += self._store(pending, model_id, reporter, done)
            reporter.update(done, force=True)
            check_cancel(self.cancel)

    def _store(self, pending: tuple[list[Decoded], Future], model_id: int | None, reporter: Reporter, done: int) -> int:
        """Write one embedded batch in one transaction (in this, the cache's, thread); return its size."""
        batch, future = pending
        embedded: _Embedded = future.result()
        self._write(model_id, embedded.photos, embedded.failures)
        if done == 0:
            reporter.restart_rate(len(batch))  # the first batch pays for model warm-up
        reporter.update(done + len(batch))
        return len(batch)

    def _write(self, model_id: int | None, photos: list[NewPhoto], failures: list[tuple[str, int, int, str]]) -> None:
        if self.on_replaced is not None:
            replaced = self.cache.replaced_contents(photos)
            if replaced:
                self.on_replaced(replaced)
        ids = self.cache.write_indexed(model_id, photos, failures)
        if model_id is not None:
            self.report.indexed += len(photos)
        self.report.failed.extend((path, reason) for path, _, _, reason in failures)
        if self.on_batch is not None and ids:
            self.on_batch(ids)


@dataclass(frozen=True)
class RunPlan:
    """PipelineOptions with every choice made for this machine and embedder."""

    batch_size: int
    decode_threads: int
    torch_threads: int | None  # None: leave torch's setting alone (no torch model)
    decode_ahead_batches: int
    max_pixels: int
    gpu_device: object | None  # the CUDA device when JPEGs are decoded there


def resolve_run(options: PipelineOptions, embedder: Embedder | None) -> RunPlan:
    """Make every run-time choice left open in ``options`` for this machine and ``embedder`` (None: no model)."""
    device = getattr(embedder, "device", None)
    device_type = getattr(device, "type", "cpu")
    plan = plan_threads(cpu_cores(), device_type, options.reserve_cores)
    gpu_device = None
    if device_type == "cuda" and options.gpu_decode is not False:
        from . import gpudecode

        gpu_device = device if gpudecode.available(device) else None
    return RunPlan(
        batch_size=max(1, options.batch_size or getattr(embedder, "batch_size", 16)),
        decode_threads=max(1, options.decode_threads or plan.decode_threads),
        torch_threads=(options.torch_threads or plan.torch_threads) if device is not None else None,
        decode_ahead_batches=max(1, options.decode_ahead_batches),
        max_pixels=options.max_pixels,
        gpu_device=gpu_device,
    )


Decoded = tuple[ScannedFile, "DecodedPhoto | EncodedPhoto | str"]


def _decoded_batches(
    files: list[ScannedFile], prep: Preprocess, run: RunPlan, pool: DecodePool
) -> Iterator[list[Decoded]]:
    """Decoded photos in scan order, in batches, with the pool kept a few batches ahead."""
    window = run.batch_size * run.decode_ahead_batches
    reader = _read_or_reason if run.gpu_device is not None else _decode_or_reason
    pending: deque[tuple[ScannedFile, Future]] = deque()
    todo = iter(files)
    batch: list[Decoded] = []

    def submit_more() -> None:
        while len(pending) < window:
            f = next(todo, None)
            if f is None:
                return
            pending.append((f, pool.submit(reader, f.path, prep, run.max_pixels)))

    submit_more()
    while pending:
        f, future = pending.popleft()
        submit_more()
        batch.append((f, pool.result(future, _too_slow)))
        if len(batch) == run.batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _decode_or_reason(path: str, prep: Preprocess, max_pixels: int) -> DecodedPhoto | str:
    return decode_or_reason(path, prep, max_pixels, decode_photo)


def _too_slow(seconds: float) -> str:
    return f"took longer than {seconds:.0f} s to read; skipped (a damaged or extreme file?)"


def _read_or_reason(path: str, prep: Preprocess, max_pixels: int) -> DecodedPhoto | EncodedPhoto | str:
    """For GPU decoding: a JPEG's bytes (decoded later, in batches, on the GPU) or a CPU decode."""
    from .gpudecode import read_encoded

    return decode_or_reason(path, prep, max_pixels, read_encoded)


@dataclass
class _Embedded:
    photos: list[NewPhoto]
    failures: list[tuple[str, int, int, str]]


def _embed_batch(embedder: Embedder, batch: list[Decoded], run: RunPlan) -> _Embedded:
    """Runs in the model thread: GPU-decode what was only read, then embed every decoded photo."""
    if run.gpu_device is not None:
        batch = _decode_encoded_on_gpu(batch, embedder.prep, run)
    good = [(f, d) for f, d in batch if isinstance(d, DecodedPhoto)]
    failures = [(f.path, f.size, f.mtime_ns, d) for f, d in batch if isinstance(d, str)]
    photos: list[NewPhoto] = []
    if good:
        vectors = embedder.embed_pixels(np.stack([d.pixels for _, d in good]))
        photos = [_new_photo(f, d, v) for (f, d), v in zip(good, vectors, strict=True)]
    return _Embedded(photos, failures)


def _new_photo(f: ScannedFile, d: DecodedPhoto, vector: np.ndarray | None) -> NewPhoto:
    return NewPhoto(f.path, f.size, f.mtime_ns, d.fingerprint, d.width, d.height, d.thumb, vector, d.facts)


def _decode_encoded_on_gpu(batch: list[Decoded], prep: Preprocess, run: RunPlan) -> list[Decoded]:
    from .gpudecode import EncodedPhoto, decode_on_gpu

    encoded = [(i, d) for i, (_, d) in enumerate(batch) if isinstance(d, EncodedPhoto)]
    if not encoded:
        return batch
    decoded = decode_on_gpu([d for _, d in encoded], prep, run.gpu_device, run.max_pixels)
    out = list(batch)
    for (i, _), result in zip(encoded, decoded, strict=True):
        out[i] = (batch[i][0], result)
    return out
