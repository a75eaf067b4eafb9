"""Show a photo in the system's file manager, open it in its default app, copy its path.

Each platform has its own way to *select* a file in a file manager window
(Explorer's ``/select,``, Finder's ``open -R``, the freedesktop
``org.freedesktop.FileManager1.ShowItems`` D-Bus call that Nautilus, Dolphin,
Nemo and others answer); where none answers, the photo's folder is opened.
"""

from __future__ import annotations

import logging
import os
import sys
from urllib.parse import quote

from PySide6.QtCore import QProcess, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication

from ..core.paths import display_path

log = logging.getLogger(__name__)


def file_url(path: str) -> QUrl:
    """A file: URL for any path, also one whose name is not UTF-8 (its bytes percent-encoded, as on disk)."""
    if os.name == "posix":
        return QUrl.fromEncoded(b"file://" + quote(os.fsencode(os.path.abspath(path))).encode("ascii"))
    return QUrl.fromLocalFile(path)


def show_in_file_manager(path: str) -> None:
    """Open the file manager at the photo, selected where the platform allows."""
    if sys.platform == "win32" and QProcess.startDetached("explorer.exe", [f"/select,{os.path.normpath(path)}"]):
        return
    if sys.platform == "darwin" and QProcess.startDetached("open", ["-R", path]):
        return
    if sys.platform.startswith("linux") and _freedesktop_show_items(path):
        return
    QDesktopServices.openUrl(file_url(os.path.dirname(path)))


def _freedesktop_show_items(path: str) -> bool:
    try:
        from PySide6.QtDBus import QDBusConnection, QDBusInterface
    except ImportError:  # a PySide6 build without D-Bus
        return False
    bus = QDBusConnection.sessionBus()
    if not bus.isConnected():
        return False
    manager = QDBusInterface("org.freedesktop.FileManager1", "/org/freedesktop/FileManager1",
                             "org.freedesktop.FileManager1", bus)
    if not manager.isValid():
        return False
    reply = manager.call("ShowItems", [file_url(path).toString(QUrl.ComponentFormattingOption.FullyEncoded)], "")
    if reply.errorMessage():
        log.info("the file manager did not show %s: %s", path, reply.errorMessage())
        return False
    return True


def open_in_default_app(path: str) -> bool:
    return QDesktopServices.openUrl(file_url(path))


def copy_path(path: str) -> None:
    """The path as text; a name that is not UTF-8 is copied readably (``caf\\xe9.jpg``), as everywhere it is shown."""
    QGuiApplication.clipboard().setText(display_path(path))
