"""Notice photos added, changed, removed or renamed in the open folders while the window is open.

watchdog (inotify on Linux, FSEvents on macOS, ReadDirectoryChangesW on
Windows) watches the open folders and everything under them. Unlike a folder
watch, it also reports a photo rewritten in place (an editor saving over it).
Only events on photos and folders count (a sidecar photosort or a photo
manager writes does not), and a change asks for one rescan after the folders
have been quiet for a moment (a copy of 500 photos is one rescan, not 500).
The rescan itself is the engine's: it indexes only what changed.

On Linux each folder costs one inotify watch (a per-user limit), so counting
the subfolders runs in a thread (a slow network folder never freezes the
window); beyond :data:`MAX_WATCHED` folders only the opened folders
themselves are watched (File ▸ Rescan Folders still finds the rest).
"""

from __future__ import annotations

import logging
import os
import threading

from PySide6.QtCore import QObject, QTimer, Signal
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from ..core.scan import is_photo_name

log = logging.getLogger(__name__)

QUIET_MS = 1500  # the folders must be quiet this long before the rescan starts
MAX_WATCHED = 4000  # folders; OS limits (inotify watches, open files) are per user
_COUNTS = ("created", "deleted", "moved", "modified", "closed")  # watchdog's event types that may change a photo


class _PhotoEvents(FileSystemEventHandler):
    """Runs on watchdog's thread: passes on events that concern photos or folders, nothing else."""

    def __init__(self, notify: Signal) -> None:
        super().__init__()
        self._notify = notify

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _COUNTS:
            return
        if event.event_type == "modified" and event.is_directory:
            return  # a folder's own times change with every file written in it: the file's event says enough
        paths = [event.src_path, getattr(event, "dest_path", "") or ""]
        if event.is_directory or any(p and is_photo_name(os.fsdecode(p)) for p in paths):
            self._notify.emit()


class FolderWatcher(QObject):
    """Emits ``changed`` once the watched folders have been quiet for :data:`QUIET_MS` after a change to a photo."""

    changed = Signal()
    _event = Signal()  # from watchdog's thread
    _counted = Signal(int, list, bool)  # generation, roots, recursive (from the counting thread)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._observer: BaseObserver | None = None
        self._watched: list[str] = []
        self._quiet = QTimer(self, singleShot=True, interval=QUIET_MS)
        self._quiet.timeout.connect(self.changed)
        self._event.connect(self._quiet.start)  # restarted by every change: one rescan once it is quiet
        self._counted.connect(self._start)
        self._generation = 0

    def watch(self, roots: list[str]) -> None:
        """Watch these folders (and, within the limit, everything under them) instead of any watched before."""
        self._generation += 1
        generation = self._generation
        threading.Thread(target=lambda: self._counted.emit(generation, list(roots), _few_enough_folders(roots)),
                         name="photosort-watch-count", daemon=True).start()

    def folders(self) -> list[str]:
        """The folders being watched (each with its subfolders)."""
        return list(self._watched)

    def stop(self) -> None:
        """Stop watching (the window closes, or other folders are opened)."""
        observer, self._observer, self._watched = self._observer, None, []
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)

    def _start(self, generation: int, roots: list[str], recursive: bool) -> None:
        if generation != self._generation:
            return  # another watch() came meanwhile
        if roots == self._watched and self._observer is not None:
            return  # the same folders: the running watch goes on (no change is missed while restarting)
        self.stop()
        observer = Observer()
        observer.daemon = True
        handler = _PhotoEvents(self._event)
        try:
            for root in roots:
                observer.schedule(handler, root, recursive=recursive)
            observer.start()
        except OSError as exc:  # e.g. the inotify limit: F5 still finds every change
            log.info("cannot watch %s (%s); File ▸ Rescan Folders finds their changes", ", ".join(roots), exc)
            return
        self._observer, self._watched = observer, list(roots)


def _few_enough_folders(roots: list[str]) -> bool:
    """Whether the roots hold at most MAX_WATCHED folders (hidden ones skipped, symlinks not followed)."""
    found = 0
    for root in roots:
        for _folder, subfolders, _files in os.walk(root, followlinks=False):
            subfolders[:] = [s for s in subfolders if not s.startswith(".")]
            found += 1
            if found > MAX_WATCHED:
                log.info("more than %d folders under %s: watching only the opened folders", MAX_WATCHED, roots)
                return False
    return True
