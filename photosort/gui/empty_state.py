"""What a first launch shows: "Drop a photo folder here", an Open Folder button and recent folders."""

from __future__ import annotations

import os

from PySide6.QtCore import QEvent, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from .resources import tinted_svg_pixmap
from .side_panel import secondary

ILLUSTRATION = "drop-photos.svg"
ILLUSTRATION_SIZE = 96
MAX_RECENT_SHOWN = 5


class EmptyState(QWidget):
    """A large drop target; highlights while a folder is dragged over the window."""

    openRequested = Signal()
    recentRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._drag_active = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(48, 48, 48, 48)
        layout.setSpacing(10)
        layout.addStretch(3)
        self.illustration = QLabel()
        self.illustration.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.illustration)
        self.title = QLabel("Drop a photo folder here")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setWeight(QFont.Weight.DemiBold)
        self.title.setFont(font)
        layout.addWidget(self.title)
        self.subtitle = secondary(QLabel("Photos are sorted on this computer; nothing is uploaded or changed."))
        self.subtitle.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.subtitle.setWordWrap(True)
        layout.addWidget(self.subtitle)
        layout.addSpacing(10)
        self.open_button = QPushButton("Open Folder…")
        self.open_button.setDefault(True)
        self.open_button.setMinimumWidth(160)
        self.open_button.clicked.connect(self.openRequested)
        layout.addWidget(self.open_button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addSpacing(18)
        self.recent_heading = secondary(QLabel("Recent folders"))
        self.recent_heading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.recent_heading)
        self.recent_box = QVBoxLayout()
        self.recent_box.setSpacing(2)
        layout.addLayout(self.recent_box)
        layout.addStretch(4)
        self.recent_buttons: list[QPushButton] = []
        self.set_recent([])
        self._update_illustration()

    def set_recent(self, folders: list[str]) -> None:
        for button in self.recent_buttons:
            button.deleteLater()
        self.recent_buttons = []
        for folder in folders[:MAX_RECENT_SHOWN]:
            button = QPushButton(os.path.basename(folder.rstrip(os.sep)) or folder)
            button.setFlat(True)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
            button.setToolTip(folder)
            button.clicked.connect(lambda _checked=False, f=folder: self.recentRequested.emit(f))
            self.recent_box.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
            self.recent_buttons.append(button)
        self.recent_heading.setVisible(bool(self.recent_buttons))

    def set_drag_active(self, active: bool) -> None:
        if active != self._drag_active:
            self._drag_active = active
            self.title.setText("Drop to open" if active else "Drop a photo folder here")
            self.update()

    def _update_illustration(self) -> None:
        # The placeholder colour is usually translucent text; SVG needs it opaque, so blend it over the window.
        palette = self.palette()
        ink, paper = palette.color(QPalette.ColorRole.PlaceholderText), palette.color(QPalette.ColorRole.Window)
        a = ink.alphaF()
        colour = QColor.fromRgbF(ink.redF() * a + paper.redF() * (1 - a), ink.greenF() * a + paper.greenF() * (1 - a),
                                 ink.blueF() * a + paper.blueF() * (1 - a))
        self.illustration.setPixmap(tinted_svg_pixmap(ILLUSTRATION, ILLUSTRATION_SIZE, colour, self.devicePixelRatioF()))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self._update_illustration()

    def paintEvent(self, event: QPaintEvent) -> None:
        """A dashed drop zone, drawn in the highlight colour while something is dragged over."""
        super().paintEvent(event)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        role = QPalette.ColorRole.Highlight if self._drag_active else QPalette.ColorRole.Mid
        colour = QColor(self.palette().color(role))
        pen = QPen(colour, 2.0 if self._drag_active else 1.5, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        if self._drag_active:
            fill = QColor(colour)
            fill.setAlpha(24)
            painter.setBrush(fill)
        path = QPainterPath()
        path.addRoundedRect(QRectF(self.rect()).adjusted(20, 20, -20, -20), 16, 16)
        painter.drawPath(path)
        painter.end()
