"""Menu items made one way: text, what it does, an optional shortcut."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu


def add_action(menu: QMenu, text: str, slot: Callable[..., object],
               shortcut: QKeySequence.StandardKey | str | None = None) -> QAction:
    """A new action in ``menu`` (which owns it) that runs ``slot``."""
    action = QAction(text, menu)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(slot)
    menu.addAction(action)
    return action
