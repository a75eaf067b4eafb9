"""Notice photos added, changed, removed or renamed in the open folders while the window is open.

Qt's file system watcher (inotify, FSEvents, ReadDirectoryChangesW) watches
the open folders and their subfolders; a change asks for one rescan after the
folder has been quiet for a moment (a copy of 500 photos is one rescan, not
500). The rescan itself is the engine's: it indexes only what changed.
Listing the subfolders to watch runs in a thread, so a slow network folder
never freezes the window; beyond :data:`MAX_WATCHED` folders only the opened
folders themselves are watched (File ▸ Rescan Folders still finds the rest).
"""

from __future__ import annotations

import logging
import os
import threading

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

log = logging.getLogger(__name__)

QUIET_MS = 1500  # a folder must be quiet this long before the rescan starts
MAX_WATCHED = 4000  # folders; OS limits (inotify watches, open files) are per user


class FolderWatcher(QObject):
    """Emits ``changed`` once the watched folders have been quiet for :data:`QUIET_MS` after a change."""

    changed = Signal()
    _listed = Signal(int, list)  # generation, folders to watch (from the listing thread)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(self._on_change)
        self._quiet = QTimer(self, singleShot=True, interval=QUIET_MS)
        self._quiet.timeout.connect(self.changed)
        self._listed.connect(self._add)
        self._generation = 0

    def watch(self, roots: list[str]) -> None:
        """Watch these folders (and their subfolders) instead of any watched before.

        Folders watched already stay watched throughout (only the difference changes), so
        that no change is missed while the subfolders are listed again.
        """
        self._generation += 1
        generation = self._generation
        threading.Thread(target=lambda: self._listed.emit(generation, _folders_under(roots)),
                         name="photosort-watch-list", daemon=True).start()

    def folders(self) -> list[str]:
        return list(self._watcher.directories())

    def _add(self, generation: int, folders: list[str]) -> None:
        if generation != self._generation:
            return  # another watch() came meanwhile
        watched, wanted = set(self._watcher.directories()), set(folders)
        gone = [f for f in watched if f not in wanted]
        if gone:
            self._watcher.removePaths(gone)
        new = [f for f in folders if f not in watched]
        if new:
            failed = self._watcher.addPaths(new)
            if failed:
                log.info("cannot watch %d folders (e.g. %s); File ▸ Rescan Folders finds their changes",
                         len(failed), failed[0])

    def _on_change(self, folder: str) -> None:
        log.debug("changed: %s", folder)
        self._quiet.start()  # restarted by every change: one rescan once it is quiet


def _folders_under(roots: list[str]) -> list[str]:
    """The roots and their subfolders (hidden ones skipped, symlinks not followed), up to MAX_WATCHED."""
    found: list[str] = []
    for root in roots:
        found.append(root)
        for folder, subfolders, _files in os.walk(root, followlinks=False):
            subfolders[:] = [s for s in subfolders if not s.startswith(".")]
            if folder != root:
                found.append(folder)
            if len(found) > MAX_WATCHED:
                log.info("more than %d folders under %s: watching only the opened folders", MAX_WATCHED, roots)
                return list(roots)
    return found
