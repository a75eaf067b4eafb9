"""The large preview: one photo, upright (EXIF orientation applied), scaled to the window.

The file is decoded in a thread-pool thread by the core (:mod:`photosort.core.display`:
JPEG draft mode, a RAW's embedded preview) to about the screen's size, so even a 50-megapixel photo
opens quickly and the GUI thread only scales a screen-sized image. Left and
Right step through the grid's current order; Space or Escape closes.
"""

from __future__ import annotations

import logging
import os

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QKeyEvent, QPixmap, QResizeEvent
from PySide6.QtWidgets import QDialog, QLabel, QSizePolicy, QVBoxLayout, QWidget

from ..core.decode import DecodeError
from ..core.display import display_image
from ..core.paths import display_path
from .photo_model import PhotoModel

log = logging.getLogger(__name__)

BACKDROP = "#1c1c1e"


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


class _Signals(QObject):
    loaded = Signal(int, object, str)  # request number, QImage or None, error message


class _PreviewJob(QRunnable):
    def __init__(self, request: int, path: str, max_side: int, signals: _Signals) -> None:
        super().__init__()
        self._request, self._path, self._max_side, self._signals = request, path, max_side, signals

    def run(self) -> None:
        try:
            image = load_preview_image(self._path, self._max_side)
        except PreviewError as exc:
            self._signals.loaded.emit(self._request, None, str(exc))
            return
        except Exception as exc:  # a preview must never take the app down
            log.exception("preview of %s failed", self._path)
            self._signals.loaded.emit(self._request, None, f"cannot show this photo: {exc}")
            return
        self._signals.loaded.emit(self._request, image, "")


class PreviewDialog(QDialog):
    """Shows the photo at ``row`` of the grid's model; arrows move through the rows."""

    imageShown = Signal(int)  # row, once its image (or error) is on screen

    def __init__(self, model: PhotoModel, row: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preview")
        self.setModal(False)
        self._model = model
        self._row = row
        self._request = 0
        self._image: QImage | None = None
        # No parent: a job still decoding after the dialog closed must find its signals alive.
        self._signals = _Signals()
        self._signals.loaded.connect(self._on_loaded)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 8)
        self.image_label = QLabel()
        self.image_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # A neutral dark backdrop, as photo viewers use, in light and dark themes alike.
        self.image_label.setStyleSheet(f"QLabel {{ background: {BACKDROP}; color: #d0d0d0; }}")
        self.image_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.image_label.setMinimumSize(QSize(200, 150))
        layout.addWidget(self.image_label, 1)
        self.caption = QLabel()
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.caption)
        self._fit_to_parent(parent)
        self.show_row(row)

    @property
    def row(self) -> int:
        return self._row

    @property
    def image(self) -> QImage | None:
        return self._image

    def show_row(self, row: int) -> None:
        if not 0 <= row < self._model.rowCount():
            return
        self._row = row
        self._request += 1
        self._image = None
        path = self._model.path(row)
        self.setWindowTitle(display_path(os.path.basename(path)))
        self.caption.setText(self._caption(row, path))
        self.image_label.setPixmap(QPixmap())
        self.image_label.setText("Loading…")
        job = _PreviewJob(self._request, path, self._max_side(), self._signals)
        QThreadPool.globalInstance().start(job)

    def _caption(self, row: int, path: str) -> str:
        name = display_path(os.path.basename(path))
        if not self._model.categories:
            return name
        tile = self._model.tile(row)
        return f"{name}  ·  {tile.category or 'Unsure'}  ·  {tile.score:.0%}"

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

    def _on_loaded(self, request: int, image: QImage | None, error: str) -> None:
        if request != self._request:
            return  # the user has moved on to another photo
        if image is None:
            self.image_label.setText(error)
        else:
            self._image = image
            self._rescale()
        self.imageShown.emit(self._row)

    def _rescale(self) -> None:
        if self._image is None:
            return
        dpr = self.devicePixelRatioF()
        target = self.image_label.size() * dpr
        scaled = self._image.scaled(target, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        pixmap = QPixmap.fromImage(scaled)
        pixmap.setDevicePixelRatio(dpr)
        self.image_label.setPixmap(pixmap)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Right, Qt.Key.Key_Down):
            self.show_row(self._row + 1)
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Up):
            self.show_row(self._row - 1)
        elif key == Qt.Key.Key_Space:
            self.close()
        else:
            super().keyPressEvent(event)
