"""The main window: menus, the side panel, the grid (or the empty state), status and progress.

It wires widgets to the worker and holds no sorting, caching, training or
export logic: requests go to :class:`~photosort.gui.worker.WorkerClient`,
results come back as signals and land in
:class:`~photosort.gui.photo_model.PhotoModel`. Messages about a library that
is no longer shown (an older generation) are dropped, so dropping a new folder
mid-indexing never mixes two folders; predictions of a classifier that is no
longer in use are dropped the same way.

Labelling: with a classifier in use, 1-9 (or its buttons, or the context
menu) label the selected photos, 0 or Backspace remove their labels, and
Ctrl+Z undoes; see :mod:`.labelling`.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QModelIndex, QPoint, Qt, QThreadPool, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDropEvent,
    QKeySequence,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..core.classifiers import ClassifierSummary
from ..core.config import Settings, save_choices
from ..core.errors import Action, PhotosortError
from ..core.export import JournalInfo
from ..core.indexer import PipelineOptions
from ..core.progress import Progress
from ..core.scan import is_photo_name
from .classifier_panel import KEYED_CLASSES, NewClassifierDialog
from .empty_state import EmptyState
from .export_dialog import ExportDialog, describe_result, describe_undo
from .grid_view import DEFAULT_TILE, TILE_SIZES, PhotoGridView
from .journals_dialog import JournalsDialog
from .labelling import Labeller
from .message_bar import MessageBar
from .photo_model import PhotoModel
from .preferences import Preferences
from .preview import PreviewDialog
from .problems import ProblemsDialog, ProblemsModel
from .resources import app_icon
from .settings_dialog import SettingsDialog
from .side_panel import SidePanel
from .thumbnail_cache import ThumbnailCache
from .worker import (
    ExportOutcome,
    Failure,
    HeadState,
    HeadTrained,
    JobResult,
    PhotoBatch,
    Scores,
    UndoOutcome,
    WorkerClient,
)

log = logging.getLogger(__name__)

PREFETCH_DELAY_MS = 60
WARM_UP_DELAY_MS = 400
HEAD_FILE_FILTER = "photosort classifier (*.photosort-head)"
HEAD_SUFFIX = ".photosort-head"


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def describe_progress(progress: Progress) -> str:
    if progress.phase == "scanning":
        return "Looking for photos…"
    text = f"Indexing {progress.done:,} of {progress.total:,}"
    if progress.rate > 0:
        text += f" · {progress.rate:.1f} photos/s"
    if progress.eta_s is not None and progress.done < progress.total:
        text += f" · about {format_duration(progress.eta_s)} left"
    return text


def folders_from_mime(mime: QMimeData) -> list[str]:
    """Local folders among dropped URLs; a dropped photo stands for the folder that holds it."""
    folders: list[str] = []
    for url in mime.urls() if mime.hasUrls() else []:
        if not url.isLocalFile():
            continue
        path = os.path.normpath(url.toLocalFile())
        if os.path.isdir(path):
            folders.append(path)
        elif os.path.isfile(path) and is_photo_name(path):
            folders.append(os.path.dirname(path))
    return list(dict.fromkeys(folders))


class MainWindow(QMainWindow):
    """The photosort window. ``options`` tunes the indexing pipeline (tests use small batches).

    Its signals fire in the GUI thread once the window has taken a worker result
    in, for code (and tests) that must see the grid as the user sees it.
    """

    indexingDone = Signal(object)  # JobResult, finished or cancelled, of the job the window waits for
    errorShown = Signal(object)  # Failure, once its message is in the window
    categoriesApplied = Signal()  # new categories have re-sorted the grid
    headsListed = Signal()  # the classifier list (combo, menus) is up to date
    classifierApplied = Signal(str)  # a classifier ("" : typed categories) now sorts the grid
    headTrained = Signal(object)  # HeadTrained, once its predictions are in the grid
    journalHandled = Signal(str)  # the message after finishing or undoing a move from the message bar
    noticeShown = Signal(str)  # a notice (e.g. a classifier saved or imported) is in the message bar

    def __init__(self, settings: Settings, preferences: Preferences | None = None,
                 options: PipelineOptions | None = None) -> None:
        super().__init__()
        self.setWindowTitle("photosort")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.prefs = preferences if preferences is not None else Preferences()
        self.settings = settings  # flags > environment > settings.json > defaults, resolved by the core
        self._folders: list[str] = []
        self._roots: list[str] = []
        self._busy_job: int | None = None
        self._preview: PreviewDialog | None = None
        self._settings_dialog: SettingsDialog | None = None
        self._export_dialog: ExportDialog | None = None
        self._journals_dialog: JournalsDialog | None = None
        self._new_classifier_dialog: NewClassifierDialog | None = None
        self._heads: list[ClassifierSummary] = []
        self._active_head = ""
        self._heads_listed_once = False
        self._journal_op: str | None = None  # "finish" or "undo" started from the message bar
        self._journal_destination = ""
        self._offered_journal = ""  # the interrupted move the message bar offers to finish or undo
        db_lock = threading.Lock()
        self.worker = WorkerClient(self.settings, options, db_lock, self)
        self.thumbnails = ThumbnailCache(self.settings.cache_path, db_lock, DEFAULT_TILE, parent=self)
        self.model = PhotoModel(self.thumbnails, self)
        self.problems_model = ProblemsModel(self)
        self.problems_dialog = ProblemsDialog(self.problems_model, self)
        self.labeller = Labeller(self.model, self.worker, self)
        self._build_central()
        self._build_menus()
        self._build_status_bar()
        self._connect_worker()
        self._connect_labelling()
        self._restore_preferences()
        self._update_status()
        self._update_head_actions()
        self.worker.list_heads(quiet=True)
        self.worker.load_categories()
        QTimer.singleShot(WARM_UP_DELAY_MS, self.worker.warm_up)
        QTimer.singleShot(WARM_UP_DELAY_MS, self.worker.list_journals)

    # ---- building ----------------------------------------------------------------------
    def _build_central(self) -> None:
        self.panel = SidePanel()
        self.panel.setMinimumWidth(220)
        self.panel.categoriesChanged.connect(self._on_categories_typed)
        self.panel.thresholdChanged.connect(self._on_threshold)
        self.panel.filterChanged.connect(self.model.set_filter)

        self.message_bar = MessageBar()
        self.empty_state = EmptyState()
        self.empty_state.openRequested.connect(self.choose_folder)
        self.empty_state.recentRequested.connect(lambda folder: self.open_folders([folder]))

        self.view = PhotoGridView()
        self.view.setModel(self.model)
        self.view.previewRequested.connect(self.open_preview)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._show_context_menu)
        self.view.selectionModel().selectionChanged.connect(self._update_status)
        self.view.verticalScrollBar().valueChanged.connect(self._schedule_prefetch)
        self.thumbnails.ready.connect(self.view.viewport().update)
        self.model.groupsChanged.connect(self._on_groups_changed)
        self.model.modelReset.connect(self._schedule_prefetch)

        self.grid_page = QWidget()
        grid_layout = QVBoxLayout(self.grid_page)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        grid_layout.setSpacing(0)
        grid_layout.addLayout(self._build_grid_header())
        grid_layout.addWidget(self.view, 1)

        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_state)
        self.stack.addWidget(self.grid_page)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(8, 8, 8, 0)
        right_layout.setSpacing(6)
        right_layout.addWidget(self.message_bar)
        right_layout.addWidget(self.stack, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.panel)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([270, 1000])
        self.splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.splitter)

        self._prefetch_timer = QTimer(self, singleShot=True, interval=PREFETCH_DELAY_MS)
        self._prefetch_timer.timeout.connect(self._prefetch_visible)

    def _build_grid_header(self) -> QHBoxLayout:
        header = QHBoxLayout()
        header.setContentsMargins(6, 2, 2, 6)
        self.group_title = QLabel()
        font = self.group_title.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setBold(True)
        self.group_title.setFont(font)
        header.addWidget(self.group_title)
        header.addStretch(1)
        header.addWidget(QLabel("Sort by:"))
        self.sort_combo = QComboBox()
        self.sort_combo.addItem("Name", "name")
        self.sort_combo.addItem("Confidence", "confidence")
        self.sort_combo.currentIndexChanged.connect(lambda _i: self.set_sort(self.sort_combo.currentData()))
        header.addWidget(self.sort_combo)
        return header

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_label = QLabel()
        bar.addWidget(self.status_label, 1)
        self.progress_label = QLabel()
        self.progress_bar = QProgressBar()
        self.progress_bar.setFixedWidth(180)
        self.progress_bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop indexing; the photos indexed so far are kept")
        self.cancel_button.clicked.connect(self.cancel_indexing)
        self.problems_button = QToolButton()
        self.problems_button.setAutoRaise(True)
        self.problems_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.problems_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
        self.problems_button.clicked.connect(self.show_problems)
        for widget in (self.progress_label, self.progress_bar, self.cancel_button, self.problems_button):
            bar.addPermanentWidget(widget)
        self._set_busy(False)
        self.problems_button.hide()

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = self._action(file_menu, "&Open Folder…", self.choose_folder, QKeySequence.StandardKey.Open)
        self._action(file_menu, "&Add Folder…", lambda: self.choose_folder(replace=False), "Ctrl+Shift+O")
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        self.export_action = self._action(file_menu, "&Export Sorted Folders…", self.open_export_dialog, "Ctrl+E")
        file_menu.addSeparator()
        self.cancel_action = self._action(file_menu, "&Stop Indexing", self.cancel_indexing, "Ctrl+.")
        file_menu.addSeparator()
        quit_action = self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        quit_action.setShortcuts([QKeySequence("Ctrl+Q")])
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)

        edit_menu = self.menuBar().addMenu("&Edit")
        self.undo_action = self.labeller.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Undo))
        self.redo_action = self.labeller.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence(QKeySequence.StandardKey.Redo), QKeySequence("Ctrl+Y")])
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)
        edit_menu.addSeparator()
        self._action(edit_menu, "Select &All", self.view.selectAll, QKeySequence.StandardKey.SelectAll)
        self._action(edit_menu, "Select &None", self.view.clearSelection, "Ctrl+Shift+A")
        edit_menu.addSeparator()
        self.journals_action = self._action(edit_menu, "Undo a &Move Export…", self.open_journals_dialog)
        edit_menu.addSeparator()
        self.settings_action = self._action(edit_menu, "&Settings…", self.open_settings, "Ctrl+,")
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)

        view_menu = self.menuBar().addMenu("&View")
        self.preview_action = self._action(view_menu, "&Preview", self._preview_current, "Space")
        self.preview_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.view.addAction(self.preview_action)
        view_menu.addSeparator()
        self.group_action = self._action(view_menu, "&Group by Category", self._on_group_toggled)
        self.group_action.setCheckable(True)
        self.group_action.setChecked(True)
        sort_menu = view_menu.addMenu("S&ort By")
        self.sort_actions = QActionGroup(self)
        for key, label in (("name", "&Name"), ("confidence", "&Confidence")):
            action = self._action(sort_menu, label, lambda _c=False, k=key: self.set_sort(k))
            action.setCheckable(True)
            action.setData(key)
            self.sort_actions.addAction(action)
        view_menu.addSeparator()
        larger = self._action(view_menu, "&Larger Thumbnails", lambda: self._zoom(+1), QKeySequence.StandardKey.ZoomIn)
        larger.setShortcuts([QKeySequence(QKeySequence.StandardKey.ZoomIn), QKeySequence("Ctrl+=")])
        self._action(view_menu, "S&maller Thumbnails", lambda: self._zoom(-1), QKeySequence.StandardKey.ZoomOut)
        view_menu.addSeparator()
        self._action(view_menu, "Unreadable &Photos…", self.show_problems)

        self._build_classifier_menu()
        self._build_label_actions()

        help_menu = self.menuBar().addMenu("&Help")
        about = self._action(help_menu, "&About photosort", self._about)
        about.setMenuRole(QAction.MenuRole.AboutRole)

    def _build_classifier_menu(self) -> None:
        """One menu for classifiers, in the menu bar and behind the panel's Classifiers button."""
        menu = self.menuBar().addMenu("&Classifier")
        self.new_head_action = self._action(menu, "&New Classifier…", self.new_classifier, "Ctrl+Shift+N")
        self._action(menu, "New From the &Current Categories…", lambda: self.new_classifier(from_categories=True))
        menu.addSeparator()
        self.rename_head_action = self._action(menu, "&Rename…", self.rename_classifier)
        self.delete_head_action = self._action(menu, "&Delete…", self.delete_classifier)
        menu.addSeparator()
        self.export_head_action = self._action(menu, "&Export to File…", self.export_classifier)
        self._action(menu, "&Import from File…", self.import_classifier)
        menu.addSeparator()
        self.train_action = self._action(menu, "&Train Now", self.labeller.train_now, "Ctrl+T")
        self.least_sure_action = self._action(menu, "&Label These Next", self.set_least_sure, "Ctrl+L")
        self.least_sure_action.setCheckable(True)
        self.classifier_menu = menu
        self.panel.classifier_bar.manage_button.setMenu(menu)

    def _build_label_actions(self) -> None:
        """1-9 label the selection with the Nth class, 0 or Backspace remove labels: keys of the grid only."""
        self.label_actions: list[QAction] = []
        for k in range(KEYED_CLASSES):
            action = QAction(f"Label as class {k + 1}", self)
            action.setShortcut(QKeySequence(str(k + 1)))
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            action.triggered.connect(lambda _c=False, index=k: self.label_selection(index))
            self.view.addAction(action)
            self.label_actions.append(action)
        self.unlabel_action = QAction("Remove Label", self)
        self.unlabel_action.setShortcuts([QKeySequence("0"), QKeySequence(Qt.Key.Key_Backspace)])
        self.unlabel_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.unlabel_action.triggered.connect(lambda: self.label_selection(None))
        self.view.addAction(self.unlabel_action)

    def _action(self, menu: QMenu, text: str, slot, shortcut: QKeySequence.StandardKey | str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _connect_worker(self) -> None:
        worker = self.worker.worker
        worker.started.connect(self._on_started)
        worker.progress.connect(self._on_progress)
        worker.photosAdded.connect(self._on_photos)
        worker.scoresReady.connect(self._on_scores)
        worker.problemsFound.connect(self._on_problems)
        worker.finished.connect(self._on_finished)
        worker.cancelled.connect(self._on_cancelled)
        worker.failed.connect(self._on_failed)
        worker.status.connect(self._on_worker_status)
        worker.notice.connect(self._on_notice)
        worker.cacheCleared.connect(self._on_cache_cleared)
        worker.headsListed.connect(self._on_heads_listed)
        worker.headActivated.connect(self._on_head_activated)
        worker.headTrained.connect(self._on_head_trained)
        worker.journalsListed.connect(self._on_journals_listed)
        worker.exportFinished.connect(self._on_journal_finished)
        worker.undoFinished.connect(self._on_journal_undone)
        worker.categoriesLoaded.connect(self._on_categories_loaded)

    def _connect_labelling(self) -> None:
        self.panel.classifier_bar.classifierChosen.connect(self.choose_classifier)
        head_panel = self.panel.head_panel
        head_panel.labelRequested.connect(self.label_selection)
        head_panel.clearRequested.connect(lambda: self.label_selection(None))
        head_panel.trainRequested.connect(self.labeller.train_now)
        head_panel.leastSureToggled.connect(self.set_least_sure)
        self.labeller.labelsChanged.connect(self._on_labels_changed)
        self.labeller.trainingRequested.connect(lambda: self.panel.head_panel.set_status("Learning from the labels…"))

    def _restore_preferences(self) -> None:
        geometry = self.prefs.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 800)
        splitter = self.prefs.splitter_state()
        if splitter is not None:
            self.splitter.restoreState(splitter)
        self.panel.set_threshold(self.prefs.threshold())
        self.model.set_threshold(self.prefs.threshold())
        self.set_sort(self.prefs.sort_key())
        self.empty_state.set_recent(self.prefs.recent_folders())
        self._refresh_recent_menu()
        self._categories_loaded = False  # the typed categories come from the user's library (library.db)

    # ---- opening folders ------------------------------------------------------------------
    def choose_folder(self, replace: bool = True) -> None:
        start = self._folders[0] if self._folders else os.path.expanduser("~")
        folder = QFileDialog.getExistingDirectory(self, "Open a photo folder" if replace else "Add a photo folder", start)
        if folder:
            self.open_folders([folder], replace=replace)

    def open_folders(self, folders: list[str], replace: bool = True) -> int:
        """Show these folders' photos (from the cache at once) and index what changed; returns the job number."""
        folders = [os.path.abspath(os.path.expanduser(f)) for f in folders]
        if replace:
            self._folders, self._roots = list(folders), []
            self.model.clear()
            self.problems_model.set_problems([], [])
            self._update_problems_button()
        else:
            self._folders += [f for f in folders if f not in self._folders]
        self.message_bar.dismiss()
        self._busy_job = self.worker.open_folders(folders, replace)
        self._set_busy(True, "Opening…")
        self.view.set_empty_text("Looking for photos…")
        self.stack.setCurrentWidget(self.grid_page)
        self._update_title()
        return self._busy_job

    def cancel_indexing(self) -> None:
        if self._busy_job is not None:
            self.worker.cancel()
            self.progress_label.setText("Stopping…")
            self.cancel_button.setEnabled(False)

    @property
    def busy(self) -> bool:
        return self._busy_job is not None

    # ---- drag and drop ------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if folders_from_mime(event.mimeData()):
            event.acceptProposedAction()
            self.empty_state.set_drag_active(True)
            self.statusBar().showMessage("Drop to open " + ", ".join(os.path.basename(f) for f in
                                                                       folders_from_mime(event.mimeData())))
        else:
            event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self.empty_state.set_drag_active(False)
        self.statusBar().clearMessage()
        super().dragLeaveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        self.empty_state.set_drag_active(False)
        self.statusBar().clearMessage()
        folders = folders_from_mime(event.mimeData())
        if not folders:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_folders(folders)

    # ---- worker messages ------------------------------------------------------------------
    def _current(self, generation: int) -> bool:
        return generation == self.worker.generation

    def _on_started(self, job: int, generation: int, roots: list[str]) -> None:
        """The worker found these folders readable: remember them as recent."""
        if not self._current(generation) or not roots:
            return
        self._roots += [r for r in roots if r not in self._roots]
        self.prefs.remember_folders(roots)
        self.empty_state.set_recent(self.prefs.recent_folders())
        self._refresh_recent_menu()

    def _on_progress(self, generation: int, progress: Progress) -> None:
        if not self._current(generation) or self._busy_job is None or not self.cancel_button.isEnabled():
            return
        self.progress_label.setText(describe_progress(progress))
        if progress.phase == "indexing" and self.model.photo_count() == 0:
            self.view.set_empty_text(f"Indexing {progress.total:,} photos; they appear here as they are done…")
        if progress.phase == "scanning" or progress.total == 0:
            self.progress_bar.setRange(0, 0)
        else:
            self.progress_bar.setRange(0, progress.total)
            self.progress_bar.setValue(progress.done)

    def _on_photos(self, batch: PhotoBatch) -> None:
        if not self._current(batch.generation):
            return
        if batch.replace:
            self.model.replace_photos(batch.ids, batch.paths, batch.categories, batch.probabilities, batch.labels)
        else:
            self.model.add_photos(batch.ids, batch.paths, batch.categories, batch.probabilities, batch.labels)
        if batch.labels and self._active_head:  # labels of photos only now opened count as well
            self.panel.head_panel.set_counts(self.model.label_counts(), self.panel.head_panel.accuracy)
        self._schedule_prefetch()

    def _on_scores(self, scores: Scores) -> None:
        if self._active_head:
            return  # typed categories wait while a classifier sorts the grid
        self.model.set_scores(scores.categories, scores.ids, scores.probabilities, labels={})
        self.view.set_show_categories(bool(scores.categories))
        self.panel.set_busy(False)
        self.categoriesApplied.emit()

    def _on_problems(self, generation: int, problems: list[tuple[str, str]]) -> None:
        if self._current(generation):
            self.problems_model.set_problems(problems, self._roots)
            self._update_problems_button()

    def _on_finished(self, result: JobResult) -> None:
        if result.job != self._busy_job:
            return
        self._set_busy(False)
        if result.indexed:
            rate = result.indexed / result.seconds if result.seconds > 0 else 0.0
            self.statusBar().showMessage(f"Indexed {result.indexed:,} new photos in "
                                         f"{format_duration(result.seconds)} ({rate:.1f} photos/s)", 10000)
        self.view.set_empty_text("No photos found here." if self.model.photo_count() == 0 else "")
        if not result.reports and self.model.photo_count() == 0:
            self.stack.setCurrentWidget(self.empty_state)  # nothing could be opened
        self.indexingDone.emit(result)

    def _on_cancelled(self, result: JobResult) -> None:
        if result.job != self._busy_job:
            return
        self._set_busy(False)
        self.statusBar().showMessage(f"Stopped. The {self.model.photo_count():,} photos indexed so far are kept; "
                                     "open the folder again to finish.", 15000)
        self.view.set_empty_text("Stopped before any photo was indexed." if self.model.photo_count() == 0 else "")
        self.indexingDone.emit(result)

    def _on_failed(self, failure: Failure) -> None:
        action = {
            Action.SETTINGS: ("Settings…", self.open_settings),
            Action.OPEN_FOLDER: ("Open Folder…", self.choose_folder),
            Action.RETRY: ("Try Again", self._retry),
            Action.REPORT: ("Show Log", self._show_log),
        }.get(failure.action)
        self.message_bar.show_message(failure.message, "error", action)
        self.panel.set_busy(False)
        if failure.job is not None and failure.job == self._busy_job:
            self._set_busy(False)
            hint = "The photos appear here once the model loads." if failure.action == Action.SETTINGS else ""
            self.view.set_empty_text(hint if self.model.photo_count() == 0 else "")
        if not self._folders:
            self.stack.setCurrentWidget(self.empty_state)
        self.errorShown.emit(failure)

    def _retry(self) -> None:
        """The action offered after a busy database or a full disk: open the folders again (only changes are redone)."""
        if self._folders:
            self.open_folders(self._folders)

    def _show_log(self) -> None:
        log_file = self.settings.folder / "photosort.log"
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(log_file if log_file.exists() else self.settings.folder)))

    def _on_worker_status(self, text: str) -> None:
        if text and self._busy_job is not None:
            self.progress_label.setText(text)
            self.progress_bar.setRange(0, 0)
            if self.model.photo_count() == 0:
                self.view.set_empty_text(text)
        elif text:
            self.statusBar().showMessage(text)
        else:
            self.statusBar().clearMessage()

    def _on_notice(self, text: str) -> None:
        self.message_bar.show_message(text, "info")
        self.noticeShown.emit(text)

    def _on_cache_cleared(self, deleted: list[str]) -> None:
        self.thumbnails.clear()
        self.model.clear()
        self.worker.list_heads()
        self.worker.activate_head("")
        if self._settings_dialog is not None:
            self._settings_dialog.cache_cleared()
        self.statusBar().showMessage("The cache was cleared.", 8000)
        if self._folders:
            self.open_folders(self._folders)

    # ---- categories, grouping, sorting ---------------------------------------------------------
    def _on_categories_loaded(self, text: str) -> None:
        """The categories typed last time; a photosort 0.1 window kept them in its preferences file."""
        self._categories_loaded = True
        legacy = self.prefs.categories_text()
        if not text and legacy:
            text = legacy
            self.worker.save_categories(text)
        if text and not self.panel.text():
            self.panel.set_text(text)

    def _on_categories_typed(self, categories: tuple) -> None:
        if self._categories_loaded:
            self.worker.save_categories(self.panel.text())
        self.panel.set_busy(self.model.photo_count() > 0)
        self.worker.set_categories(categories)

    def _on_threshold(self, value: float) -> None:
        self.model.set_threshold(value)
        self.prefs.set_threshold(value)

    def _on_groups_changed(self) -> None:
        self.panel.set_groups(self.model.groups(), self.model.filter)
        self._update_status()

    def _on_group_toggled(self, grouped: bool) -> None:
        self.model.set_sort(self.model.sort_key, grouped)

    def set_sort(self, key: str) -> None:
        key = key if key in ("name", "confidence") else "name"
        self.model.set_sort(key)
        self.prefs.set_sort_key(key)
        self.sort_combo.blockSignals(True)
        self.sort_combo.setCurrentIndex(max(0, self.sort_combo.findData(key)))
        self.sort_combo.blockSignals(False)
        for action in self.sort_actions.actions():
            action.setChecked(action.data() == key)

    def _zoom(self, step: int) -> None:
        sizes = list(TILE_SIZES)
        current = min(range(len(sizes)), key=lambda i: abs(sizes[i] - self.view.tile_px))
        new = sizes[max(0, min(len(sizes) - 1, current + step))]
        if new != self.view.tile_px:
            self.view.set_tile_size(new)
            self.thumbnails.set_tile_size(new, self.devicePixelRatioF())
            self.view.viewport().update()

    # ---- classifiers --------------------------------------------------------------------------
    @property
    def active_head(self) -> str:
        """The classifier sorting the grid ("" : the typed categories)."""
        return self._active_head

    def heads(self) -> list[ClassifierSummary]:
        return list(self._heads)

    def choose_classifier(self, name: str) -> None:
        """Sort the grid with this classifier ("" : the typed categories); one made for another model is retrained."""
        summary = next((h for h in self._heads if h.name == name), None)
        if summary is not None and not summary.for_this_model:
            answer = QMessageBox.question(
                self, "Train again for this model?",
                f"The classifier '{name}' was made for another model ({summary.model_key}). Train it again for "
                f"this model from its {summary.labels:,} labels?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                self.panel.classifier_bar.set_current(self._active_head)
                return
            self.labeller.flush()
            self.worker.retrain_head(name)
            return
        self.labeller.flush()
        self.worker.activate_head(name)

    def _on_heads_listed(self, summaries: list[ClassifierSummary]) -> None:
        self._heads = list(summaries)
        self.panel.classifier_bar.set_heads(self._heads, self._active_head)
        if not self._heads_listed_once:  # start-up: bring back the classifier used last time
            self._heads_listed_once = True
            saved = self.prefs.active_classifier()
            if any(h.name == saved and h.for_this_model for h in self._heads):
                self.worker.activate_head(saved)
        self.headsListed.emit()

    def _on_head_activated(self, state: HeadState) -> None:
        self._active_head = state.name
        self.labeller.set_head(state.name)
        self.model.set_scores(state.categories, state.ids, state.probabilities, labels=state.labels)
        self.view.set_show_categories(bool(state.categories))
        self.panel.show_classifier(state.name)
        if state.name:
            self.panel.head_panel.set_classes([c.name for c in state.categories], self.model.label_counts(),
                                              state.accuracy)
            self.panel.head_panel.set_status("")
        self.set_least_sure(bool(state.name) and self.model.least_sure_mode)  # set_scores re-ranked it
        self.prefs.set_active_classifier(state.name)
        self._update_head_actions()
        self._update_status()
        self.classifierApplied.emit(state.name)

    def _on_head_trained(self, trained: HeadTrained) -> None:
        if trained.name != self._active_head:
            return  # the user switched classifiers meanwhile
        self.model.set_scores(self.model.categories, trained.ids, trained.probabilities)
        self.panel.head_panel.set_counts(self.model.label_counts(), trained.report.accuracy)
        labels = trained.report.labels
        took = f"{trained.seconds * 1000:.0f} ms" if trained.seconds < 1 else f"{trained.seconds:.1f} s"
        self.panel.head_panel.set_status(f"Learned from {labels:,} label{'s' if labels != 1 else ''} in {took}.")
        self._update_status()
        self.headTrained.emit(trained)

    def _update_head_actions(self) -> None:
        has_head = bool(self._active_head)
        for action in (self.rename_head_action, self.delete_head_action, self.export_head_action,
                       self.train_action, self.least_sure_action):
            action.setEnabled(has_head)

    def new_classifier(self, from_categories: bool = False) -> None:
        dialog = NewClassifierDialog([h.name for h in self._heads], self.panel.text(), self)
        if from_categories:
            dialog.use_current_categories()
        dialog.accepted.connect(lambda: self.worker.create_head(dialog.name(), dialog.categories()))
        dialog.finished.connect(self._forget_new_classifier_dialog)
        self._new_classifier_dialog = dialog
        dialog.open()

    @property
    def new_classifier_dialog(self) -> NewClassifierDialog | None:
        return self._new_classifier_dialog

    def _forget_new_classifier_dialog(self) -> None:
        if self._new_classifier_dialog is not None:
            self._new_classifier_dialog.deleteLater()
            self._new_classifier_dialog = None

    def rename_classifier(self) -> None:
        old = self._active_head
        if not old:
            return
        new, ok = QInputDialog.getText(self, "Rename Classifier", f"New name for '{old}':", text=old)
        if ok and new.strip() and new.strip() != old:
            self.labeller.flush()
            self.worker.rename_head(old, new.strip())

    def delete_classifier(self) -> None:
        name = self._active_head
        if not name:
            return
        labels = len(self.model.labels())
        answer = QMessageBox.question(
            self, "Delete classifier?",
            f"Delete the classifier '{name}' and its {labels:,} label{'s' if labels != 1 else ''}? "
            "Your photos are not touched.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self.labeller.set_head("")
            self.worker.delete_head(name)

    def export_classifier(self) -> None:
        name = self._active_head
        if not name:
            return
        start = os.path.join(os.path.expanduser("~"), f"{name}{HEAD_SUFFIX}")
        path, _filter = QFileDialog.getSaveFileName(self, "Export Classifier", start, HEAD_FILE_FILTER)
        if path:
            if not path.endswith(HEAD_SUFFIX):
                path += HEAD_SUFFIX
            self.labeller.flush()
            self.worker.export_head(name, path)

    def import_classifier(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, "Import Classifier", os.path.expanduser("~"),
                                                    f"{HEAD_FILE_FILTER};;All files (*)")
        if path:
            self.labeller.flush()
            self.worker.import_head(path)

    # ---- labelling ------------------------------------------------------------------------------
    def selected_photo_ids(self) -> list[int]:
        return [self.model.photo_id(i.row()) for i in self.view.selectionModel().selectedIndexes()]

    def label_selection(self, class_index: int | None) -> None:
        """Label the selected photos with this class (None: remove their labels)."""
        if not self._active_head:
            self.message_bar.show_message("To label photos, create a classifier: it learns from your labels.",
                                          "info", ("New Classifier…", self.new_classifier))
            return
        if class_index is not None and class_index >= len(self.model.categories):
            return
        ids = self.selected_photo_ids()
        if not ids:
            self.statusBar().showMessage("Select photos first, then press a class's number.", 5000)
            return
        self.labeller.label(ids, class_index)

    def _on_labels_changed(self) -> None:
        self.panel.head_panel.set_counts(self.model.label_counts(), self.panel.head_panel.accuracy)
        self._update_status()

    def set_least_sure(self, on: bool) -> None:
        """"Label these next": show the photos the classifier is least sure about, least sure first."""
        on = bool(on) and bool(self._active_head)
        self.model.set_least_sure(on)
        self.panel.head_panel.set_least_sure(on)
        self.least_sure_action.setChecked(on)
        self._update_status()
        if on:
            self.view.scrollToTop()

    def _show_context_menu(self, pos: QPoint) -> None:
        index = self.view.indexAt(pos)
        if index.isValid() and not self.view.selectionModel().isSelected(index):
            self.view.setCurrentIndex(index)
        menu = self.context_menu()
        menu.exec(self.view.viewport().mapToGlobal(pos))
        menu.deleteLater()

    def context_menu(self) -> QMenu:
        """The grid's context menu: label the selection with any class, or remove labels."""
        menu = QMenu(self)
        if self._active_head:
            label_menu = menu.addMenu("&Label As")
            for k, category in enumerate(self.model.categories):
                action = label_menu.addAction(category.name)
                if k < KEYED_CLASSES:
                    action.setShortcut(QKeySequence(str(k + 1)))
                action.triggered.connect(lambda _c=False, index=k: self.label_selection(index))
            remove = menu.addAction("&Remove Label")
            remove.setShortcut(QKeySequence("0"))
            remove.triggered.connect(lambda: self.label_selection(None))
        else:
            menu.addAction("&New Classifier to Label Photos…").triggered.connect(self.new_classifier)
        menu.addSeparator()
        menu.addAction(self.preview_action)
        return menu

    # ---- export ------------------------------------------------------------------------------------
    def open_export_dialog(self) -> None:
        if self._export_dialog is not None:
            self._export_dialog.raise_()
            return
        if self.model.photo_count() == 0:
            self.message_bar.show_message("Open a folder of photos first; then export them sorted into folders.",
                                          "info", ("Open Folder…", self.choose_folder))
            return
        dialog = ExportDialog(self.worker, self._heads, self._active_head, self.model.threshold,
                              self.prefs.export_destination(), self)
        dialog.finished.connect(self._forget_export_dialog)
        self._export_dialog = dialog
        dialog.open()
        dialog.request_preview()

    @property
    def export_dialog(self) -> ExportDialog | None:
        return self._export_dialog

    def _forget_export_dialog(self) -> None:
        dialog = self._export_dialog
        if dialog is not None:
            destination = dialog.choice().destination
            if destination:
                self.prefs.set_export_destination(destination)
            dialog.deleteLater()
            self._export_dialog = None

    def open_journals_dialog(self) -> None:
        if self._journals_dialog is not None:
            self._journals_dialog.raise_()
            return
        dialog = JournalsDialog(self.worker, self)
        dialog.finished.connect(self._forget_journals_dialog)
        self._journals_dialog = dialog
        dialog.open()

    @property
    def journals_dialog(self) -> JournalsDialog | None:
        return self._journals_dialog

    def _forget_journals_dialog(self) -> None:
        if self._journals_dialog is not None:
            self._journals_dialog.deleteLater()
            self._journals_dialog = None

    def _on_journals_listed(self, journals: list[JournalInfo]) -> None:
        """At start-up (and after each move), offer to finish or undo a move that was interrupted."""
        interrupted = [j for j in journals if j.state == "interrupted"]
        if self._offered_journal and self._offered_journal not in {j.path for j in interrupted}:
            self._offered_journal = ""  # finished or undone meanwhile (e.g. from Edit ▸ Undo a Move Export…)
            if self._journal_op is None:
                self.message_bar.dismiss()
        if not interrupted or self._journal_op is not None or self._journals_dialog is not None:
            return
        info = interrupted[-1]
        self._offered_journal = info.path
        more = f" ({len(interrupted) - 1} more in Edit ▸ Undo a Move Export…)" if len(interrupted) > 1 else ""
        self.message_bar.show_message(
            f"An export was interrupted while moving photos ({info.describe()}). Finish moving them, or undo to "
            f"put them back{more}.", "warning",
            ("Finish Move", lambda: self.finish_move(info)), ("Undo Move", lambda: self.undo_move(info)))

    def finish_move(self, journal: JournalInfo) -> None:
        self._journal_op = "finish"
        self._journal_destination = journal.destination
        self.message_bar.show_message("Finishing the interrupted move…", "info")
        self.worker.finish_move(journal.path)

    def undo_move(self, journal: JournalInfo) -> None:
        self._journal_op = "undo"
        self.message_bar.show_message("Putting the photos back…", "info")
        self.worker.undo_move(journal.path)

    def _on_journal_finished(self, outcome: ExportOutcome) -> None:
        if self._journal_op != "finish":
            return
        self._journal_op = None
        text = outcome.error if outcome.result is None else describe_result(
            "move", outcome.result, Path(self._journal_destination), outcome.error)
        self.message_bar.show_message(text, "error" if outcome.error else "info")
        self.journalHandled.emit(text)

    def _on_journal_undone(self, outcome: UndoOutcome) -> None:
        if self._journal_op != "undo":
            return
        self._journal_op = None
        text = describe_undo(outcome.result) if outcome.result is not None else outcome.error
        self.message_bar.show_message(text, "error" if outcome.error else "info")
        self.journalHandled.emit(text)

    # ---- thumbnails ------------------------------------------------------------------------
    def _schedule_prefetch(self) -> None:
        self._prefetch_timer.start()

    def _prefetch_visible(self) -> None:
        """Queue the next screenful, then the visible tiles again so they stay first in line."""
        visible = self.view.visible_rows()
        if not visible:
            return
        below = range(visible.stop, min(self.model.rowCount(), visible.stop + len(visible)))
        self.thumbnails.prefetch([self.model.photo_id(r) for r in reversed(below)])
        self.thumbnails.prefetch([self.model.photo_id(r) for r in reversed(visible)])

    # ---- dialogs ------------------------------------------------------------------------------
    def _preview_current(self) -> None:
        self.open_preview(self.view.currentIndex())

    def open_preview(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        if self._preview is None:
            self._preview = PreviewDialog(self.model, index.row(), self)
            self._preview.finished.connect(self._forget_preview)
            self._preview.show()
        else:
            self._preview.show_row(index.row())
            self._preview.raise_()
            self._preview.activateWindow()

    @property
    def preview(self) -> PreviewDialog | None:
        return self._preview

    def _forget_preview(self) -> None:
        if self._preview is not None:
            self._preview.deleteLater()
            self._preview = None

    def show_problems(self) -> None:
        self.problems_dialog.show()
        self.problems_dialog.raise_()

    def open_settings(self) -> None:
        if self._settings_dialog is not None:
            self._settings_dialog.raise_()
            return
        dialog = SettingsDialog(self.settings, self)
        dialog.clearCacheRequested.connect(self.worker.clear_cache)
        dialog.accepted.connect(lambda: self.apply_engine_choice(*dialog.chosen()))
        dialog.finished.connect(self._forget_settings_dialog)
        self._settings_dialog = dialog
        dialog.open()

    @property
    def settings_dialog(self) -> SettingsDialog | None:
        return self._settings_dialog

    def _forget_settings_dialog(self) -> None:
        if self._settings_dialog is not None:
            self._settings_dialog.deleteLater()
            self._settings_dialog = None

    def apply_engine_choice(self, model: str, device: str, precision: str) -> None:
        """Save the choice (for the window and the CLI alike); with a different engine, restart it and sort again."""
        try:
            save_choices(self.settings.folder, model, device, precision)
        except PhotosortError as exc:
            self._on_failed(Failure.of(exc))
        chosen = self.settings.with_changes(model=model, device=device, mode=precision)
        if chosen == self.settings:
            return
        self.settings = chosen
        self.message_bar.dismiss()
        self.worker.apply_settings(chosen)
        self.worker.list_heads()
        self.worker.activate_head(self._active_head)
        if self._folders:
            self.open_folders(self._folders)

    def _about(self) -> None:
        QMessageBox.about(self, "About photosort",
                          f"<b>photosort {__version__}</b><p>Sort your photos into folders with CLIP, on your own "
                          f"computer.</p><p>Model: {self.settings.model}</p>")

    # ---- status ----------------------------------------------------------------------------
    def _set_busy(self, busy: bool, text: str = "") -> None:
        if not busy:
            self._busy_job = None
        for widget in (self.progress_label, self.progress_bar, self.cancel_button):
            widget.setVisible(busy)
        self.cancel_button.setEnabled(busy)
        self.cancel_action.setEnabled(busy)
        if busy:
            self.progress_label.setText(text)
            self.progress_bar.setRange(0, 0)

    def _update_status(self) -> None:
        n = self.model.photo_count()
        parts = [f"{n:,} photo{'s' if n != 1 else ''}"] if self._folders else ["No folder open"]
        if self.model.categories:
            n = len(self.model.categories)
            parts.append(f"{self._active_head}: {n} classes" if self._active_head else f"{n} categories")
        labelled = len(self.model.labels())
        if labelled:
            parts.append(f"{labelled:,} labelled")
        selected = len(self.selected_photo_ids())
        if selected:
            parts.append(f"{selected:,} selected")
        self.status_label.setText(" · ".join(parts))
        title = self.model.group_label(self.model.filter)
        if self.model.least_sure_mode:
            title = "Label these next" + ("" if self.model.filter is None else f" · {title}")
        self.group_title.setText(f"{title}  ·  {self.model.rowCount():,}")

    def _update_problems_button(self) -> None:
        n = self.problems_model.rowCount()
        self.problems_button.setText(f"{n:,} unreadable")
        self.problems_button.setToolTip("Photos that could not be read: click to see why")
        self.problems_button.setVisible(n > 0)

    def _update_title(self) -> None:
        names = ", ".join(os.path.basename(f.rstrip(os.sep)) or f for f in self._folders)
        self.setWindowTitle(f"{names} — photosort" if names else "photosort")

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.prefs.recent_folders()
        for folder in recent:
            action = self.recent_menu.addAction(folder)
            action.triggered.connect(lambda _c=False, f=folder: self.open_folders([f]))
        self.recent_menu.setEnabled(bool(recent))

    # ---- window lifecycle ---------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.thumbnails.set_tile_size(self.view.tile_px, self.devicePixelRatioF())

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.DevicePixelRatioChange:  # moved to a screen with another scale
            self.thumbnails.set_tile_size(self.view.tile_px, self.devicePixelRatioF())
            self.view.viewport().update()
        return super().event(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._may_stop_export():
            event.ignore()
            return
        self.labeller.flush()  # a training still waiting runs before the worker stops
        self.prefs.set_geometry(self.saveGeometry())
        self.prefs.set_splitter_state(self.splitter.saveState())
        if self._categories_loaded:
            self.worker.save_categories(self.panel.text())
        self.prefs.sync()
        self.hide()
        self.shutdown()
        event.accept()

    def _may_stop_export(self) -> bool:
        """Closing during a move asks first; yes stops after the photo being moved (never half a photo)."""
        dialog = self._export_dialog
        if dialog is None or not dialog.running:
            return True
        if dialog.running_mode == "move":
            answer = QMessageBox.question(
                self, "Stop moving photos?",
                "Photos are being moved. Stop after the current photo and quit?\n\nThe photos moved so far stay "
                "where they are now; next time you can finish the move or undo it (Edit ▸ Undo a Move Export…).",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                return False
        dialog.cancel()
        return True

    def shutdown(self) -> None:
        """Stop the worker after its current batch (or photo being exported) and wait for both threads."""
        self.worker.shutdown()
        self.thumbnails.shutdown()
        QThreadPool.globalInstance().waitForDone(5000)
