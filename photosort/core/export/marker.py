"""The list of copies photosort made in a destination: ``.photosort-export``, written by exports, read by the scanner.

A copy or link export writes one line per file it placed into
:data:`MARKER_NAME` in the destination root (:class:`MarkerWriter`); when a
folder around the destination is indexed, the scanner leaves exactly those files
out (:func:`exported_copies`). So exporting ``~/Pictures`` into
``~/Pictures/Sorted`` does not make every re-index count the copies as new
photos, nor every re-export copy the copies — while photos a *move* put there
(the originals themselves) stay indexed, even in the same folder.

Format: lines starting with ``#`` explain the file to a person; every other
line is a JSON object, ``{"copy": "Cats/IMG_1.JPG"}`` (a copy or link placed
there) or ``{"moved": "Cats/IMG_1.JPG"}`` (an original moved to a name that was
once a copy's; the later line wins). Paths are relative to the root, with ``/``;
JSON's escapes keep any name exact, even one that is not UTF-8. Delete the file
to have the copies indexed like any other photos.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from contextlib import suppress
from pathlib import Path
from typing import IO

from .fileops import open_regular

log = logging.getLogger(__name__)

MARKER_NAME = ".photosort-export"
MAX_MARKER_BYTES = 64 << 20  # a larger one is not photosort's: ignored
HEADER = (
    "# photosort: this folder holds copies (or links) of photos from your library, written by photosort's export.\n"
    "# When photosort indexes a folder around this one, it leaves out the files listed below, so the copies are\n"
    "# not counted twice and a later export does not copy them again. Delete this file to index them too.\n"
)


def exported_copies(folder: str) -> set[str] | None:
    """The paths (``folder`` joined with each listed name) of the copies listed in
    ``folder``'s marker; None when it has none (or one that cannot be read)."""
    marker = os.path.join(folder, MARKER_NAME)
    try:
        if os.lstat(marker).st_size > MAX_MARKER_BYTES:
            return None
        with open_regular(Path(marker)) as handle:  # never a FIFO planted under its name
            lines = handle.read(MAX_MARKER_BYTES).decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return {os.path.join(folder, *name.split("/")) for name in _replay(lines)}


def _replay(lines: list[str]) -> set[str]:
    copies: set[str] = set()
    for line in lines:
        record = _parse(line)
        if record is None:
            continue
        if isinstance(record.get("copy"), str):
            copies.add(record["copy"])
        elif isinstance(record.get("moved"), str):
            copies.discard(record["moved"])
    return copies


def _parse(line: str) -> dict | None:
    if not line.strip() or line.startswith("#"):
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


class MarkerWriter:
    """Appends to a destination's marker as files are placed. Best effort: a marker
    that cannot be written only costs leaving the copies out of indexing, so it
    is logged, never fatal."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._handle: IO[str] | None = None
        self._listed: set[str] | None = None
        self._broken = False

    def copied(self, placed: Path) -> None:
        """A copy or link was placed (or found already there): list it."""
        name = self._name(placed)
        if name is not None and name not in self._listed_names():
            self._append({"copy": name})
            self._listed_names().add(name)

    def moved(self, placed: Path) -> None:
        """An original was moved here: if its name was once a copy's, it is not one now."""
        name = self._name(placed)
        if name is not None and name in self._listed_names():
            self._append({"moved": name})
            self._listed_names().discard(name)

    def close(self) -> None:
        if self._handle is not None:
            with suppress(OSError):
                self._handle.close()
            self._handle = None

    def _name(self, placed: Path) -> str | None:
        try:
            return placed.relative_to(self.root).as_posix()
        except ValueError:
            return None

    def _listed_names(self) -> set[str]:
        if self._listed is None:
            found = exported_copies(str(self.root)) or set()
            self._listed = {Path(path).relative_to(self.root).as_posix() for path in found}
        return self._listed

    def _append(self, record: dict[str, str]) -> None:
        if self._broken:
            return
        try:
            if self._handle is None:
                self._handle = self._open()
            self._handle.write(json.dumps(record) + "\n")
            self._handle.flush()
        except OSError as exc:
            self._broken = True
            log.warning("Could not write %s (%s): indexing a folder around %s will count its copies as photos",
                        self.root / MARKER_NAME, exc, self.root)

    def _open(self) -> IO[str]:
        """Append to the marker itself: never through a link planted under its name."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(self.root / MARKER_NAME, flags, 0o644)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise OSError(f"{MARKER_NAME} is not a plain file")
            handle = os.fdopen(fd, "a", encoding="utf-8")
        except BaseException:
            os.close(fd)
            raise
        if info.st_size == 0:
            handle.write(HEADER)
        return handle
