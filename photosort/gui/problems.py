"""Photos that could not be read, each with its reason, so nothing is dropped silently."""

from __future__ import annotations

import os

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..core.paths import display_path

HEADERS = ("Photo", "Folder", "Why it could not be read")


class ProblemsModel(QAbstractTableModel):
    """(path, reason) rows: the file's name, its folder (relative to the opened one), and why."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[str, str]] = []
        self._roots: list[str] = []

    def set_problems(self, problems: list[tuple[str, str]], roots: list[str]) -> None:
        self.beginResetModel()
        self._rows = sorted(problems)
        self._roots = list(roots)
        self.endResetModel()

    def problems(self) -> list[tuple[str, str]]:
        return list(self._rows)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        path, reason = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (display_path(os.path.basename(path)), display_path(self._shown_folder(path)), reason)[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{display_path(path)}\n{reason}"
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal and 0 <= section < len(HEADERS):
            return HEADERS[section]
        return None

    def as_text(self) -> str:
        return "\n".join(f"{display_path(path)}\t{reason}" for path, reason in self._rows)

    def _shown_folder(self, path: str) -> str:
        """The folder as the user knows it: the opened folder's name, then the subfolders below it."""
        folder = os.path.dirname(path)
        for root in self._roots:
            root = root.rstrip(os.sep)
            if folder == root or folder.startswith(root + os.sep):
                return os.path.join(os.path.basename(root), os.path.relpath(folder, root)).rstrip(os.sep + ".")
        return folder


class ProblemsDialog(QDialog):
    """A window listing the unreadable photos; non-modal so the user can keep working."""

    def __init__(self, model: ProblemsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Photos that could not be read")
        self.resize(760, 420)
        self.model = model
        layout = QVBoxLayout(self)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.table = QTableView()
        self.table.setModel(model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 340)
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy List", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QApplication.clipboard().setText(model.as_text()))
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        model.modelReset.connect(self._update_summary)
        self._update_summary()

    def _update_summary(self) -> None:
        n = self.model.rowCount()
        if n == 0:
            self.summary.setText("Every photo could be read.")
        elif n == 1:
            self.summary.setText("1 file could not be read, so it is not sorted. It is left untouched: fix or "
                                 "convert it, and it is read again the next time the folder is opened.")
        else:
            self.summary.setText(f"{n:,} files could not be read, so they are not sorted. They are left untouched: "
                                 "fix or convert them, and they are read again the next time the folder is opened.")
