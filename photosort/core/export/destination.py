"""What an export destination already holds: leftovers of a killed run, and photos already there.

(The list of copies an export made there, which indexing leaves out, is :mod:`.marker`.)

* **Leftovers.** A run killed mid-copy leaves a ``.photosort-….partial`` file
  (or, on a disk without hard links, a name reservation holding
  :data:`~photosort.core.export.fileops.PLACEHOLDER`); :func:`clean_leftovers`
  removes such files — only those, recognised by name or by that exact content —
  from the root and its category folders before a run starts. The export lock
  makes sure no other run of this library is writing them at that moment.
* **Already there.** :class:`AlreadyThere` finds a file in the target folder
  that already holds a photo's bytes — the same name or one of its `` (n)``
  variants, the same size, then the same hash — so a re-run skips it instead of
  writing ``IMG (2).JPG``. Sizes settle almost every comparison; a file is
  hashed only when its size matches.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from .fileops import PLACEHOLDER, LazyContent, discard, is_placeholder, is_temp_name, same_file
from .names import name_family

log = logging.getLogger(__name__)

def clean_leftovers(root: Path, folders: Iterable[Path] = ()) -> int:
    """Remove the temporary files of a killed run from ``root``, its first-level
    folders (where a ``{category}`` export writes) and ``folders`` (where a nested
    layout writes: the plan's or the journal's target folders, only those inside
    ``root``). Returns how many were removed."""
    removed = 0
    for folder in dict.fromkeys([root, *_subfolders(root), *_inside(root, folders)]):
        for entry in _entries(folder):
            if is_temp_name(entry.name) or (_size(entry) == len(PLACEHOLDER) and is_placeholder(Path(entry.path))):
                discard(Path(entry.path))
                removed += 1
    if removed:
        log.info("Removed %d temporary file(s) left in %s by an interrupted run", removed, root)
    return removed


def _inside(root: Path, folders: Iterable[Path]) -> list[Path]:
    prefix = os.path.join(os.path.abspath(root), "")
    return [Path(f) for f in folders if os.path.join(os.path.abspath(f), "").startswith(prefix)]


def _subfolders(root: Path) -> list[Path]:
    try:
        with os.scandir(root) as entries:
            return [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return [entry for entry in entries if entry.is_file(follow_symlinks=False)]
    except OSError:
        return []


def _size(entry: os.DirEntry[str]) -> int:
    try:
        return entry.stat(follow_symlinks=False).st_size
    except OSError:
        return -1


def _names(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []


class AlreadyThere:
    """The names in each target folder, grouped by :func:`name_family`, read once per
    folder and kept up to date with what this run places."""

    def __init__(self, accept_links_to_source: bool = False) -> None:
        self._families: dict[Path, dict[str, list[str]]] = {}
        self._links_ok = accept_links_to_source

    def find(self, target: Path, photo: LazyContent) -> Path | None:
        """A file in ``target``'s folder, named like ``target``, that already holds the photo."""
        family = self._family_index(target.parent).get(name_family(target.name), [])
        for name in family:
            candidate = target.parent / name
            if self._holds(candidate, photo):
                return candidate
        return None

    def add(self, placed: Path) -> None:
        """Remember a file this run placed, so a duplicate later in the run is recognised too."""
        index = self._families.get(placed.parent)
        if index is not None:
            index.setdefault(name_family(placed.name), []).append(placed.name)

    def _family_index(self, folder: Path) -> dict[str, list[str]]:
        index = self._families.get(folder)
        if index is None:
            index = {}
            for name in _names(folder):
                index.setdefault(name_family(name), []).append(name)
            self._families[folder] = index
        return index

    def _holds(self, candidate: Path, photo: LazyContent) -> bool:
        if same_file(candidate, photo.path):
            return not candidate.is_symlink() or self._links_ok
        if candidate.is_symlink():
            return False
        return photo.is_at(candidate)
