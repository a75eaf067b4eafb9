"""The grid's search field: search by meaning as you type, Enter at once, Escape or ✕ to go back."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QLineEdit, QWidget

SEARCH_DELAY_MS = 450  # typing pauses this long before the search runs


class SearchField(QLineEdit):
    """Emits ``searchRequested`` once typing pauses (or on Enter), ``cleared`` when emptied (✕, Escape, by hand)."""

    searchRequested = Signal(str)
    cleared = Signal()
    escaped = Signal()  # Escape: back to the photos (the window moves the focus to the grid)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText("Search by meaning, e.g. dog on a beach")
        self.setClearButtonEnabled(True)
        self.setAccessibleName("Search")
        self.setToolTip("Find photos by what they show (Ctrl+F); Escape goes back")
        self.setMinimumWidth(150)
        self._shown = ""  # a text put here for the user to read (e.g. "Like IMG_1.jpg"), not a query
        self._timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._timer.timeout.connect(self.search_now)
        self.textEdited.connect(self._on_edited)
        self.textChanged.connect(self._on_changed)
        self.returnPressed.connect(self.search_now)

    def show_text(self, text: str) -> None:
        """Show what the grid shows (Find Similar) without searching for it; clearing it still goes back."""
        self._timer.stop()
        self._shown = text
        self.setText(text)  # not textEdited: no search; textChanged keeps the ✕ button in step

    def search_now(self) -> None:
        self._timer.stop()
        query = self.text().strip()
        if query and query != self._shown:
            self.searchRequested.emit(query)

    def _on_edited(self, text: str) -> None:
        self._shown = ""
        if text.strip():
            self._timer.start()

    def _on_changed(self, text: str) -> None:
        if not text.strip():
            self._timer.stop()
            self._shown = ""
            self.cleared.emit()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.clear()
            self.escaped.emit()
            event.accept()
            return
        super().keyPressEvent(event)
