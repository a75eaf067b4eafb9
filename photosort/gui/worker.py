"""The one worker thread that owns the engine: indexing, scoring, model loading, cache writes.

An :class:`~photosort.core.engine.Engine` and its SQLite connection belong to
the thread that made them, so :class:`EngineWorker` creates its engine inside
its own thread and every request reaches it as a queued call. It reports with
signals carrying whole batches (numpy arrays), never one signal per photo.

Some requests must not wait for indexing to finish: *cancel* is a flag the
indexer polls between batches, and *new categories* and *classifier requests*
(switch, label, train, rename, ...) sit in mailboxes that the worker also
empties between indexing batches, so typing categories or labelling photos
re-sorts the grid while a folder is still being indexed. Training requests
coalesce: however many arrive while the worker is busy, it trains once, on
all the labels. Each request to open folders gets a job number and each
library a generation number, so the GUI can drop messages about a library it
no longer shows.

Exports run here too, through the same engine calls as ``photosort export``
(:meth:`Engine.plan_export` and :func:`~photosort.core.export.run_export`);
the plan previewed in the dialog is the very plan that is carried out.
"""

from __future__ import annotations

import errno
import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from ..core.cache import EmbeddingSet
from ..core.config import Settings
from ..core.engine import Engine, SortResult, TrainReport
from ..core.errors import CacheError, ExportError, FolderError, HeadError, ModelLoadError, PhotosortError
from ..core.export import (
    ExportPlan,
    ExportResult,
    ExportStopped,
    UndoResult,
    journal_state,
    pending_journals,
    undo_move,
)
from ..core.heads import MAX_FILE_BYTES, Head
from ..core.indexer import IndexReport, PipelineOptions
from ..core.scan import resolve_root
from ..core.zeroshot import Assignment, Category, assign, zero_shot_probabilities

if TYPE_CHECKING:
    from ..core.model import ClipEncoder

log = logging.getLogger(__name__)

EXPORT_PROGRESS_INTERVAL_S = 0.05  # export progress reaches the GUI at most this often (50k photos: not 50k signals)


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
class HeadState:
    """The classifier now in use (``name`` "" for the typed categories): classes, labels, predictions."""

    name: str
    categories: tuple[Category, ...]
    ids: np.ndarray
    probabilities: np.ndarray
    labels: dict[int, int]  # photo id -> class index
    accuracy: float | None  # cross-validated, from its last training


@dataclass(frozen=True)
class TrainRequest:
    """A queued training (kept as data, not a closure, so that repeated requests can be merged)."""

    name: str


@dataclass(frozen=True)
class HeadTrained:
    """A classifier retrained on all its labels, with new predictions for every photo held."""

    name: str
    ids: np.ndarray
    probabilities: np.ndarray
    report: TrainReport
    seconds: float


@dataclass(frozen=True)
class ExportRequest:
    """The export dialog's choices."""

    destination: str
    mode: str  # "copy", "move" or "link"
    classifier: str  # "" for the typed categories, else a classifier's name
    unsure: str  # "folder" or "skip"
    threshold: float


@dataclass(frozen=True)
class ExportPreview:
    """The plan for a request (what goes where), or why there is none."""

    request: int
    plan: ExportPlan | None
    error: str = ""


@dataclass(frozen=True)
class ExportOutcome:
    """What an export (or finishing an interrupted move) did; ``error`` when it stopped early."""

    plan: ExportPlan | None
    result: ExportResult | None
    error: str = ""


@dataclass(frozen=True)
class UndoOutcome:
    journal: str
    result: UndoResult | None
    error: str = ""


@dataclass(frozen=True)
class JournalInfo:
    """A move export that can still be undone (or, when interrupted, finished)."""

    path: str
    state: str  # see core.export.journal_state
    destination: str
    created: str
    total: int

    def describe(self) -> str:
        """``Move of 308 photos to /dest, 2026-11-23 10:22`` (how many were planned: an interrupted one did fewer)."""
        photos = f"{self.total:,} photo{'s' if self.total != 1 else ''}"
        when = self.created.replace("T", " ")[:16]
        return f"Move of {photos} to {self.destination}" + (f", {when}" if when else "")


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


def describe_journal(path: Path) -> JournalInfo:
    """A journal's state (from the export engine) and, for the user, where it moved how many photos and when."""
    state = journal_state(path)
    header: dict = {}
    try:
        with path.open(encoding="utf-8") as handle:
            first = json.loads(handle.readline() or "{}")
        header = first if isinstance(first, dict) and first.get("op") == "begin" else {}
    except (OSError, ValueError) as exc:
        log.warning("cannot read the header of %s: %s", path, exc)
    return JournalInfo(str(path), state, str(header.get("destination", "")), str(header.get("created", "")),
                       int(header.get("total", 0) or 0))


def unique_head_name(name: str, taken: list[str]) -> str:
    """``name``, or ``name (2)``, ``name (3)``... when a classifier already has it (names match in any case)."""
    folded = {t.casefold() for t in taken}
    candidate, number = name, 2
    while candidate.casefold() in folded:
        candidate, number = f"{name} ({number})", number + 1
    return candidate


def with_labels(assignment: Assignment, ids: np.ndarray, classes: list[str], labels: dict[int, str]) -> Assignment:
    """The user's labels win over predictions: a labelled photo goes to its label's folder, as the grid shows."""
    if not labels:
        return assignment
    index = {c: k for k, c in enumerate(classes)}
    best, score = assignment.best.copy(), assignment.score.copy()
    for row, photo_id in enumerate(ids.tolist()):
        label = index.get(labels.get(photo_id, ""))
        if label is not None:
            best[row], score[row] = label, 1.0
    return Assignment(best, score, assignment.probabilities)


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
    headsListed = Signal(list)  # [HeadSummary]: every stored classifier
    headActivated = Signal(object)  # HeadState
    headTrained = Signal(object)  # HeadTrained
    exportPlanned = Signal(object)  # ExportPreview
    exportProgress = Signal(int, int)  # done, total (export, undo or finishing a move)
    exportFinished = Signal(object)  # ExportOutcome
    undoFinished = Signal(object)  # UndoOutcome
    journalsListed = Signal(list)  # [JournalInfo]: move exports that can be undone or finished

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
        self._requests: deque[Callable[[], None] | TrainRequest] = deque()
        self._running_requests = False
        self._head: Head | None = None
        self._head_categories: tuple[Category, ...] = ()
        self._plans: dict[int, ExportPlan] = {}
        self._export_cancelled = False
        self._progress_sent = 0.0

    # ---- called from the GUI thread (thread-safe) -------------------------------------------
    def request_cancel(self, through_job: int) -> None:
        self._cancelled_through = max(self._cancelled_through, through_job)

    def submit_categories(self, categories: tuple[Category, ...]) -> None:
        with self._mailbox_lock:
            self._pending_categories = tuple(categories)

    def post(self, request: Callable[[], None]) -> None:
        """Queue a classifier request; it runs at the next drain (which also happens between indexing batches)."""
        with self._mailbox_lock:
            self._requests.append(request)

    def want_training(self, name: str) -> None:
        """Queue training ``name`` on all its labels; an earlier training of it still waiting is dropped.

        So many requests make one training, and it still runs before a rename or a
        delete queued after it.
        """
        with self._mailbox_lock:
            for waiting in [r for r in self._requests if isinstance(r, TrainRequest) and r.name == name]:
                self._requests.remove(waiting)
            self._requests.append(TrainRequest(name))

    def request_export_cancel(self) -> None:
        """Stop the export (or undo) after the photo being written: never half a photo."""
        self._export_cancelled = True

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
        self._head, self._head_categories = None, ()
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
        self._head, self._head_categories = None, ()
        self._library.clear()
        log.info("cleared the cache: %s", ", ".join(map(str, deleted)))
        self.cacheCleared.emit([str(p) for p in deleted])

    @Slot()
    def shutdown(self) -> None:
        self._close_engine()
        QThread.currentThread().quit()

    @Slot()
    def drain_requests(self) -> None:
        self._run_requests()

    # ---- exports (slots) -------------------------------------------------------------------
    @Slot(int, object)
    def plan_export(self, request: int, choice: ExportRequest) -> None:
        """Plan an export for the dialog's preview; nothing is written."""
        self._plans.clear()
        try:
            plan = self._plan(choice)
        except Exception as exc:
            self.exportPlanned.emit(ExportPreview(request, None, describe_failure(exc, self._settings, None).message))
            return
        self._plans[request] = plan
        self.exportPlanned.emit(ExportPreview(request, plan))

    @Slot(int)
    def run_planned_export(self, request: int) -> None:
        """Carry out the plan that the dialog previewed, with progress; cancel stops between photos."""
        plan = self._plans.pop(request, None)
        if plan is None:
            self.exportFinished.emit(ExportOutcome(None, None, "The preview is out of date; try again."))
            return
        self._export_cancelled = False
        try:
            result = self._engine_().run_export(plan, progress=self._export_progress,
                                                cancel=lambda: self._export_cancelled)
        except ExportStopped as exc:
            self.exportFinished.emit(ExportOutcome(plan, exc.result, str(exc)))
        except Exception as exc:
            self.exportFinished.emit(ExportOutcome(plan, None, describe_failure(exc, self._settings, None).message))
        else:
            self.exportFinished.emit(ExportOutcome(plan, result))
        self._list_journals()

    @Slot(str)
    def undo_move(self, journal: str) -> None:
        """Put back every photo of a move export (never overwriting), from its journal."""
        self._export_cancelled = False
        try:
            result = undo_move(Path(journal), progress=self._export_progress, cancel=lambda: self._export_cancelled)
        except Exception as exc:
            self.undoFinished.emit(UndoOutcome(journal, None, describe_failure(exc, self._settings, None).message))
        else:
            self.undoFinished.emit(UndoOutcome(journal, result))
        self._list_journals()

    @Slot(str)
    def finish_move(self, journal: str) -> None:
        """Finish a move export that was interrupted (the app was killed, or it was stopped)."""
        self._export_cancelled = False
        try:
            result = self._engine_().finish_move(journal, progress=self._export_progress,
                                                 cancel=lambda: self._export_cancelled)
        except ExportStopped as exc:
            self.exportFinished.emit(ExportOutcome(None, exc.result, str(exc)))
        except Exception as exc:
            self.exportFinished.emit(ExportOutcome(None, None, describe_failure(exc, self._settings, None).message))
        else:
            self.exportFinished.emit(ExportOutcome(None, result))
        self._list_journals()

    @Slot()
    def list_journals(self) -> None:
        self._list_journals()

    @Slot(str)
    def forget_journal(self, journal: str) -> None:
        """Delete a finished move's journal: the move can no longer be undone (the user asked to clear it)."""
        path = Path(journal)
        try:
            if path.parent.resolve() != self._engine_().journal_dir.resolve():
                raise ExportError(f"{path} is not one of photosort's move journals.")
            if journal_state(path) == "interrupted":
                raise ExportError("This move was interrupted: finish it or undo it before clearing it.")
            path.unlink(missing_ok=True)
        except Exception as exc:
            self.failed.emit(describe_failure(exc, self._settings, None))
        self._list_journals()

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
        self._run_requests()  # so do classifier requests (labels, training, switching)
        self.photosAdded.emit(PhotoBatch(generation, ids, list(paths), self._classifier_categories(),
                                         self._score(vectors), replace))

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
        if self._head is None:  # with a classifier in use, typed categories wait until the user goes back to them
            ids = np.asarray(self._library.ids, np.int64)
            self.scoresReady.emit(Scores(categories, ids, self._score(self._library.vectors)))

    def _classifier_categories(self) -> tuple[Category, ...]:
        return self._head_categories if self._head is not None else self._categories

    def _score(self, vectors: np.ndarray) -> np.ndarray:
        """Probabilities (N x C) of photo vectors: the classifier's in use, else zero-shot for the typed categories."""
        if self._head is not None:
            return self._head.probabilities(vectors).astype(np.float32)
        return self._zero_shot(vectors)

    def _zero_shot(self, vectors: np.ndarray) -> np.ndarray:
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


    # ---- classifier requests (run from the mailbox) ----------------------------------------------
    def _run_requests(self) -> None:
        """Run queued classifier requests in order.

        Each request is guarded alone, so one failure (a bad file, a taken name) is
        reported and the rest still run.
        """
        if self._running_requests:
            return
        self._running_requests = True
        try:
            while True:
                with self._mailbox_lock:
                    if not self._requests:
                        return
                    request = self._requests.popleft()
                if isinstance(request, TrainRequest):
                    self._guarded(lambda name=request.name: self.train_head(name))
                else:
                    self._guarded(request)
        finally:
            self._running_requests = False

    def _guarded(self, request: Callable[[], None]) -> None:
        try:
            request()
        except Exception as exc:
            self.failed.emit(describe_failure(exc, self._settings, None))

    def list_heads(self, quiet: bool = False) -> None:
        """Send the stored classifiers; ``quiet`` (at start-up) sends none rather than an error about the model."""
        try:
            summaries = self._engine_().head_summaries()
        except PhotosortError as exc:
            if not quiet:
                raise
            log.info("cannot list the classifiers yet: %s", exc)
            summaries = []
        self.headsListed.emit(summaries)

    def activate_head(self, name: str) -> None:
        """Use a classifier for the grid (or, with "", the typed categories); a refused one falls back to categories.

        A classifier whose label count changed since its last training (the app was
        killed before the retraining) is trained first, so its predictions match its labels.
        """
        engine = self._engine_()
        ids = np.asarray(self._library.ids, np.int64)
        if name:
            try:
                head = engine.load_head(name)
                labelled = len(engine.head_labels(head.name))
                if labelled and head.metrics.get("labels", 0) != labelled:
                    engine.train_head(head.name)
                    head = engine.load_head(head.name)
            except HeadError:
                self._use_typed_categories(ids)
                raise
            self._head = head
            self._head_categories = tuple(Category(c) for c in head.classes)
            index = {c: k for k, c in enumerate(head.classes)}
            labels = {pid: index[c] for pid, c in engine.head_labels(head.name).items() if c in index}
            accuracy = head.metrics.get("cv_accuracy")
            self.headActivated.emit(HeadState(head.name, self._head_categories, ids, self._score(self._library.vectors),
                                              labels, accuracy if isinstance(accuracy, float) else None))
        else:
            self._use_typed_categories(ids)

    def _use_typed_categories(self, ids: np.ndarray) -> None:
        self._head, self._head_categories = None, ()
        self.headActivated.emit(HeadState("", self._categories, ids, self._score(self._library.vectors), {}, None))

    def retrain_head(self, name: str) -> None:
        """Train a classifier made for another model again for this one, from its classes and labels, and use it."""
        self._engine_().train_head(name)
        self.list_heads()
        self.activate_head(name)

    def create_head(self, name: str, categories: tuple[Category, ...]) -> None:
        """A new classifier predicting like these categories until it has labels; it becomes the one in use."""
        head = self._engine_().create_head(name, list(categories))
        self.list_heads()
        self.activate_head(head.name)

    def rename_head(self, old: str, new: str) -> None:
        engine = self._engine_()
        engine.rename_head(old, new)
        self.list_heads()
        if self._head is not None and self._head.name.casefold() == old.casefold():
            self.activate_head(" ".join(new.split()))

    def delete_head(self, name: str) -> None:
        self._engine_().delete_head(name)
        self.list_heads()
        if self._head is not None and self._head.name.casefold() == name.casefold():
            self.activate_head("")

    def export_head(self, name: str, path: str) -> None:
        """Write a classifier to a file; the save dialog already asked before replacing one."""
        target = self._engine_().export_head(name, path, overwrite=True)
        self.notice.emit(f"Saved the classifier '{name}' to {target}. Import it in photosort on another computer.")

    def import_head(self, path: str) -> None:
        """Add a classifier from a file, under a new name if its own is taken, and use it."""
        engine = self._engine_()
        name = unique_head_name(self._name_in_file(path) or "", engine.head_names()) or None
        head = engine.import_head(path, name=name)
        self.list_heads()
        self.activate_head(head.name)
        self.notice.emit(f"Imported the classifier '{head.name}' ({', '.join(head.classes)}).")

    @staticmethod
    def _name_in_file(path: str) -> str | None:
        """The classifier's own name, to pick a free one; a file that cannot be read is left to import_head to explain."""
        try:
            with open(path, "rb") as handle:
                return Head.from_bytes(handle.read(MAX_FILE_BYTES + 1)).name
        except (OSError, PhotosortError):
            return None

    def set_labels(self, name: str, labels: dict[int, str | None]) -> None:
        self._engine_().set_labels(name, labels)

    def train_head(self, name: str) -> None:
        """Fit the classifier to all its labels, then predict every photo held; the GUI gets arrays."""
        engine = self._engine_()
        started = time.perf_counter()
        report = engine.train_head(name)
        head = engine.load_head(name)
        if self._head is not None and self._head.name == head.name:
            self._head = head
        probabilities = head.probabilities(self._library.vectors).astype(np.float32)
        seconds = time.perf_counter() - started
        log.info("trained %s on %d labels in %.2f s", name, report.labels, seconds)
        self.headTrained.emit(HeadTrained(head.name, np.asarray(self._library.ids, np.int64), probabilities,
                                          report, seconds))
        self.list_heads()

    # ---- exports --------------------------------------------------------------------------------
    def _plan(self, choice: ExportRequest) -> ExportPlan:
        if not self._roots or not len(self._library):
            raise ExportError("Open a folder of photos first.")
        engine = self._engine_()
        result = self._sort_result(choice.classifier, choice.threshold)
        plan = engine.plan_export(self._roots[0], result, choice.destination, mode=choice.mode, unsure=choice.unsure)
        for root in self._roots[1:]:  # the engine lists the first folder's unreadable photos; add the others'
            plan.skipped.extend((Path(path), f"could not be read: {error}") for path, error in engine.failures(root))
        return plan

    def _sort_result(self, classifier: str, threshold: float) -> SortResult:
        """Every photo held, sorted as the grid shows it: by a classifier (labels winning) or the typed categories."""
        engine = self._engine_()
        ids = np.asarray(self._library.ids, np.int64)
        vectors = self._library.vectors
        photos = EmbeddingSet(ids, list(self._library.paths), vectors)
        if classifier:
            head = engine.load_head(classifier)
            assignment = with_labels(assign(head.probabilities(vectors), threshold), ids, head.classes,
                                     engine.head_labels(head.name))
            return SortResult(list(head.classes), photos, assignment)
        if not self._categories:
            raise ExportError("Type some categories (or choose a classifier) to sort the photos into folders.")
        return SortResult([c.name for c in self._categories], photos, assign(self._zero_shot(vectors), threshold))

    def _export_progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done in (0, total) or now - self._progress_sent >= EXPORT_PROGRESS_INTERVAL_S:
            self._progress_sent = now
            self.exportProgress.emit(done, total)

    def _list_journals(self) -> None:
        try:
            journals = [describe_journal(p) for p in pending_journals(self._engine_().journal_dir)]
        except Exception as exc:
            self.failed.emit(describe_failure(exc, self._settings, None))
            return
        self.journalsListed.emit(journals)


class WorkerClient(QObject):
    """The GUI's handle on the engine worker: owns its thread, numbers the jobs, sends requests."""

    _open = Signal(int, int, list, bool)
    _categories = Signal()
    _settings = Signal(object)
    _clear = Signal()
    _warm = Signal()
    _shutdown = Signal()
    _drain = Signal()
    _plan = Signal(int, object)
    _run_export = Signal(int)
    _undo = Signal(str)
    _finish = Signal(str)
    _journals = Signal()
    _forget = Signal(str)

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
        self._drain.connect(self.worker.drain_requests)
        self._plan.connect(self.worker.plan_export)
        self._run_export.connect(self.worker.run_planned_export)
        self._undo.connect(self.worker.undo_move)
        self._finish.connect(self.worker.finish_move)
        self._journals.connect(self.worker.list_journals)
        self._forget.connect(self.worker.forget_journal)
        self._job = 0
        self._generation = 0
        self._export_request = 0
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

    # ---- classifiers ----------------------------------------------------------------------------
    def _post(self, request: Callable[[], None]) -> None:
        self.worker.post(request)
        self._drain.emit()

    def list_heads(self, quiet: bool = False) -> None:
        self._post(lambda: self.worker.list_heads(quiet))

    def retrain_head(self, name: str) -> None:
        self._post(lambda: self.worker.retrain_head(name))

    def activate_head(self, name: str) -> None:
        self._post(lambda: self.worker.activate_head(name))

    def create_head(self, name: str, categories: tuple[Category, ...]) -> None:
        self._post(lambda: self.worker.create_head(name, categories))

    def rename_head(self, old: str, new: str) -> None:
        self._post(lambda: self.worker.rename_head(old, new))

    def delete_head(self, name: str) -> None:
        self._post(lambda: self.worker.delete_head(name))

    def export_head(self, name: str, path: str) -> None:
        self._post(lambda: self.worker.export_head(name, path))

    def import_head(self, path: str) -> None:
        self._post(lambda: self.worker.import_head(path))

    def set_labels(self, name: str, labels: dict[int, str | None]) -> None:
        labels = dict(labels)
        self._post(lambda: self.worker.set_labels(name, labels))

    def train_head(self, name: str) -> None:
        self.worker.want_training(name)
        self._drain.emit()

    # ---- exports ---------------------------------------------------------------------------------
    def preview_export(self, choice: ExportRequest) -> int:
        """Ask for the plan of an export; returns the request number its preview will carry."""
        self._export_request += 1
        self._plan.emit(self._export_request, choice)
        return self._export_request

    def run_export(self, request: int) -> None:
        self._run_export.emit(request)

    def cancel_export(self) -> None:
        self.worker.request_export_cancel()

    def undo_move(self, journal: str) -> None:
        self._undo.emit(journal)

    def finish_move(self, journal: str) -> None:
        self._finish.emit(journal)

    def list_journals(self) -> None:
        self._journals.emit()

    def forget_journal(self, journal: str) -> None:
        self._forget.emit(journal)

    def shutdown(self) -> None:
        """Stop after the current batch (or photo being exported), close the engine in its thread, and wait."""
        if not self.thread.isRunning():
            return
        self.cancel()
        self.worker.request_export_cancel()
        self._shutdown.emit()
        self.thread.wait()
