"""The one worker thread that owns the engine and the open library: indexing, scoring, model, database writes.

An :class:`~photosort.core.engine.Engine` and its SQLite connections belong to
the thread that made them, so :class:`EngineWorker` creates its engine inside
its own thread and every request reaches it as a queued call. Everything it
answers comes from the core's :class:`~photosort.core.library.Library` (the
same object ``photosort sort`` and ``export`` use), so the window and the CLI
cannot disagree. It reports with signals carrying whole batches (numpy
arrays), never one signal per photo.

Long work (indexing, export, undo, finishing a move) runs through the one
:class:`~photosort.gui.task_runner.TaskRunner`, which reports started,
progress, finished, failed and cancelled alike for all of them.

Some requests must not wait for indexing to finish: *cancel* is the task's
:class:`~photosort.core.progress.CancelToken`, which the indexer polls between
batches, and *new categories* and *classifier requests* (switch, label,
train, rename, ...) sit in mailboxes that the worker also empties between
indexing batches, so typing categories or labelling photos
re-sorts the grid while a folder is still being indexed. Training requests
coalesce: however many arrive while the worker is busy, it trains once, on
all the labels. Each library gets a generation number, so the GUI can drop
messages about a library it no longer shows.

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

from ..core.cache import EmbeddingSet, PhotoList
from ..core.calibration import Calibration, unsure_below
from ..core.classifiers import TrainReport, describe_import
from ..core.config import Settings
from ..core.duplicates import DuplicateGroup, PhotoGroup
from ..core.engine import Engine
from ..core.errors import ClassifierError, ExportError, FolderError, ModelLoadError, PhotosortError, TaggingError
from ..core.export import DEFAULT_LAYOUT, ExportPlan, journal_info, journal_state, pending_journals
from ..core.indexer import IndexReport, PipelineOptions
from ..core.keywords import KeywordTraining, train_from_keywords
from ..core.library import Library, Sorting, SortResult
from ..core.progress import CancelToken, ProgressFn
from ..core.rejects import Decision, TrashReport
from ..core.tagging import TagPlan, TagResult, TagUndoResult, latest_tag_journal, plan_tagging, run_tagging, tag_journals
from ..core.tagging import undo_tagging as undo_tags
from ..core.zeroshot import Category
from .task_runner import Failure, Task, TaskKind, TaskRunner

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
    dates: dict[int, str] = field(default_factory=dict)  # photo id -> when taken (ISO; capture, else file time)
    analysed: np.ndarray | None = None  # per photo: has the model looked at it (None: all have); the others are
    # shown, not sorted (the model is downloading, or cannot be had)
    shapes: dict[int, tuple[int, int]] = field(default_factory=dict)  # photo id -> upright (width, height)


@dataclass(frozen=True)
class PhotoDates:
    """When photos were taken (photo id -> ISO local time), for dates read after their batch was sent
    (photos cached before capture dates were kept get them at the next indexing)."""

    generation: int
    dates: dict[int, str]


@dataclass(frozen=True)
class Scores:
    """Probabilities of every photo the worker holds, for newly typed categories."""

    categories: tuple[Category, ...]
    ids: np.ndarray
    probabilities: np.ndarray


@dataclass(frozen=True)
class SearchResults:
    """The photos best matching a search (or like a photo), best first; ``request`` numbers the search."""

    request: int
    title: str
    ids: np.ndarray
    matches: np.ndarray  # cosine of each with the text or photo searched


@dataclass(frozen=True)
class ClassifierState:
    """The classifier now in use (``name`` "" for the typed categories): classes, labels, predictions."""

    name: str
    categories: tuple[Category, ...]
    ids: np.ndarray
    probabilities: np.ndarray
    labels: dict[int, int]  # photo id -> class index
    accuracy: float | None  # cross-validated, from its last training
    calibration: Calibration | None = None  # how often a filed photo is right per threshold (the accuracy dial)


class SettingsChange:
    """In the request queue: another model or device is coming; requests queued after it wait for it.

    Requests also run between indexing batches, so without this a classifier request sent right after a
    change of model could run on the old engine, before the change reached the worker.
    """


@dataclass(frozen=True)
class TrainRequest:
    """A queued training (kept as data, not a closure, so that repeated requests can be merged)."""

    name: str


@dataclass(frozen=True)
class ClassifierTrained:
    """A classifier retrained on all its labels, with new predictions for every photo held."""

    name: str
    ids: np.ndarray
    probabilities: np.ndarray
    report: TrainReport
    seconds: float
    calibration: Calibration | None = None  # the new estimate behind the accuracy dial (None: too few labels)


@dataclass(frozen=True)
class ExportRequest:
    """The export dialog's choices."""

    destination: str
    mode: str  # "copy", "move" or "link"
    classifier: str  # "" for the typed categories, else a classifier's name
    unsure: str  # "folder" or "skip"
    threshold: float
    target_accuracy: float | None = None  # the accuracy dial's target: used where the classifier has an estimate
    layout: str = DEFAULT_LAYOUT  # the folder template, e.g. "{category}/{year}"
    include_rejected: bool = False  # also export the photos rejected as duplicates (left out by default)


@dataclass(frozen=True)
class ExportPreview:
    """The plan for a request (what goes where), or why there is none."""

    request: int
    plan: ExportPlan | None
    error: str = ""
    unsure_rule: str = ""  # which photos are unsure: "below 50 %", or "below 95 % likely right"


@dataclass(frozen=True)
class TagRequest:
    """Which sorting to write as keywords: the one the grid shows, asked for as the export dialog asks for it."""

    classifier: str  # "" for the typed categories, else a classifier's name
    threshold: float
    target_accuracy: float | None = None  # the accuracy dial's target, where the classifier has an estimate


@dataclass(frozen=True)
class DuplicateReview:
    """Near-duplicate and burst groups, each with its keeper and the user's decisions (``review`` numbers the
    search that found them: decisions made later come back with the same number)."""

    review: int
    sensitivity: float
    bursts: bool
    groups: tuple[DuplicateGroup, ...]
    rejected: int  # photos of the open folders rejected (in these groups or not): what "Move to Trash" takes


@dataclass(frozen=True)
class JobResult:
    """What opening folders did: one indexing report per folder."""

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

    foldersOpened = Signal(int, list)  # generation, the folders found readable
    photosAdded = Signal(object)  # PhotoBatch
    datesChanged = Signal(object)  # PhotoDates
    scoresReady = Signal(object)  # Scores
    problemsFound = Signal(int, list)  # generation, [(path, reason)] for the whole library
    failed = Signal(object)  # Failure of a request that is not a task (a classifier, a folder, the categories)
    status = Signal(str)  # what slow thing happens now ("Loading the model…"), "" when done
    notice = Signal(str)  # something worth telling that is not an error
    cacheCleared = Signal(list)  # deleted file paths
    classifiersListed = Signal(list)  # [ClassifierSummary]: every stored classifier
    classifierActivated = Signal(object)  # ClassifierState
    classifierTrained = Signal(object)  # ClassifierTrained
    exportPlanned = Signal(object)  # ExportPreview
    journalsListed = Signal(list)  # [JournalInfo]: move exports that can be undone or finished
    categoriesLoaded = Signal(str)  # the category text saved in the user's library
    searchResults = Signal(object)  # SearchResults
    classifierNameTaken = Signal(str, str, str)  # file, the name in it (taken), a free name to suggest
    duplicatesUpdated = Signal(object)  # DuplicateReview: the groups again after keep/reject decisions
    tagJournalsListed = Signal(list)  # [str]: the taggings that can be undone, oldest first

    def __init__(self, settings: Settings, options: PipelineOptions | None, db_lock: threading.Lock,
                 tasks: TaskRunner) -> None:
        super().__init__()
        self.tasks = tasks
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
        self._requests: deque[Callable[[], None] | TrainRequest | SettingsChange] = deque()
        self._running_requests = False
        self._classifier = ""  # the classifier sorting the grid ("" : the typed categories)
        self._plans: dict[int, ExportPlan] = {}
        self._unsure_rule = ""  # of the last plan: which photos it calls unsure
        self._duplicates: tuple[int, float, bool, list[PhotoGroup]] | None = None  # the last review's groups
        self._library_version: int | None = None  # library.db's data_version when last looked at

    # ---- called from the GUI thread (thread-safe) -------------------------------------------
    def submit_categories(self, categories: tuple[Category, ...]) -> None:
        with self._mailbox_lock:
            self._pending_categories = tuple(categories)

    def post(self, request: Callable[[], None]) -> None:
        """Queue a classifier request; it runs at the next drain (which also happens between indexing batches)."""
        with self._mailbox_lock:
            self._requests.append(request)

    def expect_settings(self) -> SettingsChange:
        """Hold the requests queued from now on until :meth:`apply_settings` has run (see SettingsChange)."""
        change = SettingsChange()
        with self._mailbox_lock:
            self._requests.append(change)
        return change

    def want_training(self, name: str) -> None:
        """Queue training ``name`` on all its labels; an earlier training of it still waiting is dropped.

        So many requests make one training, and it still runs before a rename or a
        delete queued after it.
        """
        with self._mailbox_lock:
            for waiting in [r for r in self._requests if isinstance(r, TrainRequest) and r.name == name]:
                self._requests.remove(waiting)
            self._requests.append(TrainRequest(name))

    # ---- slots (worker thread) -----------------------------------------------------------------
    @Slot()
    def warm_up(self) -> None:
        """Import torch now, while the user looks at the window, so the first folder starts sooner."""
        try:
            import photosort.core.model  # noqa: F401
        except ImportError as exc:
            log.warning("cannot import the model code: %s", exc)

    @Slot(object, list, bool)
    def open_folders(self, task: Task, folders: list[str], replace: bool) -> None:
        """Show these folders' cached photos at once, then index what changed (a task: progress, cancel)."""
        self.tasks.run(task, lambda progress, cancel: self._open(task.generation, folders, replace, progress, cancel))
        self._send_notices()

    @Slot(object)
    def rescan(self, task: Task) -> None:
        """Read the open folders again: what moved or vanished (a move export, the file manager) leaves the grid,
        what is new or changed is indexed (a task, like opening them)."""
        def work(progress: ProgressFn, cancel: CancelToken) -> JobResult:
            if self._library is None or task.generation != self._generation:
                return JobResult(task.generation, (), False)
            self._reload_library(task.generation)
            return self._index(task.generation, list(self._library.roots), progress, cancel)

        self.tasks.run(task, work)
        self._send_notices()

    @Slot()
    def process_categories(self) -> None:
        try:
            self._drain_categories()
        except Exception as exc:
            self.failed.emit(Failure.of(exc))

    @Slot(object, object)
    def apply_settings(self, settings: Settings, change: SettingsChange | None = None) -> None:
        """Use another model, device or precision from now on; the GUI re-opens its folders after.

        The requests held behind ``change`` (from :meth:`expect_settings`) run now, on the new engine.
        """
        self._close_engine()
        self._settings = settings
        self._classifier, self._library = "", None
        if change is not None:
            with self._mailbox_lock:
                if change in self._requests:
                    self._requests.remove(change)
            self._run_requests()

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

    # ---- exports (slots; the long ones are tasks) ----------------------------------------------
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
        self.exportPlanned.emit(ExportPreview(request, plan, unsure_rule=self._unsure_rule))

    @Slot(object, int)
    def run_planned_export(self, task: Task, request: int) -> None:
        """Carry out the plan that the dialog previewed; cancel stops between photos, never in one."""
        plan = self._plans.pop(request, None)

        def export(progress: ProgressFn, cancel: CancelToken):
            if plan is None:
                raise ExportError("The preview is out of date; try again.")
            return self._engine_().run_export(plan, progress=progress, cancel=cancel)

        self.tasks.run(task, export)
        self._list_journals()

    @Slot(object, str, list)
    def train_from_keywords(self, task: Task, name: str, patterns: list[str]) -> None:
        """Label the photos from the keywords a photo manager wrote (``photosort train --from-keywords``), train
        ``name`` on them, and sort the grid with it."""

        def work(progress: ProgressFn, cancel: CancelToken) -> KeywordTraining:
            done = train_from_keywords(self._library_(), name, patterns, progress=progress, cancel=cancel)
            self.list_classifiers()
            self.activate_classifier(done.trained.classifier)
            return done

        self.tasks.run(task, work)

    # ---- keywords into XMP sidecars (``photosort tag``; tasks: they read or write every photo's sidecars) ----
    @Slot(object, object)
    def plan_tagging(self, task: Task, request: TagRequest) -> None:
        """Read the sidecars and say what writing the grid's sorting as keywords would change; nothing is written."""
        def work(progress: ProgressFn, cancel: CancelToken) -> TagPlan:
            result = self._sort_shown(request.classifier, request.threshold, request.target_accuracy, TaggingError,
                                      "and write them as keywords")
            return plan_tagging(result, self._library_().roots, progress=progress, cancel=cancel)

        self.tasks.run(task, work)

    @Slot(object, object)
    def write_tags(self, task: Task, plan: TagPlan) -> None:
        """Carry out the plan the user confirmed; a sidecar changed since it was read is skipped, not clobbered."""
        def work(progress: ProgressFn, cancel: CancelToken) -> TagResult:
            return run_tagging(plan, self._settings.journal_dir, progress=progress, cancel=cancel)

        self.tasks.run(task, work)
        self._list_tag_journals()

    @Slot(object, str)
    def undo_tagging(self, task: Task, journal: str) -> None:
        """Put the sidecars of a tagging back as they were (``journal`` "": the last one, as ``tag --undo``)."""
        def work(progress: ProgressFn, cancel: CancelToken) -> TagUndoResult:
            path = Path(journal) if journal else latest_tag_journal(self._settings.journal_dir)
            return undo_tags(path, progress=progress, cancel=cancel)

        self.tasks.run(task, work)
        self._list_tag_journals()

    @Slot()
    def list_tag_journals(self) -> None:
        self._list_tag_journals()

    def _list_tag_journals(self) -> None:
        try:
            journals = [str(p) for p in tag_journals(self._settings.journal_dir)]
        except Exception as exc:
            self.failed.emit(Failure.of(exc))
            return
        self.tagJournalsListed.emit(journals)

    # ---- duplicates (the review and the trash are tasks; decisions run from the mailbox) ----------------
    @Slot(object, float, bool)
    def review_duplicates(self, task: Task, sensitivity: float, bursts: bool) -> None:
        """Find near-duplicates and bursts (``photosort duplicates``), each group with its keeper and why."""
        def work(progress: ProgressFn, cancel: CancelToken) -> DuplicateReview:
            from ..core.duplicates import find_groups

            found = find_groups(self._library_(), sensitivity, bursts=bursts, progress=progress, cancel=cancel)
            self._duplicates = (task.id, sensitivity, bursts, found)
            return self._duplicate_review(progress, cancel)

        self.tasks.run(task, work)

    @Slot(object)
    def trash_rejected(self, task: Task) -> None:
        """Move the rejected photos to the system's trash (the user confirmed); the grid loses those trashed."""
        def work(progress: ProgressFn, cancel: CancelToken) -> TrashReport:
            from ..core.rejects import trash_rejected

            report = trash_rejected(self._library_(), progress, cancel)
            if report.trashed:
                self._emit_batch(self._generation, self._library_().photos, replace=True)
            return report

        self.tasks.run(task, work)

    def decide_duplicates(self, choices: dict[int, Decision | None]) -> None:
        """Record keep/reject (None: undecided) and send the groups again: a decision can change a keeper."""
        from ..core.rejects import set_decisions

        set_decisions(self._library_(), choices)
        self._send_duplicates()

    def reject_others(self, ids: tuple[int, ...]) -> None:
        """Reject every photo of the group holding ``ids`` but its keeper, by the core's rule."""
        from ..core.duplicates import reject_others

        reviewed = self._duplicate_review()
        reject_others(self._library_(), [g for g in reviewed.groups if set(g.ids) == set(ids)])
        self._send_duplicates()

    def _send_duplicates(self) -> None:
        if self._duplicates is not None:
            self.duplicatesUpdated.emit(self._duplicate_review())

    def _duplicate_review(self, progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> DuplicateReview:
        """The last review's groups with keepers and decisions as they are now (focus measures are cached)."""
        from ..core.duplicates import suggest_keepers
        from ..core.rejects import rejected

        library = self._library_()
        review, sensitivity, bursts, found = self._duplicates or (0, 0.5, True, [])
        held = set(library.ids.tolist())
        found = [g for g in found if sum(pid in held for pid in g.ids) == len(g)]  # a trashed photo breaks its group
        groups = suggest_keepers(library, found, progress, cancel)
        return DuplicateReview(review, sensitivity, bursts, tuple(groups), len(rejected(library)))

    @Slot(object, str)
    def undo_move(self, task: Task, journal: str) -> None:
        """Put back every photo of a move export (never overwriting), from its journal."""
        self.tasks.run(task, lambda progress, cancel: self._engine_().undo_move(journal, progress=progress,
                                                                                  cancel=cancel))
        self._list_journals()

    @Slot(object, str)
    def finish_move(self, task: Task, journal: str) -> None:
        """Finish a move export that was interrupted (the app was killed, or it was stopped)."""
        self.tasks.run(task, lambda progress, cancel: self._engine_().finish_move(journal, progress=progress,
                                                                                    cancel=cancel))
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
        before, waiting_before = len(library), len(library.unanalysed)
        try:
            root = library.add_folder(folder)
        except FolderError as exc:
            self.failed.emit(Failure.of(exc))
            return None
        waiting = library.unanalysed
        waiting = PhotoList(waiting.ids[waiting_before:], waiting.paths[waiting_before:])
        if len(library) > before or len(waiting):
            self._emit_batch(self._generation, _rows(library.photos, before), waiting=waiting)
        return root

    def _open(self, generation: int, folders: list[str], replace: bool, progress: ProgressFn,
              cancel: CancelToken) -> JobResult:
        if replace or generation != self._generation or self._library is None:
            self._library = Library(self._engine_())
        self._generation = generation
        roots = [r for r in (self._add_folder(f) for f in folders) if r is not None]
        self.foldersOpened.emit(generation, roots)
        return self._index(generation, roots, progress, cancel)

    def _index(self, generation: int, roots: list[str], progress: ProgressFn, cancel: CancelToken) -> JobResult:
        """Index what changed in each folder; stop between batches on cancel."""
        engine = self._engine_()
        self._emit_problems(generation)
        reports: list[IndexReport] = []
        model_problem: ModelLoadError | None = None
        for root in roots:
            if cancel.cancelled:
                break
            undated = bool(engine.cache.photos_without_facts(root))
            try:
                report = engine.index(root, progress=progress, cancel=cancel, browse_without_model=True,
                                      on_batch=lambda ids: self._on_batch(generation, ids))
            except ModelLoadError as exc:  # every folder's photos became browsable first; then it is said
                model_problem = model_problem or exc
                self._emit_problems(generation)
                continue
            reports.append(report)
            if undated:  # photos shown before their capture dates were read: send the dates now
                self.datesChanged.emit(PhotoDates(generation, self._dates()))
            if report.removed or report.renamed:
                self._reload_library(generation)
            self._emit_problems(generation)
            if report.cancelled:
                break
        cancelled = cancel.cancelled or any(r.cancelled for r in reports)
        if model_problem is not None and not cancelled:
            raise model_problem
        return JobResult(generation, tuple(reports), cancelled)

    def _on_batch(self, generation: int, ids: list[int]) -> None:
        """One committed indexing batch: read it back into the library and send it to the grid."""
        analysed, waiting = self._library_().add_indexed(ids)
        if len(analysed) or len(waiting):
            self._emit_batch(generation, analysed, waiting=waiting)

    def _emit_batch(self, generation: int, photos: EmbeddingSet, replace: bool = False,
                    waiting: PhotoList | None = None) -> None:
        """Send photos to the grid, scored for the sorting in use; ``waiting``: photos not analysed yet, shown after
        them unsorted (with ``replace``, every such photo of the library)."""
        self._drain_categories()  # categories typed meanwhile apply before this batch is scored
        self._run_requests()  # so do classifier requests (labels, training, switching)
        library = self._library_()
        if replace:
            waiting = library.unanalysed
        categories, probabilities, labels = self._scores_for(photos)
        ids, paths, analysed = photos.ids, list(photos.paths), None
        if waiting is not None and len(waiting):
            ids = np.concatenate([ids, waiting.ids])
            paths += waiting.paths
            probabilities = np.concatenate([probabilities, np.full((len(waiting), len(categories)), np.nan, np.float32)])
            analysed = np.arange(len(ids)) < len(photos)
        self.photosAdded.emit(PhotoBatch(generation, ids, paths, categories, probabilities, replace, labels,
                                         self._dates(ids.tolist()), analysed, library.shapes(ids.tolist())))

    def _scores_for(self, photos: EmbeddingSet) -> tuple[tuple[Category, ...], np.ndarray, dict[int, int]]:
        """Categories, probabilities and labels of ``photos`` for the sorting in use; unknown (NaN) while the model
        needed to score them cannot be had (the window says why once, when indexing ends)."""
        try:
            scores = self._library_().scores(self._sorting(), photos)
        except ModelLoadError as exc:
            log.info("photos shown unscored: %s", exc)
            categories = self._categories if not self._classifier else ()
            return categories, np.full((len(photos), len(categories)), np.nan, np.float32), {}
        labels = {int(pid): int(k) for pid, k in zip(photos.ids.tolist(), scores.labels.tolist(), strict=True) if k >= 0}
        return scores.categories, scores.probabilities, labels

    def _dates(self, ids: list[int] | None = None) -> dict[int, str]:
        """When each photo was taken, for the grid's "Date taken" order (the GUI thread never reads the cache)."""
        return {pid: date.when for pid, date in self._library_().dates(ids).items()}

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
                    if not self._requests or isinstance(self._requests[0], SettingsChange):
                        return  # (a settings change still on its way holds everything queued after it)
                    request = self._requests.popleft()
                if isinstance(request, TrainRequest):
                    self._guarded(lambda name=request.name: self.train_classifier(name))
                else:
                    self._guarded(request)
        finally:
            self._running_requests = False

    def _guarded(self, request: Callable[[], None]) -> None:
        try:
            request()
        except Exception as exc:
            self.failed.emit(Failure.of(exc))

    def list_classifiers_if_changed(self) -> None:
        """Send the classifiers again when another program (a ``photosort`` command) changed the user's library."""
        if self._engine is None:
            return
        version = self._engine.user.data_version()
        changed = self._library_version is not None and version != self._library_version
        self._library_version = version
        if changed:
            self.list_classifiers(quiet=True)

    def list_classifiers(self, quiet: bool = False) -> None:
        """Send the stored classifiers; ``quiet`` (at start-up) sends none rather than an error about the model."""
        try:
            summaries = self._engine_().classifiers.summaries()
        except PhotosortError as exc:
            if not quiet:
                raise
            log.info("cannot list the classifiers yet: %s", exc)
            summaries = []
        self.classifiersListed.emit(summaries)

    def activate_classifier(self, name: str) -> None:
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
        calibration = None if scores.classifier is None else Calibration.of(scores.classifier.metrics,
                                                                            len(scores.classes))
        self.classifierActivated.emit(ClassifierState(self._classifier, scores.categories, library.ids, scores.probabilities,
                                          labels, accuracy if isinstance(accuracy, float) else None, calibration))

    def _use_typed_categories(self) -> None:
        self._classifier = ""
        library = self._library_()
        scores = library.scores(self._sorting())
        self.classifierActivated.emit(ClassifierState("", self._categories, library.ids, scores.probabilities, {}, None))

    def retrain_classifier(self, name: str) -> None:
        """Train a classifier made for another model again for this one, from its classes and labels, and use it."""
        self._engine_().classifiers.train(name)
        self.list_classifiers()
        self.activate_classifier(name)

    def create_classifier(self, name: str, categories: tuple[Category, ...]) -> None:
        """A new classifier predicting like these categories until it has labels; it becomes the one in use."""
        created = self._engine_().classifiers.create(name, list(categories))
        self.list_classifiers()
        self.activate_classifier(created.name)

    def rename_classifier(self, old: str, new: str) -> None:
        new = self._engine_().classifiers.rename(old, new)
        self.list_classifiers()
        if self._classifier.casefold() == old.casefold():
            self.activate_classifier(new)

    def delete_classifier(self, name: str) -> None:
        self._engine_().classifiers.delete(name)
        self.list_classifiers()
        if self._classifier.casefold() == name.casefold():
            self.activate_classifier("")

    def export_classifier(self, name: str, path: str) -> None:
        """Write a classifier to a file; the save dialog already asked before replacing one."""
        target = self._engine_().classifiers.export_file(name, path, overwrite=True)
        self.notice.emit(f"Saved the classifier '{name}' to {target}. Import it in photosort on another computer.")

    def check_classifier_file(self, path: str) -> None:
        """Import a classifier file, or, when its name is taken, tell the window a free one to suggest (it asks).

        A file that would be refused (not a classifier, another model's) is refused now, before any question.
        """
        classifiers = self._engine_().classifiers
        name = classifiers.read_file(path).name
        if classifiers.unique_name(name) == name:
            self.import_classifier(path, name)
        else:
            self.classifierNameTaken.emit(path, name, classifiers.unique_name(name))

    def import_classifier(self, path: str, name: str | None) -> None:
        """Add a classifier from a file under ``name`` (None: its own) and use it."""
        imported = self._engine_().classifiers.import_file(path, name=name)
        self.list_classifiers()
        self.activate_classifier(imported.name)
        self.notice.emit(describe_import(imported))

    def set_labels(self, name: str, labels: dict[int, str | None]) -> None:
        self._library_().set_labels(name, labels)

    # ---- search (run from the mailbox, so it answers between indexing batches) ---------------------
    def search_text(self, request: int, query: str, limit: int) -> None:
        """The photos that best match ``query`` by meaning, as ``photosort search`` finds them."""
        hits = self._library_().text_hits(query, limit)
        self._send_hits(request, f"“{query.strip()}”", hits)

    def find_similar(self, request: int, photo_id: int, name: str, limit: int) -> None:
        hits = self._library_().like_hits(photo_id, limit)
        self._send_hits(request, f"Like {name}", hits)

    def _send_hits(self, request: int, title: str, hits: list[tuple[int, float]]) -> None:
        ids = np.array([pid for pid, _m in hits], dtype=np.int64)
        self.searchResults.emit(SearchResults(request, title, ids, np.array([m for _p, m in hits], np.float32)))

    def train_classifier(self, name: str) -> None:
        """Fit the classifier to all its labels, then predict every photo held; the GUI gets arrays."""
        started = time.perf_counter()
        report = self._engine_().classifiers.train(name)
        library = self._library_()
        scores = library.scores(Sorting.by_classifier(name))
        seconds = time.perf_counter() - started
        log.info("trained %s on %d labels in %.2f s", name, report.labels, seconds)
        calibration = None if scores.classifier is None else Calibration.of(scores.classifier.metrics,
                                                                            len(scores.classes))
        self.classifierTrained.emit(ClassifierTrained(report.classifier, library.ids, scores.probabilities, report, seconds,
                                                      calibration))
        self.list_classifiers()

    # ---- exports --------------------------------------------------------------------------------
    def _plan(self, choice: ExportRequest) -> ExportPlan:
        """The plan of exactly what the grid shows: the library's sorting, labels winning, for every folder open."""
        result = self._sort_shown(choice.classifier, choice.threshold, choice.target_accuracy, ExportError,
                                  "into folders")
        self._unsure_rule = unsure_below(result.filing, choice.threshold)
        return self._library_().plan_export(result, choice.destination, mode=choice.mode, unsure=choice.unsure,
                                   layout=choice.layout, include_rejected=choice.include_rejected)

    def _sort_shown(self, classifier: str, threshold: float, target_accuracy: float | None,
                    error: type[PhotosortError], purpose: str) -> SortResult:
        """The sorting the grid shows, one rule for export and tagging alike (so both give the same answer): the
        library's sorting, labels winning, every folder open; ``error`` says why there is none."""
        library = self._library_()
        if not library.roots:
            raise error("Open a folder of photos first.")
        library.check_sortable(error)
        sorting = self._sorting(classifier)
        if not sorting.classifier and not sorting.categories:
            raise error(f"Type some categories (or choose a classifier) to sort the photos {purpose}.")
        return library.sort(sorting, threshold, target_accuracy, require_estimate=False)

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


class WorkerClient(QObject):
    """The GUI's handle on the engine worker: owns its thread and its task runner, sends requests."""

    _open = Signal(object, list, bool)
    _rescan = Signal(object)
    _categories = Signal()
    _load_categories = Signal()
    _save_categories = Signal(str)
    _settings = Signal(object, object)  # the settings, and the SettingsChange holding later requests
    _clear = Signal()
    _warm = Signal()
    _shutdown = Signal()
    _drain = Signal()
    _plan = Signal(int, object)
    _run_export = Signal(object, int)
    _undo = Signal(object, str)
    _finish = Signal(object, str)
    _journals = Signal()
    _forget = Signal(str)
    _train_keywords = Signal(object, str, list)
    _review_duplicates = Signal(object, float, bool)
    _trash_rejected = Signal(object)
    _plan_tagging = Signal(object, object)
    _write_tags = Signal(object, object)
    _undo_tagging = Signal(object, str)
    _tag_journals = Signal()

    def __init__(self, settings: Settings, options: PipelineOptions | None, db_lock: threading.Lock,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.tasks = TaskRunner(self)
        self.thread = QThread()
        self.thread.setObjectName("photosort-engine")
        self.worker = EngineWorker(settings, options, db_lock, self.tasks)
        self.worker.moveToThread(self.thread)
        for signal, slot in ((self._open, self.worker.open_folders), (self._rescan, self.worker.rescan),
                             (self._categories, self.worker.process_categories),
                             (self._settings, self.worker.apply_settings), (self._clear, self.worker.clear_cache),
                             (self._warm, self.worker.warm_up), (self._shutdown, self.worker.shutdown),
                             (self._drain, self.worker.drain_requests), (self._plan, self.worker.plan_export),
                             (self._run_export, self.worker.run_planned_export), (self._undo, self.worker.undo_move),
                             (self._finish, self.worker.finish_move), (self._journals, self.worker.list_journals),
                             (self._forget, self.worker.forget_journal),
                             (self._load_categories, self.worker.load_categories),
                             (self._save_categories, self.worker.save_categories)):
            signal.connect(slot)
        self._train_keywords.connect(self.worker.train_from_keywords)
        self._review_duplicates.connect(self.worker.review_duplicates)
        self._trash_rejected.connect(self.worker.trash_rejected)
        for signal, slot in ((self._plan_tagging, self.worker.plan_tagging), (self._write_tags, self.worker.write_tags),
                             (self._undo_tagging, self.worker.undo_tagging),
                             (self._tag_journals, self.worker.list_tag_journals)):
            signal.connect(slot)
        self._generation = 0
        self._export_request = 0
        self._search_request = 0
        self.thread.start()

    @property
    def generation(self) -> int:
        return self._generation

    def open_folders(self, folders: list[str], replace: bool = True) -> Task:
        """Queue opening ``folders`` (a new library when ``replace``, which stops the indexing before)."""
        if replace:
            self.cancel()
            self._generation += 1
        task = self.tasks.submit(TaskKind.INDEX, self._generation)
        self._open.emit(task, list(folders), replace)
        return task

    def rescan(self) -> Task:
        """Queue reading the open folders again (after a move, or when the user asks)."""
        task = self.tasks.submit(TaskKind.INDEX, self._generation)
        self._rescan.emit(task)
        return task

    def cancel(self) -> None:
        """Stop every open-folders task queued or running, after its current batch."""
        self.tasks.cancel(TaskKind.INDEX)

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
        self._settings.emit(settings, self.worker.expect_settings())

    def clear_cache(self) -> None:
        self.cancel()
        self._clear.emit()

    def warm_up(self) -> None:
        self._warm.emit()

    # ---- classifiers ----------------------------------------------------------------------------
    def _post(self, request: Callable[[], None]) -> None:
        self.worker.post(request)
        self._drain.emit()

    def list_classifiers(self, quiet: bool = False) -> None:
        self._post(lambda: self.worker.list_classifiers(quiet))

    def notice_library_changes(self) -> None:
        """Look (cheaply) whether a photosort command changed the classifiers; they are listed again if so."""
        self._post(self.worker.list_classifiers_if_changed)

    def retrain_classifier(self, name: str) -> None:
        self._post(lambda: self.worker.retrain_classifier(name))

    def activate_classifier(self, name: str) -> None:
        self._post(lambda: self.worker.activate_classifier(name))

    def create_classifier(self, name: str, categories: tuple[Category, ...]) -> None:
        self._post(lambda: self.worker.create_classifier(name, categories))

    def rename_classifier(self, old: str, new: str) -> None:
        self._post(lambda: self.worker.rename_classifier(old, new))

    def delete_classifier(self, name: str) -> None:
        self._post(lambda: self.worker.delete_classifier(name))

    def export_classifier(self, name: str, path: str) -> None:
        self._post(lambda: self.worker.export_classifier(name, path))

    def import_classifier(self, path: str, name: str | None = None) -> None:
        """Import a classifier file; without ``name``, its own name is checked first (classifierNameTaken)."""
        if name is None:
            self._post(lambda: self.worker.check_classifier_file(path))
        else:
            self._post(lambda: self.worker.import_classifier(path, name))

    def set_labels(self, name: str, labels: dict[int, str | None]) -> None:
        labels = dict(labels)
        self._post(lambda: self.worker.set_labels(name, labels))

    def train_classifier(self, name: str) -> None:
        self.worker.want_training(name)
        self._drain.emit()

    # ---- search ------------------------------------------------------------------------------------
    def search_text(self, query: str, limit: int) -> int:
        """Ask for the photos best matching ``query``; returns the request number its results carry."""
        self._search_request += 1
        request = self._search_request
        self._post(lambda: self.worker.search_text(request, query, limit))
        return request

    def find_similar(self, photo_id: int, name: str, limit: int) -> int:
        self._search_request += 1
        request = self._search_request
        self._post(lambda: self.worker.find_similar(request, photo_id, name, limit))
        return request

    # ---- exports ---------------------------------------------------------------------------------
    def preview_export(self, choice: ExportRequest) -> int:
        """Ask for the plan of an export; returns the request number its preview will carry."""
        self._export_request += 1
        self._plan.emit(self._export_request, choice)
        return self._export_request

    def run_export(self, request: int) -> Task:
        task = self.tasks.submit(TaskKind.EXPORT)
        self._run_export.emit(task, request)
        return task

    def train_from_keywords(self, name: str, patterns: list[str]) -> Task:
        """Queue training ``name`` from the photos' keywords (a task: it reads every photo's metadata)."""
        task = self.tasks.submit(TaskKind.TRAIN)
        self._train_keywords.emit(task, name, list(patterns))
        return task

    # ---- keywords into XMP sidecars ---------------------------------------------------------------------
    def plan_tagging(self, request: TagRequest) -> Task:
        """Queue reading the sidecars for what writing ``request``'s sorting would change (the TagPlan)."""
        task = self.tasks.submit(TaskKind.TAG)
        self._plan_tagging.emit(task, request)
        return task

    def write_tags(self, plan: TagPlan) -> Task:
        task = self.tasks.submit(TaskKind.TAG)
        self._write_tags.emit(task, plan)
        return task

    def undo_tagging(self, journal: str = "") -> Task:
        """Queue putting back the sidecars of the tagging ``journal`` ("": the last one)."""
        task = self.tasks.submit(TaskKind.UNTAG)
        self._undo_tagging.emit(task, journal)
        return task

    def list_tag_journals(self) -> None:
        self._tag_journals.emit()

    # ---- duplicates ----------------------------------------------------------------------------------
    def review_duplicates(self, sensitivity: float, bursts: bool) -> Task:
        """Queue finding near-duplicates (a task: it may measure the focus of originals); an older one stops."""
        self.tasks.cancel(TaskKind.DUPLICATES)
        task = self.tasks.submit(TaskKind.DUPLICATES)
        self._review_duplicates.emit(task, float(sensitivity), bool(bursts))
        return task

    def decide_duplicates(self, choices: dict[int, Decision | None]) -> None:
        choices = dict(choices)
        self._post(lambda: self.worker.decide_duplicates(choices))

    def reject_others(self, ids: tuple[int, ...]) -> None:
        ids = tuple(ids)
        self._post(lambda: self.worker.reject_others(ids))

    def trash_rejected(self) -> Task:
        task = self.tasks.submit(TaskKind.TRASH)
        self._trash_rejected.emit(task)
        return task

    def undo_move(self, journal: str) -> Task:
        task = self.tasks.submit(TaskKind.UNDO)
        self._undo.emit(task, journal)
        return task

    def finish_move(self, journal: str) -> Task:
        task = self.tasks.submit(TaskKind.FINISH)
        self._finish.emit(task, journal)
        return task

    def cancel_export(self) -> None:
        """Stop the export, undo or finishing under way after the photo being written: never half a photo."""
        self.tasks.cancel(TaskKind.EXPORT, TaskKind.UNDO, TaskKind.FINISH)

    def list_journals(self) -> None:
        self._journals.emit()

    def forget_journal(self, journal: str) -> None:
        self._forget.emit(journal)

    def shutdown(self) -> None:
        """Stop after the current batch (or photo being exported), close the engine in its thread, and wait."""
        if not self.thread.isRunning():
            return
        self.tasks.cancel()
        self._shutdown.emit()
        self.thread.wait()
