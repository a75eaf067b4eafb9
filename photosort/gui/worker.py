"""The one worker thread that owns the engine: indexing, scoring, model loading, cache writes.

An :class:`~photosort.core.engine.Engine` and its SQLite connection belong to
the thread that made them, so :class:`EngineWorker` creates its engine inside
its own thread and every request reaches it as a queued call. It reports with
signals carrying whole batches (numpy arrays), never one signal per photo.

Two requests must not wait for indexing to finish: *cancel* is a flag the
indexer polls between batches, and *new categories* sit in a mailbox that the
worker also empties between indexing batches, so typing categories re-sorts
the grid while a folder is still being indexed. Each request to open folders
gets a job number and each library a generation number, so the GUI can drop
messages about a library it no longer shows.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from ..core.cache import EmbeddingSet
from ..core.config import Settings
from ..core.engine import Engine
from ..core.errors import CacheError, FolderError, ModelLoadError, PhotosortError
from ..core.indexer import IndexReport, PipelineOptions
from ..core.scan import resolve_root
from ..core.zeroshot import Category, zero_shot_probabilities

if TYPE_CHECKING:
    from ..core.model import ClipEncoder

log = logging.getLogger(__name__)


# ---- messages to the GUI ---------------------------------------------------------------------
@dataclass(frozen=True)
class PhotoBatch:
    """Photos for the grid, with their probabilities for ``categories`` (N x C; C may be 0)."""

    generation: int
    ids: np.ndarray
    paths: list[str]
    categories: tuple[Category, ...]
    probabilities: np.ndarray
    replace: bool = False  # the whole library (after renames or removals), not additions


@dataclass(frozen=True)
class Scores:
    """Probabilities of every photo the worker holds, for newly typed categories."""

    categories: tuple[Category, ...]
    ids: np.ndarray
    probabilities: np.ndarray


@dataclass(frozen=True)
class Failure:
    """Something the user must act on. ``job`` is the open-folders job it ended, if any."""

    kind: str  # "model", "folder", "cache", "disk" or "error"
    message: str
    job: int | None = None


@dataclass(frozen=True)
class JobResult:
    job: int
    generation: int
    reports: tuple[IndexReport, ...]
    cancelled: bool

    @property
    def indexed(self) -> int:
        return sum(r.indexed for r in self.reports)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.reports)


# ---- helpers -----------------------------------------------------------------------------------
def delete_cache_files(db_path: Path) -> list[Path]:
    """Delete the cache database and its companions (``photosort.db*``) and nothing else."""
    deleted = []
    for path in sorted(db_path.parent.glob(db_path.name + "*")):
        if path.is_file() and path.name.startswith(db_path.name):
            path.unlink()
            deleted.append(path)
    return deleted


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return isinstance(exc, sqlite3.Error) and "full" in str(exc).lower()


def describe_failure(exc: BaseException, settings: Settings, job: int | None) -> Failure:
    """A message the user can act on, for any exception that ended a request."""
    cache_dir = settings.cache_path.parent
    if isinstance(exc, ModelLoadError):
        return Failure("model", f"{exc} You can choose another model in Settings.", job)
    if isinstance(exc, FolderError):
        return Failure("folder", str(exc), job)
    if is_disk_full(exc):
        return Failure("disk", f"The disk holding the cache ({cache_dir}) is full. Free some space, or set "
                               "PHOTOSORT_CACHE_DIR to a folder on another disk, then open the folder again. "
                               "Photos indexed so far are kept.", job)
    if isinstance(exc, CacheError):
        return Failure("cache", str(exc), job)
    if isinstance(exc, PhotosortError):
        return Failure("error", str(exc), job)
    if isinstance(exc, sqlite3.Error):
        return Failure("cache", f"The cache database in {cache_dir} failed ({exc}). Check that the disk is "
                                "writable, or clear the cache in Settings.", job)
    log.error("unexpected error in the worker", exc_info=exc)
    return Failure("error", f"Something went wrong: {type(exc).__name__}: {exc}. The details are in the log; "
                            "please report it.", job)


class LibraryVectors:
    """The worker's copy of the open photos' vectors, so new categories are scored without SQLite."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.paths: list[str] = []
        self._row: dict[int, int] = {}
        self._vectors = np.zeros((0, 0), np.float32)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors[: len(self.ids)]

    def clear(self) -> None:
        self.ids, self.paths, self._row = [], [], {}
        self._vectors = np.zeros((0, 0), np.float32)

    def upsert(self, ids: np.ndarray, paths: list[str], vectors: np.ndarray) -> None:
        """Add photos, or replace the vector and path of photos already held (a changed file)."""
        if not len(ids):
            return
        if self._vectors.shape[1] != vectors.shape[1]:
            self._vectors = np.zeros((0, vectors.shape[1]), np.float32)
        self._reserve(len(self.ids) + len(ids))
        for photo_id, path, vector in zip(ids.tolist(), paths, vectors, strict=True):
            row = self._row.get(photo_id)
            if row is None:
                row = self._row[photo_id] = len(self.ids)
                self.ids.append(photo_id)
                self.paths.append(path)
            else:
                self.paths[row] = path
            self._vectors[row] = vector

    def _reserve(self, n: int) -> None:
        if n > len(self._vectors):
            grown = np.zeros((max(n, 2 * len(self._vectors), 256), self._vectors.shape[1]), np.float32)
            grown[: len(self.ids)] = self.vectors
            self._vectors = grown


class _AnnouncingEngine(Engine):
    """An Engine that says when the first (slow) model load starts and ends, for the status bar."""

    def __init__(self, settings: Settings, options: PipelineOptions | None, announce: Callable[[bool], None]) -> None:
        super().__init__(settings, options)
        self._announce = announce
        self._model_ready = False

    def encoder(self) -> ClipEncoder:
        if self._model_ready:
            return super().encoder()
        self._announce(True)
        try:
            encoder = super().encoder()
        finally:
            self._announce(False)
        self._model_ready = True
        return encoder


# ---- the worker ----------------------------------------------------------------------------------
class EngineWorker(QObject):
    """Owns the Engine in its own thread; every slot runs there, every signal reaches the GUI queued."""

    started = Signal(int, int, list)  # job, generation, resolved folders
    progress = Signal(int, object)  # generation, core.progress.Progress
    photosAdded = Signal(object)  # PhotoBatch
    scoresReady = Signal(object)  # Scores
    problemsFound = Signal(int, list)  # generation, [(path, reason)] for the whole library
    finished = Signal(object)  # JobResult
    cancelled = Signal(object)  # JobResult
    failed = Signal(object)  # Failure
    status = Signal(str)  # what slow thing happens now ("Loading the model…"), "" when done
    notice = Signal(str)  # something worth telling that is not an error
    cacheCleared = Signal(list)  # deleted file paths

    def __init__(self, settings: Settings, options: PipelineOptions | None, db_lock: threading.Lock) -> None:
        super().__init__()
        self._settings = settings
        self._options = options
        self._db_lock = db_lock
        self._engine: Engine | None = None
        self._cancelled_through = 0  # every job numbered up to this one is cancelled
        self._mailbox_lock = threading.Lock()
        self._pending_categories: tuple[Category, ...] | None = None
        self._categories: tuple[Category, ...] = ()
        self._class_vectors: np.ndarray | None = None
        self._logit_scale = 100.0
        self._library = LibraryVectors()
        self._roots: list[str] = []
        self._generation = 0
        self._notices_sent: set[str] = set()

    # ---- called from the GUI thread (thread-safe) -------------------------------------------
    def request_cancel(self, through_job: int) -> None:
        self._cancelled_through = max(self._cancelled_through, through_job)

    def submit_categories(self, categories: tuple[Category, ...]) -> None:
        with self._mailbox_lock:
            self._pending_categories = tuple(categories)

    # ---- slots (worker thread) -----------------------------------------------------------------
    @Slot()
    def warm_up(self) -> None:
        """Import torch now, while the user looks at the window, so the first folder starts sooner."""
        try:
            import photosort.core.model  # noqa: F401
        except ImportError as exc:
            log.warning("cannot import the model code: %s", exc)

    @Slot(int, int, list, bool)
    def open_folders(self, job: int, generation: int, folders: list[str], replace: bool) -> None:
        if replace or generation != self._generation:
            self._library.clear()
            self._roots = []
        self._generation = generation
        roots = [r for r in (self._resolve(f, job) for f in folders) if r is not None and r not in self._roots]
        self._roots += roots
        self.started.emit(job, generation, roots)
        try:
            result = self._open_and_index(job, generation, roots)
        except Exception as exc:  # every failure becomes a message in the window
            self.failed.emit(describe_failure(exc, self._settings, job))
            return
        finally:
            self._send_notices()
        (self.cancelled if result.cancelled else self.finished).emit(result)

    @Slot()
    def process_categories(self) -> None:
        try:
            self._drain_categories()
        except Exception as exc:
            self.failed.emit(describe_failure(exc, self._settings, None))

    @Slot(object)
    def apply_settings(self, settings: Settings) -> None:
        """Use another model, device or precision from now on; the GUI re-opens its folders after."""
        self._close_engine()
        self._settings = settings
        self._class_vectors = None
        self._library.clear()

    @Slot()
    def clear_cache(self) -> None:
        try:
            with self._db_lock:
                self._close_engine()
                deleted = delete_cache_files(self._settings.cache_path)
        except OSError as exc:
            self.failed.emit(Failure("cache", f"Could not delete the cache {self._settings.cache_path}: "
                                              f"{exc.strerror}. Close other photosort windows and try again."))
            return
        self._class_vectors = None
        self._library.clear()
        log.info("cleared the cache: %s", ", ".join(map(str, deleted)))
        self.cacheCleared.emit([str(p) for p in deleted])

    @Slot()
    def shutdown(self) -> None:
        self._close_engine()
        QThread.currentThread().quit()

    # ---- work ----------------------------------------------------------------------------------
    def _engine_(self) -> Engine:
        if self._engine is None:
            self._engine = _AnnouncingEngine(self._settings, self._options, self._announce_model_load)
        return self._engine

    def _close_engine(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def _announce_model_load(self, loading: bool) -> None:
        self.status.emit(f"Loading the model {Path(self._settings.model).name}…" if loading else "")

    def _resolve(self, folder: str, job: int) -> str | None:
        try:
            return resolve_root(folder)
        except FolderError as exc:
            self.failed.emit(Failure("folder", str(exc), None))
            return None

    def _open_and_index(self, job: int, generation: int, roots: list[str]) -> JobResult:
        """Show what the cache has at once, then index what changed; stop between batches on cancel."""
        engine = self._engine_()

        def cancel() -> bool:
            return self._cancelled_through >= job

        for root in roots:
            self._emit_cached(generation, engine.embeddings(root))
        self._emit_problems(generation)
        reports: list[IndexReport] = []
        for root in roots:
            if cancel():
                break
            report = engine.index(root, progress=lambda p: self.progress.emit(generation, p), cancel=cancel,
                                  on_batch=lambda ids: self._on_batch(generation, ids))
            reports.append(report)
            if report.removed or report.renamed:
                self._reload_library(generation)
            self._emit_problems(generation)
            if report.cancelled:
                break
        cancelled = cancel() or any(r.cancelled for r in reports)
        return JobResult(job, generation, tuple(reports), cancelled)

    def _emit_cached(self, generation: int, photos: EmbeddingSet) -> None:
        self._library.upsert(photos.ids, photos.paths, photos.vectors)
        self._emit_batch(generation, photos.ids, photos.paths, photos.vectors)

    def _on_batch(self, generation: int, ids: list[int]) -> None:
        """One committed indexing batch: read its vectors back and send it to the grid."""
        engine = self._engine_()
        _, dim = engine.identity
        vectors = engine.cache.vectors_for_ids(engine.model_id(), ids, dim)
        paths = engine.cache.paths_for_ids(ids)
        found = [i for i in ids if i in vectors and i in paths]
        if not found:
            return
        batch_ids = np.asarray(found, np.int64)
        matrix = np.stack([vectors[i] for i in found])
        batch_paths = [paths[i] for i in found]
        self._library.upsert(batch_ids, batch_paths, matrix)
        self._emit_batch(generation, batch_ids, batch_paths, matrix)

    def _emit_batch(self, generation: int, ids: np.ndarray, paths: list[str], vectors: np.ndarray,
                    replace: bool = False) -> None:
        self._drain_categories()  # categories typed meanwhile apply before this batch is scored
        self.photosAdded.emit(PhotoBatch(generation, ids, list(paths), self._categories, self._score(vectors), replace))

    def _reload_library(self, generation: int) -> None:
        """After renames or removals on disk, send the whole library again."""
        engine = self._engine_()
        self._library.clear()
        for root in self._roots:
            photos = engine.embeddings(root)
            self._library.upsert(photos.ids, photos.paths, photos.vectors)
        ids = np.asarray(self._library.ids, np.int64)
        self._emit_batch(generation, ids, self._library.paths, self._library.vectors, replace=True)

    def _emit_problems(self, generation: int) -> None:
        engine = self._engine_()
        problems = [p for root in self._roots for p in engine.failures(root)]
        self.problemsFound.emit(generation, problems)

    # ---- categories --------------------------------------------------------------------------
    def _drain_categories(self) -> None:
        with self._mailbox_lock:
            categories, self._pending_categories = self._pending_categories, None
        if categories is None or categories == self._categories:
            return
        self._categories = categories
        self._class_vectors = None
        ids = np.asarray(self._library.ids, np.int64)
        self.scoresReady.emit(Scores(categories, ids, self._score(self._library.vectors)))

    def _score(self, vectors: np.ndarray) -> np.ndarray:
        """Zero-shot probabilities (N x C) of photo vectors for the current categories."""
        if not self._categories or not len(vectors):
            return np.zeros((len(vectors), len(self._categories)), np.float32)
        if self._class_vectors is None:
            engine = self._engine_()
            self._class_vectors = engine.class_vectors(list(self._categories))
            self._logit_scale = engine.logit_scale()
        return zero_shot_probabilities(vectors, self._class_vectors, self._logit_scale).astype(np.float32)

    def _send_notices(self) -> None:
        if self._engine is None:
            return
        for text in self._engine.notices():
            if text not in self._notices_sent:
                self._notices_sent.add(text)
                self.notice.emit(text)


class WorkerClient(QObject):
    """The GUI's handle on the engine worker: owns its thread, numbers the jobs, sends requests."""

    _open = Signal(int, int, list, bool)
    _categories = Signal()
    _settings = Signal(object)
    _clear = Signal()
    _warm = Signal()
    _shutdown = Signal()

    def __init__(self, settings: Settings, options: PipelineOptions | None, db_lock: threading.Lock,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.thread = QThread()
        self.thread.setObjectName("photosort-engine")
        self.worker = EngineWorker(settings, options, db_lock)
        self.worker.moveToThread(self.thread)
        self._open.connect(self.worker.open_folders)
        self._categories.connect(self.worker.process_categories)
        self._settings.connect(self.worker.apply_settings)
        self._clear.connect(self.worker.clear_cache)
        self._warm.connect(self.worker.warm_up)
        self._shutdown.connect(self.worker.shutdown)
        self._job = 0
        self._generation = 0
        self.thread.start()

    @property
    def generation(self) -> int:
        return self._generation

    def open_folders(self, folders: list[str], replace: bool = True) -> int:
        """Queue opening ``folders`` (a new library when ``replace``); returns the job number."""
        if replace:
            self.cancel()
            self._generation += 1
        self._job += 1
        self._open.emit(self._job, self._generation, list(folders), replace)
        return self._job

    def cancel(self) -> None:
        self.worker.request_cancel(self._job)

    def set_categories(self, categories: tuple[Category, ...]) -> None:
        self.worker.submit_categories(categories)
        self._categories.emit()

    def apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        self.cancel()
        self._settings.emit(settings)

    def clear_cache(self) -> None:
        self.cancel()
        self._clear.emit()

    def warm_up(self) -> None:
        self._warm.emit()

    def shutdown(self) -> None:
        """Stop after the current batch, close the engine in its thread, and wait for the thread."""
        if not self.thread.isRunning():
            return
        self.cancel()
        self._shutdown.emit()
        self.thread.wait()
