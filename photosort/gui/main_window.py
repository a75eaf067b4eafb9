"""The main window: menus, the category panel, the grid (or the empty state), status and progress.

It wires widgets to the worker and holds no sorting, caching or model logic:
requests go to :class:`~photosort.gui.worker.WorkerClient`, results come back
as signals and land in :class:`~photosort.gui.photo_model.PhotoModel`.
Messages about a library that is no longer shown (an older generation) are
dropped, so dropping a new folder mid-indexing never mixes two folders.
"""

from __future__ import annotations

import logging
import os
import threading

from PySide6.QtCore import QEvent, QMimeData, QModelIndex, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
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
from ..core.config import Settings
from ..core.indexer import PipelineOptions
from ..core.progress import Progress
from ..core.scan import is_photo_name
from .category_panel import CategoryPanel
from .empty_state import EmptyState
from .grid_view import DEFAULT_TILE, TILE_SIZES, PhotoGridView
from .message_bar import MessageBar
from .photo_model import PhotoModel
from .preferences import Preferences
from .preview import PreviewDialog
from .problems import ProblemsDialog, ProblemsModel
from .resources import app_icon
from .settings_dialog import SettingsDialog
from .thumbnail_cache import ThumbnailCache
from .worker import Failure, JobResult, PhotoBatch, Scores, WorkerClient

log = logging.getLogger(__name__)

PREFETCH_DELAY_MS = 60
WARM_UP_DELAY_MS = 400


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

    def __init__(self, settings: Settings, preferences: Preferences | None = None,
                 options: PipelineOptions | None = None) -> None:
        super().__init__()
        self.setWindowTitle("photosort")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.prefs = preferences if preferences is not None else Preferences()
        self.settings = self.prefs.effective_settings(settings)
        self._folders: list[str] = []
        self._roots: list[str] = []
        self._busy_job: int | None = None
        self._preview: PreviewDialog | None = None
        self._settings_dialog: SettingsDialog | None = None
        db_lock = threading.Lock()
        self.worker = WorkerClient(self.settings, options, db_lock, self)
        self.thumbnails = ThumbnailCache(self.settings.cache_path, db_lock, DEFAULT_TILE, parent=self)
        self.model = PhotoModel(self.thumbnails, self)
        self.problems_model = ProblemsModel(self)
        self.problems_dialog = ProblemsDialog(self.problems_model, self)
        self._build_central()
        self._build_menus()
        self._build_status_bar()
        self._connect_worker()
        self._restore_preferences()
        self._update_status()
        QTimer.singleShot(WARM_UP_DELAY_MS, self.worker.warm_up)

    # ---- building ----------------------------------------------------------------------
    def _build_central(self) -> None:
        self.panel = CategoryPanel()
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
        self.cancel_action = self._action(file_menu, "&Stop Indexing", self.cancel_indexing, "Ctrl+.")
        file_menu.addSeparator()
        quit_action = self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        quit_action.setShortcuts([QKeySequence("Ctrl+Q")])
        quit_action.setMenuRole(QAction.MenuRole.QuitRole)

        edit_menu = self.menuBar().addMenu("&Edit")
        self._action(edit_menu, "Select &All", self.view.selectAll, QKeySequence.StandardKey.SelectAll)
        self._action(edit_menu, "Select &None", self.view.clearSelection, "Ctrl+Shift+A")
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

        help_menu = self.menuBar().addMenu("&Help")
        about = self._action(help_menu, "&About photosort", self._about)
        about.setMenuRole(QAction.MenuRole.AboutRole)

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
        self.panel.set_text(self.prefs.categories_text())

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
            self.model.replace_photos(batch.ids, batch.paths, batch.categories, batch.probabilities)
        else:
            self.model.add_photos(batch.ids, batch.paths, batch.categories, batch.probabilities)
        self._schedule_prefetch()

    def _on_scores(self, scores: Scores) -> None:
        self.model.set_scores(scores.categories, scores.ids, scores.probabilities)
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
            "model": ("Settings…", self.open_settings),
            "folder": ("Open Folder…", self.choose_folder),
            "disk": ("Settings…", self.open_settings),
            "cache": ("Settings…", self.open_settings),
        }.get(failure.kind)
        self.message_bar.show_message(failure.message, "error", action)
        self.panel.set_busy(False)
        if failure.job is not None and failure.job == self._busy_job:
            self._set_busy(False)
            hint = "The photos appear here once the model loads." if failure.kind == "model" else ""
            self.view.set_empty_text(hint if self.model.photo_count() == 0 else "")
        if not self._folders:
            self.stack.setCurrentWidget(self.empty_state)
        self.errorShown.emit(failure)

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

    def _on_cache_cleared(self, deleted: list[str]) -> None:
        self.thumbnails.clear()
        self.model.clear()
        if self._settings_dialog is not None:
            self._settings_dialog.cache_cleared()
        self.statusBar().showMessage("The cache was cleared.", 8000)
        if self._folders:
            self.open_folders(self._folders)

    # ---- categories, grouping, sorting ---------------------------------------------------------
    def _on_categories_typed(self, categories: tuple) -> None:
        self.prefs.set_categories_text(self.panel.text())
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
        """Save the choice; with a different engine, restart it and sort the open folders again."""
        self.prefs.save_engine(model, device, precision)
        chosen = self.settings.with_changes(model=model, device=device, mode=precision)
        if chosen == self.settings:
            return
        self.settings = chosen
        self.message_bar.dismiss()
        self.worker.apply_settings(chosen)
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
            parts.append(f"{len(self.model.categories)} categories")
        selected = sum(r.height() for r in self.view.selectionModel().selection())
        if selected:
            parts.append(f"{selected:,} selected")
        self.status_label.setText(" · ".join(parts))
        self.group_title.setText(f"{self.model.group_label(self.model.filter)}  ·  {self.model.rowCount():,}")

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
        self.prefs.set_geometry(self.saveGeometry())
        self.prefs.set_splitter_state(self.splitter.saveState())
        self.prefs.set_categories_text(self.panel.text())
        self.prefs.sync()
        self.hide()
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Stop the worker after its current batch and wait for both threads (the window is hidden first)."""
        self.worker.shutdown()
        self.thumbnails.shutdown()
        QThreadPool.globalInstance().waitForDone(5000)
