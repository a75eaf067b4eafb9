"""The main window: menus, the side panel, the grid (or the empty state), status and progress.

It wires widgets to the worker and holds no sorting, caching, training or
export logic: requests go to :class:`~photosort.gui.worker.WorkerClient`,
results come back as signals and land in
:class:`~photosort.gui.photo_model.PhotoModel`. Messages about a library that
is no longer shown (an older generation) are dropped, so dropping a new folder
mid-indexing never mixes two folders; predictions of a classifier that is no
longer in use are dropped the same way.

Long work (indexing here; exports, undo and finishing a move in their
dialogs) comes back through the one :class:`~.task_runner.TaskRunner`.
Classifier actions and labelling live in :mod:`.classifier_actions`, the
move-journal flows in :mod:`.move_journals`; this module only composes.
"""

from __future__ import annotations

import logging
import os
import threading

from PySide6.QtCore import QEvent, QMimeData, QModelIndex, QPoint, QSize, Qt, QThreadPool, QTimer, QUrl, Signal
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
from ..core.config import Settings, save_choices
from ..core.errors import Action, PhotosortError
from ..core.indexer import PipelineOptions
from ..core.progress import Progress
from ..core.scan import is_photo_name
from ..core.sorting import UNSURE
from ..core.wording import byte_size, plural
from .actions import add_action
from .classifier_actions import ClassifierActions
from .duplicates_actions import DuplicatesActions
from .empty_state import EmptyState
from .export_dialog import MOVE_EXPORTS_MENU, UNDO_MOVE_ACTION, ExportDialog
from .file_manager import copy_path, open_in_default_app, show_in_file_manager
from .folder_watcher import FolderWatcher
from .grid_view import DEFAULT_TILE, TILE_SIZES, PhotoGridView
from .labelling import Labeller
from .message_bar import MessageBar
from .move_journals import MoveJournals
from .photo_model import NOT_ANALYSED, SORT_KEYS, PhotoModel
from .preferences import Preferences
from .preview import PreviewDialog
from .problems import ProblemsDialog, ProblemsModel
from .resources import app_icon
from .search_field import SearchField
from .settings_dialog import SettingsDialog
from .shortcuts_dialog import SHEET_NAME, ShortcutsDialog
from .side_panel import SidePanel
from .tagging_actions import TaggingActions
from .task_runner import Failure, Task, TaskKind
from .thumbnail_cache import ThumbnailCache
from .worker import JobResult, PhotoBatch, PhotoDates, Scores, SearchResults, TagRequest, WorkerClient

log = logging.getLogger(__name__)

PREFETCH_DELAY_MS = 60
WARM_UP_DELAY_MS = 400
SEARCH_RESULTS = 200  # best matches shown for a search or Find Similar
LIBRARY_POLL_MS = 2000  # how often the window looks whether a photosort command changed the user's classifiers
MIN_WINDOW = QSize(780, 540)  # below this the side panel's buttons and the grid's header no longer fit
SORT_CHOICES = (("name", "&Name"), ("folder", "&Folder"), ("confidence", "&Confidence"), ("date", "&Date Taken"))


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
    if progress.phase == "downloading":  # the model, on the first run
        if progress.done >= progress.total:
            return "Model downloaded; loading it…"
        text = f"Downloading the model: {byte_size(progress.done)} of {byte_size(progress.total)}"
        if progress.rate > 0:
            text += f" · {byte_size(progress.rate)}/s"
        if progress.eta_s is not None:
            text += f" · about {format_duration(progress.eta_s)} left"
        return text
    verb = {"reading dates": "Reading capture dates", "thumbnails": "Making thumbnails"}.get(progress.phase, "Indexing")
    text = f"{verb} {progress.done:,} of {progress.total:,}"
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
    searchShown = Signal(object)  # SearchResults, once the grid shows them
    noticeShown = Signal(str)  # a notice (e.g. a classifier saved or imported) is in the message bar

    def __init__(self, settings: Settings, preferences: Preferences | None = None,
                 options: PipelineOptions | None = None) -> None:
        super().__init__()
        self.setWindowTitle("photosort")
        self.setWindowIcon(app_icon())
        self.setMinimumSize(MIN_WINDOW)
        self.setAcceptDrops(True)
        self.prefs = preferences if preferences is not None else Preferences()
        self.settings = settings  # flags > environment > settings.json > defaults, resolved by the core
        self._folders: list[str] = []
        self._roots: list[str] = []
        self._busy_task: Task | None = None  # the indexing the status bar shows (the latest asked for)
        self._downloading = False  # that indexing is downloading the model (the first run)
        self._search_request = 0  # the search whose results the grid waits for
        self._search_title = ""
        self._preview: PreviewDialog | None = None
        self._settings_dialog: SettingsDialog | None = None
        self._export_dialog: ExportDialog | None = None
        db_lock = threading.Lock()
        self.worker = WorkerClient(self.settings, options, db_lock, self)
        self.thumbnails = ThumbnailCache(self.settings.cache_path, db_lock, DEFAULT_TILE, parent=self)
        self.model = PhotoModel(self.thumbnails, self)
        self.problems_model = ProblemsModel(self)
        self.problems_dialog = ProblemsDialog(self.problems_model, self)
        self.labeller = Labeller(self.model, self.worker, self)
        self._build_central()
        self.duplicates = DuplicatesActions(self, self.worker, self.message_bar, self.settings, db_lock)
        self.stack.addWidget(self.duplicates.view)
        self.duplicates.view.backRequested.connect(self.show_grid)
        self.indexingDone.connect(lambda _result: self.duplicates.refresh_if_shown())
        self.moves = MoveJournals(self, self.worker, self.message_bar)
        self.tagging = TaggingActions(self, self.worker, self.message_bar, lambda: TagRequest(  # the export's sorting
            self.classifiers.active, self.panel.threshold(), self.classifiers.dial.target_accuracy()))
        self.watcher = FolderWatcher(self)
        self.watcher.changed.connect(self._on_folders_changed)
        self._rescan_waiting = False  # the folders changed while indexing: look again once it ends
        self.moves.movedPhotos.connect(self.rescan)
        self._build_menus()
        self._build_status_bar()
        self._connect_worker()
        self._restore_preferences()
        self._update_status()
        self.worker.list_classifiers(quiet=True)
        self.worker.load_categories()
        self._library_watch = QTimer(self, interval=LIBRARY_POLL_MS)  # a classifier made with the CLI shows up
        self._library_watch.timeout.connect(self.worker.notice_library_changes)
        self._library_watch.start()
        QTimer.singleShot(WARM_UP_DELAY_MS, self.worker.warm_up)
        QTimer.singleShot(WARM_UP_DELAY_MS, self.worker.list_journals)

    # ---- building ----------------------------------------------------------------------
    def _build_central(self) -> None:
        self.panel = SidePanel()
        self.panel.setMinimumWidth(220)
        self.panel.categoriesChanged.connect(self._on_categories_typed)
        self.panel.thresholdChanged.connect(self._on_threshold)
        self.panel.filterChanged.connect(self.model.set_filter)
        self.panel.groupClicked.connect(self._on_group_clicked)

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
        self.model.boxRatioChanged.connect(self.view.set_box_ratio)
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
        header.addSpacing(12)
        self.regroup_button = QPushButton("Regroup")
        self.regroup_button.setFlat(True)
        self.regroup_button.setToolTip("Photos hold still while you label. Regroup puts each where its label and the "
                                       "latest predictions say (R)")
        self.regroup_button.clicked.connect(self.regroup)
        self.regroup_button.setVisible(False)
        self.model.regroupPending.connect(self.regroup_button.setVisible)
        header.addWidget(self.regroup_button)
        header.addStretch(1)
        self.search_edit = SearchField()
        self.search_edit.searchRequested.connect(self.run_search)
        self.search_edit.cleared.connect(self._on_search_cleared)
        self.search_edit.escaped.connect(lambda: self.view.setFocus(Qt.FocusReason.ShortcutFocusReason))
        header.addWidget(self.search_edit, 1)
        header.addSpacing(8)
        header.addWidget(QLabel("Sort by:"))
        self.sort_combo = QComboBox()
        for key, text in SORT_CHOICES:
            self.sort_combo.addItem(text.replace("&", ""), key)
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
        self.open_action = add_action(file_menu, "&Open Folder…", self.choose_folder, QKeySequence.StandardKey.Open)
        add_action(file_menu, "&Add Folder…", lambda: self.choose_folder(replace=False), "Ctrl+Shift+O")
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        self.export_action = add_action(file_menu, "&Export Sorted Folders…", self.open_export_dialog, "Ctrl+E")
        file_menu.addAction(self.tagging.write_action)
        file_menu.addSeparator()
        self.rescan_action = add_action(file_menu, "Res&can Folders", self.rescan, "F5")
        self.cancel_action = add_action(file_menu, "&Stop Indexing", self.cancel_indexing, "Ctrl+.")
        file_menu.addSeparator()
        quit_action = add_action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        quit_action.setShortcuts([QKeySequence("Ctrl+Q")])
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)

        edit_menu = self.menuBar().addMenu("&Edit")
        self.undo_action = self.labeller.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Undo))
        self.redo_action = self.labeller.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence(QKeySequence.StandardKey.Redo), QKeySequence("Ctrl+Y")])
        for action, name in ((self.undo_action, "Undo"), (self.redo_action, "Redo")):
            action.setProperty(SHEET_NAME, name)  # their text names the step ("Undo Label 1 photo as forest")
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)
        edit_menu.addSeparator()
        add_action(edit_menu, "Select &All", self.view.selectAll, QKeySequence.StandardKey.SelectAll)
        add_action(edit_menu, "Select &None", self.view.clearSelection, "Ctrl+Shift+A")
        add_action(edit_menu, "&Find…", self._focus_search, QKeySequence.StandardKey.Find)
        edit_menu.addSeparator()
        self.journals_action = add_action(edit_menu, UNDO_MOVE_ACTION, self.moves.open_dialog)
        edit_menu.addAction(self.tagging.undo_action)
        edit_menu.addSeparator()
        self.settings_action = add_action(edit_menu, "&Settings…", self.open_settings, "Ctrl+,")
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)

        view_menu = self.menuBar().addMenu("&View")
        self.preview_action = add_action(view_menu, "&Preview", self._preview_current, "Space")
        self.preview_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.view.addAction(self.preview_action)
        self.back_action = add_action(view_menu, "&Back to the Groups", self.leave_search, "Escape")
        self.back_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)  # (the search field has its own)
        self.view.addAction(self.back_action)
        view_menu.addSeparator()
        self.regroup_action = add_action(view_menu, "&Regroup Now", self.regroup, "R")
        self.regroup_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.view.addAction(self.regroup_action)
        self.group_action = add_action(view_menu, "&Group by Category", self._on_group_toggled)
        self.group_action.setCheckable(True)
        self.group_action.setChecked(True)
        sort_menu = view_menu.addMenu("S&ort By")
        self.sort_actions = QActionGroup(self)
        for key, label in SORT_CHOICES:
            action = add_action(sort_menu, label, lambda _c=False, k=key: self.set_sort(k))
            action.setCheckable(True)
            action.setData(key)
            self.sort_actions.addAction(action)
        self.headers_action = add_action(view_menu, "Folder &Headers", self._on_headers_toggled)
        self.headers_action.setCheckable(True)
        self.headers_action.setStatusTip("When sorted by folder, each folder starts a new line under its name")
        view_menu.addSeparator()
        larger = add_action(view_menu, "&Larger Thumbnails", lambda: self._zoom(+1), QKeySequence.StandardKey.ZoomIn)
        larger.setShortcuts([QKeySequence(QKeySequence.StandardKey.ZoomIn), QKeySequence("Ctrl+=")])
        add_action(view_menu, "S&maller Thumbnails", lambda: self._zoom(-1), QKeySequence.StandardKey.ZoomOut)
        view_menu.addSeparator()
        add_action(view_menu, "Unreadable &Photos…", self.show_problems)
        view_menu.addSeparator()
        self.duplicates_action = add_action(view_menu, "&Duplicates", self.toggle_duplicates, "Ctrl+D")
        self.duplicates_action.setCheckable(True)
        self.stack.currentChanged.connect(
            lambda _i: self.duplicates_action.setChecked(self.stack.currentWidget() is self.duplicates.view))

        self.classifiers = ClassifierActions(self, self.worker, self.model, self.view, self.panel, self.labeller,
                                             self.message_bar, self.prefs)
        self.classifiers.changed.connect(self._update_status)

        help_menu = self.menuBar().addMenu("&Help")
        add_action(help_menu, "&Keyboard Shortcuts…", self.show_shortcuts, "Ctrl+/")
        about = add_action(help_menu, "&About photosort", self._about)
        about.setMenuRole(QAction.MenuRole.AboutRole)

    def _connect_worker(self) -> None:
        worker = self.worker.worker
        worker.foldersOpened.connect(self._on_folders_opened)
        worker.photosAdded.connect(self._on_photos)
        worker.datesChanged.connect(self._on_dates)
        worker.scoresReady.connect(self._on_scores)
        worker.problemsFound.connect(self._on_problems)
        worker.failed.connect(self._on_failed)
        worker.status.connect(self._on_worker_status)
        worker.notice.connect(self._on_notice)
        worker.cacheCleared.connect(self._on_cache_cleared)
        worker.categoriesLoaded.connect(self._on_categories_loaded)
        worker.searchResults.connect(self._on_search_results)
        tasks = self.worker.tasks  # the window follows indexing; dialogs follow the exports they start
        tasks.progress.connect(self._on_task_progress)
        tasks.finished.connect(self._on_task_finished)
        tasks.cancelled.connect(self._on_task_finished)
        tasks.failed.connect(self._on_task_failed)

    def _restore_preferences(self) -> None:
        geometry = self.prefs.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 800)
        splitter = self.prefs.splitter_state()
        if splitter is not None:
            self.splitter.restoreState(splitter)
        self.panel.set_threshold(self.prefs.threshold())
        self.model.set_threshold(self.prefs.threshold())
        self.group_action.setChecked(self.prefs.grouped())
        self.headers_action.setChecked(self.prefs.folder_headers())
        self.view.set_folder_headers(self.prefs.folder_headers())
        self.model.set_sort(self.prefs.sort_key(), self.prefs.grouped())
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

    def open_folders(self, folders: list[str], replace: bool = True) -> Task:
        """Show these folders' photos (from the cache at once) and index what changed."""
        folders = [os.path.abspath(os.path.expanduser(f)) for f in folders]
        if replace:
            self._folders, self._roots = list(folders), []
            self.model.clear()
            self.problems_model.set_problems([], [])
            self._update_problems_button()
        else:
            self._folders += [f for f in folders if f not in self._folders]
        self.message_bar.dismiss()
        self._busy_task = self.worker.open_folders(folders, replace)
        self._set_busy(True, "Opening…")
        self.view.set_empty_text("Looking for photos…")
        self.stack.setCurrentWidget(self.grid_page)
        self._update_title()
        return self._busy_task

    def rescan(self) -> Task | None:
        """Read the open folders again: photos moved or deleted leave the grid, new or changed ones are indexed."""
        if not self._folders:
            return None
        self.message_bar.dismiss()
        self._busy_task = self.worker.rescan()
        self._set_busy(True, "Looking for changes…")
        return self._busy_task

    def _on_folders_changed(self) -> None:
        """Photos were added, changed, removed or renamed in an open folder (by another program)."""
        if self.busy:
            self._rescan_waiting = True
        else:
            self.rescan()

    def cancel_indexing(self) -> None:
        if self._busy_task is not None:
            self.worker.cancel()
            self.progress_label.setText("Stopping…")
            self.cancel_button.setEnabled(False)

    @property
    def busy(self) -> bool:
        return self._busy_task is not None

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

    def _on_folders_opened(self, generation: int, roots: list[str]) -> None:
        """The worker found these folders readable: remember them as recent."""
        if not self._current(generation) or not roots:
            return
        self._roots += [r for r in roots if r not in self._roots]
        self.prefs.remember_folders(roots)
        self.empty_state.set_recent(self.prefs.recent_folders())
        self._refresh_recent_menu()

    def _on_task_progress(self, task: Task, progress: Progress) -> None:
        if task.kind is not TaskKind.INDEX or not self._current(task.generation) or self._busy_task is None \
                or not self.cancel_button.isEnabled():
            return
        self.progress_label.setText(describe_progress(progress))
        self._downloading = progress.phase == "downloading" and progress.done < progress.total
        if progress.phase in ("indexing", "thumbnails") and self.model.photo_count() == 0:
            self.view.set_empty_text(f"Reading {plural(progress.total, 'photo')}; they appear here as they are done…")
        if progress.phase == "downloading" and self.model.photo_count() == 0:
            self.view.set_empty_text("Downloading the CLIP model, once; your photos appear here as they are indexed…")
        if progress.phase == "scanning" or progress.total == 0:
            self.progress_bar.setRange(0, 0)
        elif progress.phase == "downloading":  # bytes can pass the int range of QProgressBar: per mille
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(1000 * progress.fraction))
        else:
            self.progress_bar.setRange(0, progress.total)
            self.progress_bar.setValue(progress.done)

    def _on_dates(self, dates: PhotoDates) -> None:
        if self._current(dates.generation):
            self.model.set_dates(dates.dates)

    def _on_photos(self, batch: PhotoBatch) -> None:
        if not self._current(batch.generation):
            return
        if batch.replace:
            self.model.replace_photos(batch.ids, batch.paths, batch.categories, batch.probabilities, batch.labels,
                                      batch.dates, batch.analysed, batch.shapes)
        else:
            self.model.add_photos(batch.ids, batch.paths, batch.categories, batch.probabilities, batch.labels,
                                  batch.dates, batch.analysed, batch.shapes)
        if batch.labels:
            self.classifiers.counts_changed()
        self._schedule_prefetch()

    def _on_scores(self, scores: Scores) -> None:
        if self.classifiers.active:
            return  # typed categories wait while a classifier sorts the grid
        self.model.set_scores(scores.categories, scores.ids, scores.probabilities, labels={})
        self.view.set_show_categories(bool(scores.categories))
        self.panel.set_busy(False)
        self.categoriesApplied.emit()

    def _on_problems(self, generation: int, problems: list[tuple[str, str]]) -> None:
        if self._current(generation):
            self.problems_model.set_problems(problems, self._roots)
            self._update_problems_button()

    def _on_task_finished(self, task: Task, result: JobResult | None) -> None:
        """Indexing ended (finished or cancelled): the status bar says how."""
        if task is not self._busy_task:
            return
        self._set_busy(False)
        if result is None or result.cancelled:
            self._rescan_waiting = False
            self._on_cancelled(result)
            return
        self.watcher.watch(self._roots)  # subfolders may have come or gone
        if self._rescan_waiting:
            self._rescan_waiting = False
            QTimer.singleShot(0, self.rescan)
        if result.indexed:
            rate = result.indexed / result.seconds if result.seconds > 0 else 0.0
            self.statusBar().showMessage(f"Indexed {plural(result.indexed, 'new photo')} in "
                                         f"{format_duration(result.seconds)} ({rate:.1f} photos/s)", 10000)
        self.view.set_empty_text("No photos found here." if self.model.photo_count() == 0 else "")
        if not result.reports and self.model.photo_count() == 0:
            self.stack.setCurrentWidget(self.empty_state)  # nothing could be opened
        self.indexingDone.emit(result)

    def _on_cancelled(self, result: JobResult | None) -> None:
        if self._downloading:
            self._downloading = False
            self.statusBar().showMessage("Download stopped. It continues where it stopped when you open the folder "
                                         "again.", 15000)
        else:
            self.statusBar().showMessage(f"Stopped. What was indexed so far is kept "
                                         f"({plural(self.model.photo_count(), 'photo')}); open the folder again to "
                                         "finish.", 15000)
        self.view.set_empty_text("Stopped before any photo was indexed." if self.model.photo_count() == 0 else "")
        self.indexingDone.emit(result)

    def _on_task_failed(self, task: Task, failure: Failure, _partial: object) -> None:
        """Indexing that failed as a whole (the model would not load, the cache is busy): say so, offer the fix."""
        if task.kind is not TaskKind.INDEX:
            return  # exports, undo and finishing a move: the dialog or message bar that started it tells
        ended = task is self._busy_task
        self._on_failed(failure)
        if ended:
            self._set_busy(False)
            hint = "The photos appear here once the model loads." if failure.action == Action.SETTINGS else ""
            self.view.set_empty_text(hint if self.model.photo_count() == 0 else "")

    def _on_failed(self, failure: Failure) -> None:
        action = {
            Action.SETTINGS: ("Settings…", self.open_settings),
            Action.OPEN_FOLDER: ("Open Folder…", self.choose_folder),
            Action.RETRY: ("Try Again", self._retry),
            Action.REPORT: ("Show Log", self._show_log),
        }.get(failure.action)
        self.message_bar.show_message(failure.message, "error", action)
        self.panel.set_busy(False)
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
        if text and self._busy_task is not None:
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
        self.classifiers.reset("")
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

    def _on_group_clicked(self, key: int | None) -> None:
        """Clicking a group shows it, also out of a search or "Label these next" (even the group already chosen)."""
        self.search_edit.clear()
        if self.model.least_sure_mode:
            self.classifiers.set_least_sure(False)
        self.model.set_filter(key)

    def _on_group_toggled(self, grouped: bool) -> None:
        self.model.set_sort(self.model.sort_key, grouped)
        self.prefs.set_grouped(grouped)

    def _on_headers_toggled(self, shown: bool) -> None:
        self.view.set_folder_headers(shown)
        self.prefs.set_folder_headers(shown)

    def set_sort(self, key: str) -> None:
        key = key if key in SORT_KEYS else "name"
        self.model.set_sort(key)
        self.prefs.set_sort_key(key)
        self.sort_combo.blockSignals(True)
        self.sort_combo.setCurrentIndex(max(0, self.sort_combo.findData(key)))
        self.sort_combo.blockSignals(False)
        for action in self.sort_actions.actions():
            action.setChecked(action.data() == key)
        self.headers_action.setEnabled(key == "folder")  # headers name folders: they show when sorted by folder

    def regroup(self) -> None:
        """Put photos where their labels and predictions say, and keep the photo the user is on in view."""
        self.model.regroup()
        current = self.view.currentIndex()
        if current.isValid():
            self.view.scrollTo(current, PhotoGridView.ScrollHint.PositionAtCenter)

    def _zoom(self, step: int) -> None:
        sizes = list(TILE_SIZES)
        current = min(range(len(sizes)), key=lambda i: abs(sizes[i] - self.view.tile_px))
        new = sizes[max(0, min(len(sizes) - 1, current + step))]
        if new != self.view.tile_px:
            self.view.set_tile_size(new)
            self.thumbnails.set_tile_size(new, self.devicePixelRatioF())
            self.view.viewport().update()

    # ---- search -----------------------------------------------------------------------------------
    def _on_search_cleared(self) -> None:
        self._search_request = 0
        self.model.clear_ranking()
        self._update_status()

    def leave_search(self) -> None:
        """Escape in the grid: out of a search, Find Similar or "Label these next", back to the group shown before."""
        if self.model.search_mode:
            self.search_edit.clear()  # its cleared signal puts the view back
        elif self.model.least_sure_mode:
            self.classifiers.set_least_sure(False)

    def _focus_search(self) -> None:
        self.search_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_edit.selectAll()

    def run_search(self, query: str) -> None:
        """Rank the open folders' photos by how well they match the text (CLIP, as ``photosort search``)."""
        if self.model.photo_count():
            self._search_request = self.worker.search_text(query, SEARCH_RESULTS)

    def find_similar(self) -> None:
        """Show the photos that look most like the current one."""
        index = self.view.currentIndex()
        if not index.isValid():
            return
        name = self.model.tile(index.row()).name
        self.search_edit.show_text(f"Like {name}")  # in the field, so that clearing it goes back, as after a search
        self._search_request = self.worker.find_similar(self.model.photo_id(index.row()), name, SEARCH_RESULTS)

    def _on_search_results(self, results: SearchResults) -> None:
        if results.request != self._search_request:
            return  # the user typed on, or cleared the search, meanwhile
        self._search_title = results.title
        self.model.set_ranking(results.ids, results.matches)
        self.view.scrollToTop()
        self._update_status()
        self.searchShown.emit(results)

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
        self.classifiers.add_label_menu(menu)
        menu.addSeparator()
        index = self.view.currentIndex()
        if index.isValid():
            path = self.model.path(index.row())
            menu.addAction("Find &Similar").triggered.connect(self.find_similar)
            menu.addAction("Show in File &Manager").triggered.connect(lambda: show_in_file_manager(path))
            menu.addAction("&Open With Default App").triggered.connect(lambda: open_in_default_app(path))
            menu.addAction("&Copy Path").triggered.connect(lambda: copy_path(path))
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
        dialog = ExportDialog(self.worker, self.classifiers.summaries(), self.classifiers.active, self.panel.threshold(),
                              self.prefs.export_destination(), self,
                              target_accuracy=self.classifiers.dial.target_accuracy(), layout=self.prefs.export_layout())
        dialog.finished.connect(self._forget_export_dialog)
        dialog.movedPhotos.connect(self.rescan)  # the grid follows the photos it moved (or put back)
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
            if not dialog.layout_problem():
                self.prefs.set_export_layout(dialog.layout_template())
            dialog.deleteLater()
            self._export_dialog = None

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
    def toggle_duplicates(self) -> None:
        """View ▸ Duplicates: near-duplicates and bursts of the open folders, or back to the grid."""
        if self.stack.currentWidget() is self.duplicates.view:
            self.show_grid()
            return
        if not self._folders:
            self.duplicates_action.setChecked(False)
            self.message_bar.show_message("Open a folder of photos first; then look for near-duplicates in it.",
                                          "info", ("Open Folder…", self.choose_folder))
            return
        self.stack.setCurrentWidget(self.duplicates.view)
        self.duplicates.refresh()
        self.duplicates.view.focus_photos()

    def show_grid(self) -> None:
        self.stack.setCurrentWidget(self.grid_page if self._folders else self.empty_state)
        self.view.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def _preview_current(self) -> None:
        self.open_preview(self.view.currentIndex())

    def open_preview(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        if self._preview is None:
            self._preview = PreviewDialog(self.model, index.row(), self)
            self._preview.set_actions([*self.classifiers.label_actions, self.classifiers.unlabel_action,
                                       self.undo_action, self.redo_action])
            self._preview.follow_view(self.view)
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
        dialog = SettingsDialog(self.settings, self, preferences=self.prefs)
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
        self.classifiers.reset()
        if self._folders:
            self.open_folders(self._folders)

    def show_shortcuts(self) -> ShortcutsDialog:
        grid_keys = [*self.classifiers.label_actions, self.classifiers.unlabel_action, self.preview_action,
                     self.regroup_action]
        dialog = ShortcutsDialog(self, grid_keys, [("In the Duplicates view", self.duplicates.view.key_actions)])
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _about(self) -> None:
        QMessageBox.about(self, "About photosort",
                          f"<b>photosort {__version__}</b><p>Sort your photos into folders with CLIP, on your own "
                          f"computer.</p><p>Model: {self.settings.model}</p>")

    # ---- status ----------------------------------------------------------------------------
    def _set_busy(self, busy: bool, text: str = "") -> None:
        if not busy:
            self._busy_task = None
        for widget in (self.progress_label, self.progress_bar, self.cancel_button):
            widget.setVisible(busy)
        self.cancel_button.setEnabled(busy)
        self.cancel_action.setEnabled(busy)
        if busy:
            self.progress_label.setText(text)
            self.progress_bar.setRange(0, 0)

    def _update_status(self) -> None:
        parts = [plural(self.model.photo_count(), "photo")] if self._folders else ["No folder open"]
        if self.model.unanalysed_count():
            parts.append(f"{self.model.unanalysed_count():,} not analysed yet")
        if self.model.categories:
            n, active = len(self.model.categories), self.classifiers.active
            parts.append(f"{active}: {plural(n, 'class', 'classes')}" if active else plural(n, "category", "categories"))
        labelled = len(self.model.labels())
        if labelled:
            parts.append(f"{labelled:,} labelled")
        selected = len(self.classifiers.selected_photo_ids())
        if selected:
            parts.append(f"{selected:,} selected")
        self.status_label.setText(" · ".join(parts))
        title = self.model.group_label(self.model.filter)
        if self.model.search_mode:
            title = f"Search {self._search_title}" if self._search_title.startswith("“") else self._search_title
        elif self.model.least_sure_mode:
            title = "Label these next" + ("" if self.model.filter is None else f" · {title}")
        self.group_title.setText(f"{title}  ·  {self.model.rowCount():,}")
        if self.model.photo_count() and not self.model.rowCount():
            self.view.set_empty_text(self._empty_group_text())

    def _empty_group_text(self) -> str:
        """What an empty group means and how photos get there (the grid says it instead of staying blank)."""
        model, key = self.model, self.model.filter
        if model.search_mode:
            return "No photo matches."
        if model.least_sure_mode:
            return "Nothing to ask about here: every photo is labelled."
        if key == NOT_ANALYSED:
            return "Every photo has been analysed."
        likely = (f"at least {self.classifiers.dial.target_accuracy():.0%} likely right" if self.panel.accuracy_mode
                  else f"at least {self.panel.threshold():.0%} likely")
        if key == UNSURE:
            return f"No unsure photos: every photo is filed {likely}.\nRaise the slider to send the doubtful ones here."
        if key is None:
            return "No photos."
        name = model.group_label(key)
        if self.classifiers.active:
            press = f"press {key + 1} (or click “{name}”)" if key < 9 else f"click “{name}”"
            return (f"No photos in “{name}” yet.\nSelect photos and {press} to label them; the classifier then files "
                    "photos like them here.")
        return (f"No photo is filed under “{name}” yet: photos come here when it is their likeliest category, "
                f"{likely}.\nDescribe it in your own words (“{name} = a photo of …”), or lower “Unsure below”.")

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
        if event.type() == QEvent.Type.WindowActivate:  # back from the terminal: a classifier made there shows
            self.worker.list_classifiers(quiet=True)
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
                f"where they are now; next time you can finish the move or undo it ({MOVE_EXPORTS_MENU}).",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                return False
        dialog.cancel()
        return True

    def shutdown(self) -> None:
        """Stop the worker after its current batch (or photo being exported) and wait for both threads."""
        self.watcher.stop()
        self.worker.shutdown()
        self.thumbnails.shutdown()
        self.duplicates.shutdown()
        QThreadPool.globalInstance().waitForDone(5000)
