"""Help ▸ Keyboard Shortcuts: every shortcut the window has, read from its actions (so the sheet cannot go stale)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMainWindow, QMenu, QTreeWidget, QTreeWidgetItem, QVBoxLayout

SHEET_NAME = "shortcut_sheet_name"  # an action property: its name on the sheet when its text changes as it is used


def _text(action: QAction) -> str:
    named = action.property(SHEET_NAME)
    if isinstance(named, str) and named:
        return named
    return action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…")


def _keys(action: QAction) -> str:
    return ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts() if not s.isEmpty())


def _menu_shortcuts(menu: QMenu) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for action in menu.actions():
        if action.menu() is not None:
            rows += _menu_shortcuts(action.menu())
        elif _keys(action):
            rows.append((_text(action), _keys(action)))
    return rows


def shortcut_sections(window: QMainWindow, grid_actions: list[QAction],
                      more: Sequence[tuple[str, list[QAction]]] = ()) -> list[tuple[str, list[tuple[str, str]]]]:
    """(section, [(what, keys)]): one section per menu, then the keys of the photo grid, then ``more`` (the keys of
    other views: (title, actions))."""
    sections = []
    for action in window.menuBar().actions():
        menu = action.menu()
        rows = _menu_shortcuts(menu) if menu is not None else []
        if rows:
            sections.append((_text(action), rows))
    grid = [(_text(a), _keys(a)) for a in grid_actions if _keys(a)]
    if grid:
        sections.append(("In the photo grid", grid))
    for title, actions in more:
        rows = [(_text(a), _keys(a)) for a in actions if _keys(a)]
        if rows:
            sections.append((title, rows))
    return sections


class ShortcutsDialog(QDialog):
    """A two-column sheet: what, and its keys."""

    def __init__(self, window: QMainWindow, grid_actions: list[QAction],
                 more: Sequence[tuple[str, list[QAction]]] = ()) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard Shortcuts")
        self.resize(460, 560)
        layout = QVBoxLayout(self)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Action", "Keys"])
        self.tree.setRootIsDecorated(False)
        for section, rows in shortcut_sections(window, grid_actions, more):
            header = QTreeWidgetItem([section, ""])
            font = header.font(0)
            font.setBold(True)
            header.setFont(0, font)
            header.setFirstColumnSpanned(True)
            self.tree.addTopLevelItem(header)
            for what, keys in rows:
                self.tree.addTopLevelItem(QTreeWidgetItem([f"    {what}", keys]))
        self.tree.resizeColumnToContents(0)
        layout.addWidget(self.tree)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
