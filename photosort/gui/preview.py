"""The large preview: one photo, upright (EXIF orientation applied), fitted to the window or at 100 %.

The file is decoded in a thread-pool thread by the core (:mod:`photosort.core.display`:
JPEG draft mode, a RAW's embedded preview) to about the screen's size, so even a 50-megapixel photo
opens quickly and the GUI thread only scales a screen-sized image. Only when the user asks for
100 % (Z, Ctrl+1, a double-click) is the photo decoded at full size, in the same pool.

Left and Right step through the grid's current order; Space or Escape closes. The caption says
where the photo is ("12 of 61") and what it is: the user's label, which wins, or the prediction.
The window's label keys work here too (:meth:`PreviewDialog.set_actions`), and
:meth:`PreviewDialog.follow_view` keeps the grid's selection on the photo shown, so that a
label key labels the photo the user is looking at.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, QObject, QPointF, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QAction, QActionGroup, QImage, QKeyEvent, QKeySequence, QMouseEvent, QPixmap, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.decode import DecodeError
from ..core.display import display_image
from ..core.paths import display_path
from ..core.raw import is_raw_name
from .photo_model import NOT_ANALYSED, PhotoModel, Tile

log = logging.getLogger(__name__)

BACKDROP = "#1c1c1e"
FIT, ACTUAL = "fit", "actual"  # the zoom: fitted to the window, or one photo pixel per screen pixel
FULL_SIZE = 1 << 16  # max_side for "no smaller than the photo"; the decoder's pixel limit still guards memory
SEPARATOR = "  ·  "


class PreviewError(Exception):
    """The photo cannot be shown; the message says why."""


def load_preview_image(path: str, max_side: int) -> QImage:
    """Decode ``path`` upright and no larger than ``max_side`` pixels (safe outside the GUI thread).

    The core picks the source (JPEG draft, a RAW's embedded preview, ...): :func:`display_image`.
    """
    try:
        rgb = display_image(path, max_side)
    except DecodeError as exc:
        raise PreviewError(f"cannot show {display_path(os.path.basename(path))}: {exc}") from None
    data = rgb.tobytes("raw", "RGB")
    return QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888).copy()


def describe_tile(tile: Tile, has_categories: bool) -> str:
    """What the photo is, in words: the user's label wins (no percentage: it is not a guess), else the prediction."""
    if tile.label is not None:
        return f"✓ {tile.label} (your label)"
    if tile.group == NOT_ANALYSED:
        return "Not analysed yet"
    if not has_categories:
        return ""
    return f"{tile.category or 'Unsure'} · {tile.score:.0%}"


def is_whole_photo(image: QImage, path: str, max_side: int) -> bool:
    """True when a screen-sized decode already holds every pixel, so 100 % needs no second decode.

    The core only shrinks photos larger than ``max_side``; a RAW's embedded preview may be smaller than the RAW.
    """
    return max(image.width(), image.height()) < max_side and not is_raw_name(path)


class _Signals(QObject):
    loaded = Signal(int, bool, object, str)  # request number, full size?, QImage or None, error message

    def __init__(self) -> None:
        super().__init__()
        self.latest = 0  # the request the dialog still wants: a queued job for an older one skips its decode


class _PreviewJob(QRunnable):
    def __init__(self, request: int, path: str, max_side: int, full: bool, signals: _Signals) -> None:
        super().__init__()
        self._request, self._path, self._max_side, self._full = request, path, max_side, full
        self._signals = signals

    def run(self) -> None:
        if self._signals.latest != self._request:
            return  # the user stepped on before this started: a full-size decode would be wasted seconds
        try:
            image = load_preview_image(self._path, self._max_side)
        except PreviewError as exc:
            self._signals.loaded.emit(self._request, self._full, None, str(exc))
            return
        except Exception as exc:  # a preview must never take the app down
            log.exception("preview of %s failed", self._path)
            self._signals.loaded.emit(self._request, self._full, None, f"cannot show this photo: {exc}")
            return
        self._signals.loaded.emit(self._request, self._full, image, "")


class ImageArea(QScrollArea):
    """The photo on a dark backdrop: fitted to the area, or at its own size, panned by dragging or scrolling."""

    resized = Signal()
    doubleClicked = Signal(QPointF)  # where, in the viewport

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        # Ignored: fitted, the label is the viewport's size whatever pixmap it held at 100 % (no scroll bars).
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        # A neutral dark backdrop, as photo viewers use, in light and dark themes alike.
        self.label.setStyleSheet(f"QLabel {{ background: {BACKDROP}; color: #d0d0d0; }}")
        self.setStyleSheet(f"QScrollArea {{ background: {BACKDROP}; border: none; }}")
        self.viewport().setStyleSheet(f"background: {BACKDROP};")
        self.setWidget(self.label)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys belong to the dialog, where the label keys live
        self.setMinimumSize(QSize(200, 150))
        self._drag_from: QPointF | None = None
        self._shown: tuple[int, float, QSize] | None = None  # the image, ratio and size on screen: no redundant redraws
        self._spot: tuple[float, float, float, float] | None = None  # held still at 100 % until the user scrolls
        for bar in (self.horizontalScrollBar(), self.verticalScrollBar()):
            # Scroll bars appear a moment after the photo grows (a queued layout) and shrink the viewport:
            # the spot is placed again each time the ranges change, until the user scrolls.
            bar.rangeChanged.connect(self._keep_spot)
            bar.actionTriggered.connect(self._release_spot)
        self._fitted = False
        self._set_fitted(True)

    def _set_fitted(self, fitted: bool) -> None:
        if fitted == self._fitted:
            return
        self._fitted = fitted
        policy = Qt.ScrollBarPolicy.ScrollBarAlwaysOff if fitted else Qt.ScrollBarPolicy.ScrollBarAsNeeded
        self.setHorizontalScrollBarPolicy(policy)
        self.setVerticalScrollBarPolicy(policy)
        self.setWidgetResizable(fitted)
        if fitted:
            self.viewport().unsetCursor()
        else:
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)

    def show_text(self, text: str) -> None:
        self._set_fitted(True)
        self._shown = self._spot = None
        self.label.setPixmap(QPixmap())
        self.label.setText(text)

    def show_fitted(self, image: QImage, dpr: float) -> None:
        """Scaled to the area in device pixels, so HiDPI screens get a sharp image."""
        self._set_fitted(True)
        self._spot = None
        port = self.viewport().size()
        target = QSize(int(port.width() * dpr), int(port.height() * dpr))  # rounded down: never larger than the area
        if self._shown == (image.cacheKey(), dpr, target):
            return
        self._shown = (image.cacheKey(), dpr, target)
        scaled = image.scaled(target, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        pixmap = QPixmap.fromImage(scaled)
        pixmap.setDevicePixelRatio(dpr)
        self.label.setPixmap(pixmap)

    def show_actual(self, image: QImage, dpr: float) -> None:
        """One photo pixel per device pixel: the label is the photo's size in logical pixels."""
        self._set_fitted(False)
        if self._shown == (image.cacheKey(), dpr, image.size()):
            return  # a resize of the window: the photo stays as it is (a 50 MP pixmap is not made again)
        self._shown = (image.cacheKey(), dpr, image.size())
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(dpr)
        self.label.setPixmap(pixmap)
        self.label.resize(math.ceil(image.width() / dpr), math.ceil(image.height() / dpr))

    def fractions(self, at: QPointF) -> tuple[float, float, float, float]:
        """Where ``at`` (viewport) falls on the photo shown and on the viewport, as fractions of their sizes.

        The viewport's own fraction, not its pixels: at 100 % scroll bars appear and the viewport shrinks.
        """
        pixmap, port = self.label.pixmap(), self.viewport().size()
        ax, ay = at.x() / max(port.width(), 1), at.y() / max(port.height(), 1)
        if pixmap.isNull():
            return 0.5, 0.5, ax, ay
        size = pixmap.deviceIndependentSize()
        left = self.label.x() + (self.label.width() - size.width()) / 2
        top = self.label.y() + (self.label.height() - size.height()) / 2
        fx = (at.x() - left) / size.width() if size.width() else 0.5
        fy = (at.y() - top) / size.height() if size.height() else 0.5
        return min(max(fx, 0.0), 1.0), min(max(fy, 0.0), 1.0), ax, ay

    def hold_spot(self, fx: float, fy: float, ax: float, ay: float) -> None:
        """Keep the photo's point at (fx, fy) at (ax, ay) of the viewport (all fractions) until the user scrolls."""
        self._spot = (fx, fy, ax, ay)
        self._keep_spot()

    def _keep_spot(self, *_range: int) -> None:
        if self._spot is None or self._fitted:
            return
        fx, fy, ax, ay = self._spot
        port = self.viewport().size()
        self.horizontalScrollBar().setValue(round(fx * self.label.width() - ax * port.width()))
        self.verticalScrollBar().setValue(round(fy * self.label.height() - ay * port.height()))

    def _release_spot(self, *_action: int) -> None:
        self._spot = None

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.resized.emit()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and not self._fitted:
            self._spot = None
            self._drag_from = event.globalPosition()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag_from is not None:
            delta = event.globalPosition() - self._drag_from
            self._drag_from = event.globalPosition()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag_from is not None:
            self._drag_from = None
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.doubleClicked.emit(event.position())
        super().mouseDoubleClickEvent(event)


class PreviewDialog(QDialog):
    """Shows the photo at ``row`` of the grid's model; arrows move through the rows.

    ``actions`` (e.g. the window's label keys) also fire here: see :meth:`set_actions`.
    """

    imageShown = Signal(int)  # row, once its image (or error) is on screen; again when the full-size one is
    rowShown = Signal(int)  # row of the model, each time the preview moves to another photo
    zoomChanged = Signal(str)  # FIT or ACTUAL

    def __init__(self, model: PhotoModel, row: int, parent: QWidget | None = None,
                 actions: Sequence[QAction] = ()) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preview")
        self.setModal(False)
        # The dialog itself holds the focus (its children take none), so that shortcuts of the window's
        # actions installed here, which are widget shortcuts, fire while the preview is in front.
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._model = model
        self._row, self._photo_id, self._path, self._name, self._in_grid = -1, -1, "", "", True
        self._request = 0
        self._zoom = FIT
        self._image: QImage | None = None  # about the screen's size
        self._full: QImage | None = None  # every pixel, loaded for 100 % only
        self._errors: dict[bool, str] = {}  # full size? -> why it cannot be shown
        self._anchor: tuple[float, float, float, float] | None = None  # the spot to keep still when zooming in
        self._view: QAbstractItemView | None = None
        self._extra_actions: list[QAction] = []
        # No parent: a job still decoding after the dialog closed must find its signals alive.
        self._signals = _Signals()
        self._signals.loaded.connect(self._on_loaded)
        self._build()
        self._build_zoom_actions()
        self._connect_model()
        self.set_actions(actions)
        self._fit_to_parent(parent)
        self.show_row(row)

    # ---- building ------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 6)
        self.area = ImageArea()
        self.area.resized.connect(self._render)
        self.area.doubleClicked.connect(self._on_double_click)
        layout.addWidget(self.area, 1)
        bar = QHBoxLayout()
        bar.setContentsMargins(8, 0, 8, 0)
        self.caption = QLabel()
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.zoom_status = QLabel()
        self.fit_button, self.actual_button = QToolButton(), QToolButton()
        bar.addSpacing(120)  # as wide as the buttons on the right, so the caption stays centred
        bar.addWidget(self.caption, 1)
        for widget in (self.zoom_status, self.fit_button, self.actual_button):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            bar.addWidget(widget)
        layout.addLayout(bar)

    def _build_zoom_actions(self) -> None:
        """Z toggles, Ctrl+0 fits, Ctrl+1 shows 100 %: never bare digits, which are the label keys."""
        self.fit_action = QAction("Fit to Window", self)
        self.fit_action.setIconText("Fit")
        self.fit_action.setShortcut(QKeySequence("Ctrl+0"))
        self.fit_action.setToolTip("Fit to the window (Ctrl+0, or Z)")
        self.fit_action.triggered.connect(lambda: self.set_zoom(FIT))
        self.actual_action = QAction("Actual Pixels", self)
        self.actual_action.setIconText("100 %")
        self.actual_action.setShortcut(QKeySequence("Ctrl+1"))
        self.actual_action.setToolTip("Actual pixels, 100 % (Ctrl+1, Z, or double-click the photo)")
        self.actual_action.triggered.connect(lambda: self.set_zoom(ACTUAL))
        group = QActionGroup(self)
        for action in (self.fit_action, self.actual_action):
            action.setCheckable(True)
            group.addAction(action)
        self.fit_action.setChecked(True)
        self.toggle_zoom_action = QAction("Toggle Zoom", self)
        self.toggle_zoom_action.setShortcut(QKeySequence(Qt.Key.Key_Z))
        self.toggle_zoom_action.triggered.connect(lambda: self.toggle_zoom())
        self.addActions([self.fit_action, self.actual_action, self.toggle_zoom_action])
        self.fit_button.setDefaultAction(self.fit_action)
        self.actual_button.setDefaultAction(self.actual_action)

    def _connect_model(self) -> None:
        """Labels change the caption; re-sorting, filtering and new photos change the position."""
        self._model.dataChanged.connect(self._refresh_caption)
        for signal in (self._model.layoutChanged, self._model.modelReset, self._model.rowsInserted,
                       self._model.rowsRemoved):
            signal.connect(self._find_photo_again)

    def set_actions(self, actions: Sequence[QAction]) -> None:
        """Let these actions' shortcuts fire while the preview has the focus (e.g. the grid's label keys).

        They act on the grid's selection: :meth:`follow_view` (or a slot on :attr:`rowShown`) keeps it on the
        photo shown here.
        """
        for action in self._extra_actions:
            self.removeAction(action)
        self._extra_actions = list(actions)
        self.addActions(self._extra_actions)

    def follow_view(self, view: QAbstractItemView) -> None:
        """Keep ``view`` (showing this model) and the preview on one photo, both ways.

        The photo shown becomes the view's current and only selected photo, so the label keys label it;
        when the view's current photo changes (a label key moves on to the next photo, a click), the preview
        follows.
        """
        self._view = view
        self.rowShown.connect(self._select_in_view)
        view.selectionModel().currentChanged.connect(self._on_view_current)
        self._select_in_view(self._row)

    # ---- state ---------------------------------------------------------------------------------
    @property
    def row(self) -> int:
        return self._row

    @property
    def image(self) -> QImage | None:
        """The screen-sized image shown fitted (None while loading or when it cannot be shown)."""
        return self._image

    @property
    def full_image(self) -> QImage | None:
        """Every pixel of the photo, once 100 % asked for it."""
        return self._full

    @property
    def zoom(self) -> str:
        return self._zoom

    def position_text(self) -> str:
        """Where the photo is among the rows the grid shows now, e.g. "12 of 61"."""
        if not self._in_grid:
            return f"not in the grid now ({self._model.rowCount()} shown)"
        return f"{self._row + 1} of {self._model.rowCount()}"

    # ---- showing -------------------------------------------------------------------------------
    def show_row(self, row: int) -> None:
        """Show the photo at ``row``; nothing happens when it is already shown (the grid following us back)."""
        if not 0 <= row < self._model.rowCount():
            return
        photo_id = self._model.photo_id(row)
        if row == self._row and photo_id == self._photo_id and self._in_grid:
            return
        self._row, self._photo_id, self._in_grid = row, photo_id, True
        self._path = self._model.path(row)
        self._name = display_path(os.path.basename(self._path))
        self._request += 1
        self._signals.latest = self._request
        self._image, self._full, self._errors, self._anchor = None, None, {}, None
        self.setWindowTitle(self._name)
        self._refresh_caption()
        self._load(full=False)
        if self._zoom == ACTUAL:
            self._load(full=True)
        self._render()
        self.rowShown.emit(row)

    def set_zoom(self, zoom: str, anchor: QPointF | None = None) -> None:
        """FIT or ACTUAL (100 %); ``anchor`` (viewport) is the point to keep under the pointer when zooming in."""
        if zoom not in (FIT, ACTUAL):
            raise ValueError(f"unknown zoom {zoom!r}")
        (self.fit_action if zoom == FIT else self.actual_action).setChecked(True)
        if zoom == self._zoom:
            return
        self._zoom = zoom
        if zoom == ACTUAL:
            port = self.area.viewport().size()
            at = anchor if anchor is not None else QPointF(port.width() / 2, port.height() / 2)
            self._anchor = self.area.fractions(at)
            if self._full is None and True not in self._errors:
                self._load(full=True)
        log.debug("preview zoom: %s", zoom)
        self._render()
        self.zoomChanged.emit(zoom)

    def toggle_zoom(self, anchor: QPointF | None = None) -> None:
        self.set_zoom(FIT if self._zoom == ACTUAL else ACTUAL, anchor)

    def _load(self, full: bool) -> None:
        """Decode in the thread pool: the GUI thread never waits for a file, least of all a 50 MP one."""
        if full and self._image is not None and is_whole_photo(self._image, self._path, self._max_side()):
            self._full = self._image
            return
        max_side = FULL_SIZE if full else self._max_side()
        QThreadPool.globalInstance().start(_PreviewJob(self._request, self._path, max_side, full, self._signals))

    def _on_loaded(self, request: int, full: bool, image: QImage | None, error: str) -> None:
        if request != self._request:
            return  # the user has moved on to another photo
        if image is None:
            self._errors[full] = error
        elif full:
            self._full = image
        else:
            self._image = image
            if self._zoom == ACTUAL and self._full is None and is_whole_photo(image, self._path, self._max_side()):
                self._full = image
        self._render()
        self.imageShown.emit(self._row)

    def _render(self) -> None:
        """Put what is known on screen: the photo at the zoom asked for, else what comes closest, else why not."""
        dpr = self.devicePixelRatioF()
        waiting = ""
        if self._zoom == ACTUAL and self._full is not None:
            self.area.show_actual(self._full, dpr)
            if self._anchor is not None:
                self.area.hold_spot(*self._anchor)
                self._anchor = None
        elif self._zoom == ACTUAL and True in self._errors:
            self.area.show_text(self._errors[True])
        elif self._image is not None:
            self.area.show_fitted(self._image, dpr)
            waiting = "Loading 100 %…" if self._zoom == ACTUAL else ""
        elif False in self._errors:
            self.area.show_text(self._errors[False])
        else:
            self.area.show_text("Loading…")
        self.zoom_status.setText(waiting)

    def _refresh_caption(self, *_changed: object) -> None:
        if self._in_grid and not 0 <= self._row < self._model.rowCount():
            return  # between a model's change and the signal that re-finds the photo
        parts = [self.position_text(), self._name]
        if self._in_grid:
            parts.append(describe_tile(self._model.tile(self._row), bool(self._model.categories)))
        self.caption.setText(SEPARATOR.join(p for p in parts if p))

    def _find_photo_again(self, *_changed: object) -> None:
        """Rows moved or changed in number: follow the photo shown to its new row (it may have left the grid)."""
        row = self._model.row_of_photo(self._photo_id) if self._photo_id >= 0 else None
        self._in_grid = row is not None
        if row is not None:
            self._row = row
        self._refresh_caption()

    # ---- the grid ------------------------------------------------------------------------------
    def _select_in_view(self, row: int) -> None:
        """Make ``row`` the view's current and only selected photo, unless it already is (no echo)."""
        if self._view is None or not 0 <= row < self._model.rowCount():
            return
        selection = self._view.selectionModel()
        index = self._model.index(row)
        if selection.currentIndex() == index and selection.isSelected(index) and len(selection.selectedIndexes()) == 1:
            return
        selection.setCurrentIndex(index, selection.SelectionFlag.ClearAndSelect)
        self._view.scrollTo(index)

    def _on_view_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid() and self.isVisible():
            self.show_row(current.row())

    # ---- events --------------------------------------------------------------------------------
    def _on_double_click(self, at: QPointF) -> None:
        self.toggle_zoom(at)

    def _max_side(self) -> int:
        screen = self.screen()
        size = screen.availableSize() if screen is not None else QSize(1920, 1080)
        return round(max(size.width(), size.height()) * self.devicePixelRatioF())

    def _fit_to_parent(self, parent: QWidget | None) -> None:
        if parent is not None:
            self.resize(parent.size() * 0.85)
            self.move(parent.geometry().center() - self.rect().center())
        else:
            self.resize(1000, 700)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.setFocus(Qt.FocusReason.ActiveWindowFocusReason)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Right, Qt.Key.Key_Down):
            self.show_row(self._row + 1)
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Up):
            self.show_row(self._row - 1)
        elif key == Qt.Key.Key_Home:
            self.show_row(0)
        elif key == Qt.Key.Key_End:
            self.show_row(self._model.rowCount() - 1)
        elif key == Qt.Key.Key_Space:
            self.close()
        else:
            super().keyPressEvent(event)
