"""The one worker thread that owns the engine and the open library: indexing, scoring, model, database writes.

An :class:`~photosort.core.engine.Engine` and its SQLite connections belong to
the thread that made them, so :class:`EngineWorker` creates its engine inside
its own thread and every request reaches it as a queued call. Everything it
answers comes from the core's :class:`~photosort.core.library.Library` (the
same object ``photosort sort`` and ``export`` use), so the window and the CLI
cannot disagree. It reports with signals carrying whole batches (numpy
arrays), never one signal per photo.

Some requests must not wait for indexing to finish: *cancel* is a
:class:`~photosort.core.progress.CancelToken` the indexer polls between batches, and *new categories* and *classifier requests*
(switch, label, train, rename, ...) sit in mailboxes that the worker also
empties between indexing batches, so typing categories or labelling photos
re-sorts the grid while a folder is still being indexed. Training requests
coalesce: however many arrive while the worker is busy, it trains once, on
all the labels. Each request to open folders gets a job number and each
library a generation number, so the GUI can drop messages about a library it
no longer shows.

Exports run here too, through the same calls as ``photosort export``
(:meth:`Library.plan_export` and :meth:`Engine.run_export`); the plan
previewed in the dialog is the very plan that is carried out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from ..core.cache import EmbeddingSet
from ..core.classifier import Classifier
from ..core.classifiers import TrainReport, read_classifier_file
from ..core.config import Settings
from ..core.engine import Engine
from ..core.errors import Action, ClassifierError, ExportError, FolderError, PhotosortError, user_message
from ..core.export import (
    ExportPlan,
    ExportResult,
    ExportStopped,
    UndoResult,
    journal_info,
    journal_state,
    pending_journals,
)
from ..core.indexer import IndexReport, PipelineOptions
from ..core.library import Library, Sorting
from ..core.progress import CancelToken
from ..core.zeroshot import Category

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
    labels: dict[int, int] = field(default_factory=dict)  # photo id -> class index, for the classifier in use


@dataclass(frozen=True)
class Scores:
    """Probabilities of every photo the worker holds, for newly typed categories."""

    categories: tuple[Category, ...]
    ids: np.ndarray
    probabilities: np.ndarray


@dataclass(frozen=True)
class Failure:
    """Something the user must act on (core.errors.user_message's text and action). ``job``: the job it ended."""

    action: Action
    message: str
    job: int | None = None

    @classmethod
    def of(cls, exc: BaseException, job: int | None = None) -> Failure:
        message = user_message(exc)
        if not message.expected:
            log.error("unexpected error in the worker", exc_info=exc)
        return cls(message.action, message.text, job)


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


# ---- the worker ----------------------------------------------------------------------------------
class EngineWorker(QObject):
    """Owns the Engine and the open Library in its own thread; every slot runs there, every signal reaches the GUI queued."""

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
    headsListed = Signal(list)  # [ClassifierSummary]: every stored classifier
    headActivated = Signal(object)  # HeadState
    headTrained = Signal(object)  # HeadTrained
    exportPlanned = Signal(object)  # ExportPreview
    exportProgress = Signal(object)  # core.progress.Progress (export, undo or finishing a move; throttled by the core)
    exportFinished = Signal(object)  # ExportOutcome
    undoFinished = Signal(object)  # UndoOutcome
    journalsListed = Signal(list)  # [JournalInfo]: move exports that can be undone or finished
    categoriesLoaded = Signal(str)  # the category text saved in the user's library

    def __init__(self, settings: Settings, options: PipelineOptions | None, db_lock: threading.Lock) -> None:
        super().__init__()
        self._settings = settings
        self._options = options
        self._db_lock = db_lock
        self._engine: Engine | None = None
        self._mailbox_lock = threading.Lock()
        self._pending_categories: tuple[Category, ...] | None = None
        self._categories: tuple[Category, ...] = ()
        self._library: Library | None = None
        self._generation = 0
        self._notices_sent: set[str] = set()
        self._requests: deque[Callable[[], None] | TrainRequest] = deque()
        self._running_requests = False
        self._classifier = ""  # the classifier sorting the grid ("" : the typed categories)
        self._plans: dict[int, ExportPlan] = {}
        self._export_token = CancelToken()

    # ---- called from the GUI thread (thread-safe) -------------------------------------------
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
        self._export_token.cancel()

    # ---- slots (worker thread) -----------------------------------------------------------------
    @Slot()
    def warm_up(self) -> None:
        """Import torch now, while the user looks at the window, so the first folder starts sooner."""
        try:
            import photosort.core.model  # noqa: F401
        except ImportError as exc:
            log.warning("cannot import the model code: %s", exc)

    @Slot(int, int, list, bool, object)
    def open_folders(self, job: int, generation: int, folders: list[str], replace: bool, cancel: CancelToken) -> None:
        try:
            if replace or generation != self._generation or self._library is None:
                self._library = Library(self._engine_())
            self._generation = generation
            roots = [r for r in (self._add_folder(f) for f in folders) if r is not None]
            self.started.emit(job, generation, roots)
            result = self._index(job, generation, roots, cancel)
        except Exception as exc:  # every failure becomes a message in the window
            self.failed.emit(Failure.of(exc, job))
            return
        finally:
            self._send_notices()
        (self.cancelled if result.cancelled else self.finished).emit(result)

    @Slot()
    def process_categories(self) -> None:
        try:
            self._drain_categories()
        except Exception as exc:
            self.failed.emit(Failure.of(exc))

    @Slot(object)
    def apply_settings(self, settings: Settings) -> None:
        """Use another model, device or precision from now on; the GUI re-opens its folders after."""
        self._close_engine()
        self._settings = settings
        self._classifier, self._library = "", None

    @Slot()
    def clear_cache(self) -> None:
        """Delete the derived data only; the user's classifiers and labels stay in library.db."""
        try:
            with self._db_lock:
                deleted = self._engine_().clear_cache()
        except Exception as exc:
            self.failed.emit(Failure.of(exc))
            return
        self._library = None
        log.info("cleared the cache: %s", ", ".join(map(str, deleted)))
        self.cacheCleared.emit([str(p) for p in deleted])

    @Slot()
    def load_categories(self) -> None:
        """Send the category text the user typed last time (kept in library.db, not in a settings file)."""
        try:
            self.categoriesLoaded.emit(self._engine_().user.category_set() or "")
        except Exception as exc:
            self.failed.emit(Failure.of(exc))

    @Slot(str)
    def save_categories(self, text: str) -> None:
        try:
            self._engine_().user.save_category_set(text)
        except Exception as exc:
            self.failed.emit(Failure.of(exc))

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
            self.exportPlanned.emit(ExportPreview(request, None, Failure.of(exc).message))
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
        self._export_token = token = CancelToken()
        try:
            result = self._engine_().run_export(plan, progress=self.exportProgress.emit, cancel=token)
        except ExportStopped as exc:
            self.exportFinished.emit(ExportOutcome(plan, exc.result, str(exc)))
        except Exception as exc:
            self.exportFinished.emit(ExportOutcome(plan, None, Failure.of(exc).message))
        else:
            self.exportFinished.emit(ExportOutcome(plan, result))
        self._list_journals()

    @Slot(str)
    def undo_move(self, journal: str) -> None:
        """Put back every photo of a move export (never overwriting), from its journal."""
        self._export_token = token = CancelToken()
        try:
            result = self._engine_().undo_move(journal, progress=self.exportProgress.emit, cancel=token)
        except Exception as exc:
            self.undoFinished.emit(UndoOutcome(journal, None, Failure.of(exc).message))
        else:
            self.undoFinished.emit(UndoOutcome(journal, result))
        self._list_journals()

    @Slot(str)
    def finish_move(self, journal: str) -> None:
        """Finish a move export that was interrupted (the app was killed, or it was stopped)."""
        self._export_token = token = CancelToken()
        try:
            result = self._engine_().finish_move(journal, progress=self.exportProgress.emit, cancel=token)
        except ExportStopped as exc:
            self.exportFinished.emit(ExportOutcome(None, exc.result, str(exc)))
        except Exception as exc:
            self.exportFinished.emit(ExportOutcome(None, None, Failure.of(exc).message))
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
            if path.parent.resolve() != self._settings.journal_dir.resolve():
                raise ExportError(f"{path} is not one of photosort's move journals.")
            if journal_state(path) == "interrupted":
                raise ExportError("This move was interrupted: finish it or undo it before clearing it.")
            path.unlink(missing_ok=True)
        except Exception as exc:
            self.failed.emit(Failure.of(exc))
        self._list_journals()

    # ---- work ----------------------------------------------------------------------------------
    def _engine_(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(self._settings, self._options, on_model_load=self._announce_model_load)
        return self._engine

    def _library_(self) -> Library:
        if self._library is None:
            self._library = Library(self._engine_())
        return self._library

    def _close_engine(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def _announce_model_load(self, loading: bool) -> None:
        self.status.emit(f"Loading the model {Path(self._settings.model).name}…" if loading else "")

    def _add_folder(self, folder: str) -> str | None:
        """Open one folder in the library (its cached photos reach the grid at once); None when it cannot be."""
        library = self._library_()
        before = len(library)
        try:
            root = library.add_folder(folder)
        except FolderError as exc:
            self.failed.emit(Failure.of(exc))
            return None
        photos = library.photos
        if len(photos) > before:
            self._emit_batch(self._generation, _rows(photos, before))
        return root

    def _index(self, job: int, generation: int, roots: list[str], cancel: CancelToken) -> JobResult:
        """Index what changed in each folder; stop between batches on cancel."""
        engine = self._engine_()
        self._emit_problems(generation)
        reports: list[IndexReport] = []
        for root in roots:
            if cancel.cancelled:
                break
            report = engine.index(root, progress=lambda p: self.progress.emit(generation, p), cancel=cancel,
                                  on_batch=lambda ids: self._on_batch(generation, ids))
            reports.append(report)
            if report.removed or report.renamed:
                self._reload_library(generation)
            self._emit_problems(generation)
            if report.cancelled:
                break
        cancelled = cancel.cancelled or any(r.cancelled for r in reports)
        return JobResult(job, generation, tuple(reports), cancelled)

    def _on_batch(self, generation: int, ids: list[int]) -> None:
        """One committed indexing batch: read it back into the library and send it to the grid."""
        batch = self._library_().add_indexed(ids)
        if len(batch):
            self._emit_batch(generation, batch)

    def _emit_batch(self, generation: int, photos: EmbeddingSet, replace: bool = False) -> None:
        self._drain_categories()  # categories typed meanwhile apply before this batch is scored
        self._run_requests()  # so do classifier requests (labels, training, switching)
        scores = self._library_().scores(self._sorting(), photos)
        labels = {int(pid): int(k) for pid, k in zip(photos.ids.tolist(), scores.labels.tolist(), strict=True) if k >= 0}
        self.photosAdded.emit(PhotoBatch(generation, photos.ids, list(photos.paths), scores.categories,
                                         scores.probabilities, replace, labels))

    def _reload_library(self, generation: int) -> None:
        """After renames or removals on disk, send the whole library again."""
        library = self._library_()
        library.reload()
        self._emit_batch(generation, library.photos, replace=True)

    def _emit_problems(self, generation: int) -> None:
        self.problemsFound.emit(generation, self._library_().failures())

    def _send_notices(self) -> None:
        if self._engine is None:
            return
        for text in self._engine.notices():
            if text not in self._notices_sent:
                self._notices_sent.add(text)
                self.notice.emit(text)

    # ---- categories --------------------------------------------------------------------------
    def _sorting(self, classifier: str | None = None) -> Sorting:
        name = self._classifier if classifier is None else classifier
        return Sorting.by_classifier(name) if name else Sorting.by_categories(self._categories)

    def _drain_categories(self) -> None:
        with self._mailbox_lock:
            categories, self._pending_categories = self._pending_categories, None
        if categories is None or categories == self._categories:
            return
        self._categories = categories
        if not self._classifier:  # with a classifier in use, typed categories wait until the user goes back to them
            library = self._library_()
            scores = library.scores(self._sorting())
            self.scoresReady.emit(Scores(categories, library.ids, scores.probabilities))

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
            self.failed.emit(Failure.of(exc))

    def list_heads(self, quiet: bool = False) -> None:
        """Send the stored classifiers; ``quiet`` (at start-up) sends none rather than an error about the model."""
        try:
            summaries = self._engine_().classifiers.summaries()
        except PhotosortError as exc:
            if not quiet:
                raise
            log.info("cannot list the classifiers yet: %s", exc)
            summaries = []
        self.headsListed.emit(summaries)

    def activate_head(self, name: str) -> None:
        """Use a classifier for the grid (or, with "", the typed categories); a refused one falls back to categories.

        A classifier whose labels changed since its last training (the app was killed
        before the retraining) is trained first, so its predictions match its labels.
        """
        library = self._library_()
        try:
            scores = library.scores(self._sorting(name))
        except ClassifierError:
            self._use_typed_categories()
            raise
        self._classifier = scores.classifier.name if scores.classifier is not None else ""
        labels = {int(pid): int(k) for pid, k in zip(library.ids.tolist(), scores.labels.tolist(), strict=True) if k >= 0}
        accuracy = scores.classifier.metrics.get("cv_accuracy") if scores.classifier is not None else None
        self.headActivated.emit(HeadState(self._classifier, scores.categories, library.ids, scores.probabilities,
                                          labels, accuracy if isinstance(accuracy, float) else None))

    def _use_typed_categories(self) -> None:
        self._classifier = ""
        library = self._library_()
        scores = library.scores(self._sorting())
        self.headActivated.emit(HeadState("", self._categories, library.ids, scores.probabilities, {}, None))

    def retrain_head(self, name: str) -> None:
        """Train a classifier made for another model again for this one, from its classes and labels, and use it."""
        self._engine_().classifiers.train(name)
        self.list_heads()
        self.activate_head(name)

    def create_head(self, name: str, categories: tuple[Category, ...]) -> None:
        """A new classifier predicting like these categories until it has labels; it becomes the one in use."""
        head = self._engine_().classifiers.create(name, list(categories))
        self.list_heads()
        self.activate_head(head.name)

    def rename_head(self, old: str, new: str) -> None:
        new = self._engine_().classifiers.rename(old, new)
        self.list_heads()
        if self._classifier.casefold() == old.casefold():
            self.activate_head(new)

    def delete_head(self, name: str) -> None:
        self._engine_().classifiers.delete(name)
        self.list_heads()
        if self._classifier.casefold() == name.casefold():
            self.activate_head("")

    def export_head(self, name: str, path: str) -> None:
        """Write a classifier to a file; the save dialog already asked before replacing one."""
        target = self._engine_().classifiers.export_file(name, path, overwrite=True)
        self.notice.emit(f"Saved the classifier '{name}' to {target}. Import it in photosort on another computer.")

    def import_head(self, path: str) -> None:
        """Add a classifier from a file, under a new name if its own is taken, and use it."""
        classifiers = self._engine_().classifiers
        name = classifiers.unique_name(_name_in_file(path) or "") or None
        head = classifiers.import_file(path, name=name)
        self.list_heads()
        self.activate_head(head.name)
        self.notice.emit(f"Imported the classifier '{head.name}' ({', '.join(head.classes)}).")

    def set_labels(self, name: str, labels: dict[int, str | None]) -> None:
        self._library_().set_labels(name, labels)

    def train_head(self, name: str) -> None:
        """Fit the classifier to all its labels, then predict every photo held; the GUI gets arrays."""
        started = time.perf_counter()
        report = self._engine_().classifiers.train(name)
        library = self._library_()
        scores = library.scores(Sorting.by_classifier(name))
        seconds = time.perf_counter() - started
        log.info("trained %s on %d labels in %.2f s", name, report.labels, seconds)
        self.headTrained.emit(HeadTrained(report.classifier, library.ids, scores.probabilities, report, seconds))
        self.list_heads()

    # ---- exports --------------------------------------------------------------------------------
    def _plan(self, choice: ExportRequest) -> ExportPlan:
        """The plan of exactly what the grid shows: the library's sorting, labels winning, for every folder open."""
        library = self._library_()
        if not library.roots or not len(library):
            raise ExportError("Open a folder of photos first.")
        sorting = self._sorting(choice.classifier)
        if not sorting.classifier and not sorting.categories:
            raise ExportError("Type some categories (or choose a classifier) to sort the photos into folders.")
        result = library.sort(sorting, choice.threshold)
        return library.plan_export(result, choice.destination, mode=choice.mode, unsure=choice.unsure)

    def _list_journals(self) -> None:
        try:
            journals = [journal_info(p) for p in pending_journals(self._settings.journal_dir)]
        except Exception as exc:
            self.failed.emit(Failure.of(exc))
            return
        self.journalsListed.emit(journals)


def _rows(photos: EmbeddingSet, start: int) -> EmbeddingSet:
    """Photos from row ``start`` on."""
    return EmbeddingSet(photos.ids[start:], photos.paths[start:], photos.vectors[start:], photos.keys[start:])


def _name_in_file(path: str) -> str | None:
    """A classifier file's own name, to pick a free one; a file that cannot be read is left to import to explain."""
    try:
        return Classifier.from_bytes(read_classifier_file(path)).name
    except PhotosortError:
        return None


class WorkerClient(QObject):
    """The GUI's handle on the engine worker: owns its thread, numbers the jobs, sends requests."""

    _open = Signal(int, int, list, bool, object)
    _categories = Signal()
    _load_categories = Signal()
    _save_categories = Signal(str)
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
        self._load_categories.connect(self.worker.load_categories)
        self._save_categories.connect(self.worker.save_categories)
        self._tokens: list[CancelToken] = []  # the open-folders jobs not yet cancelled
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
        token = CancelToken()
        self._tokens.append(token)
        self._open.emit(self._job, self._generation, list(folders), replace, token)
        return self._job

    def cancel(self) -> None:
        """Stop every open-folders job queued or running, after its current batch."""
        for token in self._tokens:
            token.cancel()
        self._tokens.clear()

    def load_categories(self) -> None:
        self._load_categories.emit()

    def save_categories(self, text: str) -> None:
        self._save_categories.emit(text)

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
