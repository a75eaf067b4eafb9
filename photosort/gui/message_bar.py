"""An inline message strip above the grid for errors and notices, with up to two action buttons.

Errors the user can fix (a model that does not load, an unreadable folder,
a full disk) belong in the window next to the work, not in a modal box or on
the console; the action button goes straight to the fix (e.g. Settings), and a
second one offers the alternative where there is one (Finish / Undo).
Colours are mixed from the palette so the strip reads well in light and dark.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QFrame, QHBoxLayout, QLabel, QPushButton, QStyle, QToolButton, QWidget

LEVELS = {
    "error": ("#d64545", QStyle.StandardPixmap.SP_MessageBoxCritical),
    "warning": ("#d9a21b", QStyle.StandardPixmap.SP_MessageBoxWarning),
    "info": ("#3b82f6", QStyle.StandardPixmap.SP_MessageBoxInformation),
}


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor(round(a.red() * (1 - t) + b.red() * t), round(a.green() * (1 - t) + b.green() * t),
                  round(a.blue() * (1 - t) + b.blue() * t))


class MessageBar(QFrame):
    """Shows one message at a time; hidden when there is none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageBar")
        self._level = "info"
        self._action: Callable[[], None] | None = None
        self._second_action: Callable[[], None] | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 8, 6, 8)
        layout.setSpacing(10)
        self.icon = QLabel()
        layout.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        self.action_button = QPushButton()
        self.action_button.clicked.connect(self._run_action)
        layout.addWidget(self.action_button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.second_button = QPushButton()
        self.second_button.clicked.connect(self._run_second_action)
        layout.addWidget(self.second_button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.close_button = QToolButton()
        self.close_button.setAutoRaise(True)
        self.close_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_TitleBarCloseButton))
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.dismiss)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    @property
    def level(self) -> str:
        return self._level

    def text(self) -> str:
        return self.label.text() if self.isVisibleTo(self.parentWidget()) else ""

    def show_message(self, text: str, level: str = "error", action: tuple[str, Callable[[], None]] | None = None,
                     second: tuple[str, Callable[[], None]] | None = None) -> None:
        self._level = level if level in LEVELS else "error"
        self.label.setText(text)
        self._action = action[1] if action else None
        self.action_button.setText(action[0] if action else "")
        self.action_button.setVisible(action is not None)
        self._second_action = second[1] if second else None
        self.second_button.setText(second[0] if second else "")
        self.second_button.setVisible(second is not None)
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        self.icon.setPixmap(self.style().standardIcon(LEVELS[self._level][1]).pixmap(size, size))
        self._apply_colours()
        self.show()

    def dismiss(self) -> None:
        self.hide()
        self._action = self._second_action = None

    def _run_action(self) -> None:
        action = self._action
        if action is not None:
            action()

    def _run_second_action(self) -> None:
        action = self._second_action
        if action is not None:
            action()

    def _apply_colours(self) -> None:
        # Mix from the application palette, not our own: the style sheet changes ours.
        palette = QApplication.palette()
        tint = QColor(LEVELS[self._level][0])
        background = _mix(palette.color(QPalette.ColorRole.Window), tint, 0.16)
        sheet = f"#MessageBar {{ background: {background.name()}; border: 1px solid {tint.name()}; border-radius: 6px; }}"
        if sheet != self.styleSheet():
            self.setStyleSheet(sheet)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        palette_events = (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange)
        if event.type() in palette_events and self.isVisible():
            self._apply_colours()
