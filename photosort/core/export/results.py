"""What an export, a finished move or an undo did, for the CLI, the window and the logs.

:class:`ExportResult` (``done``, ``skipped``, ``failed``, ``journal``,
``cancelled``, ``already``: photos whose bytes the destination already held,
so nothing was written for them, plus ``placed``: one :class:`Placed` per
photo with its final path and method, ``copy``/``move``/``copy+delete``/``hardlink``/``symlink``)
and :class:`UndoResult`; both have ``to_json()``. :class:`ExportStopped` is the
:class:`~photosort.core.errors.ExportError` raised when an export stops as a
whole; it carries the partial result. These types depend on nothing else in
the package, so any module (and any caller) can import them alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photosort.core.errors import ExportError
from photosort.core.wording import plural

PAST = {"copy": "Copied", "move": "Moved", "link": "Linked"}  # the verb of a finished export, by mode
# What --mode link (the window's Link) does, said once: link_or_symlink makes a hard link where it can, else a symbolic one.
HOW_LINKS_WORK = ("hard links where the destination is on the same disk as the photo (both names are the same file: "
                  "no extra space, and editing one edits the other), symbolic links where it is on another disk")
_LINK_KINDS = (("hardlink", "hard link", "hard links"),
               ("symlink", "symbolic link to another disk", "symbolic links to another disk"))


@dataclass(frozen=True)
class Placed:
    """A photo that reached its destination, and how: ``copy``, ``move``,
    ``copy+delete`` (a move across disks), ``hardlink`` or ``symlink``."""

    source: Path
    destination: Path
    method: str


@dataclass
class ExportResult:
    """What :func:`run_export` or :func:`resume_or_recover` did."""

    done: int = 0
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    journal: Path | None = None
    cancelled: bool = False
    mode: str = "copy"
    placed: list[Placed] = field(default_factory=list)
    already: list[tuple[Path, Path]] = field(default_factory=list)  # (photo, the identical file already there)
    sidecars: int = 0  # sidecar files carried along (never counted as photos)
    sidecars_failed: list[tuple[Path, str]] = field(default_factory=list)  # (sidecar, why it was not carried)

    def methods(self) -> dict[str, int]:
        """How many photos were placed by each method (e.g. hard vs symbolic links)."""
        counts: dict[str, int] = {}
        for placed in self.placed:
            counts[placed.method] = counts.get(placed.method, 0) + 1
        return counts

    def summary(self) -> str:
        """The headline both faces show, e.g. "Linked 70 photos (68 hard links, 2 symbolic links to another disk)
        and 5 sidecars": without the destination or a full stop, which each face adds its own way. A link export
        says how many of each kind, because they differ: a symbolic link breaks if its original moves."""
        links = links_note(self.methods()) if self.mode == "link" else ""
        return f"{PAST.get(self.mode, 'Exported')} {plural(self.done, 'photo')}{links}{sidecars_note(self.sidecars)}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable summary for the CLI's ``--json`` and for logs."""
        return {
            "mode": self.mode,
            "done": self.done,
            "already_there": [{"source": str(s), "destination": str(d)} for s, d in self.already],
            "cancelled": self.cancelled,
            "journal": None if self.journal is None else str(self.journal),
            "methods": self.methods(),
            "skipped": _pairs_to_json(self.skipped, "reason"),
            "failed": _pairs_to_json(self.failed, "reason"),
            "placed": [{"source": str(p.source), "destination": str(p.destination), "method": p.method} for p in self.placed],
            "sidecars": self.sidecars,
            "sidecars_failed": _pairs_to_json(self.sidecars_failed, "reason"),
        }


@dataclass
class UndoResult:
    """What :func:`undo_move` did; ``renamed`` lists (original place, where it went
    instead) for photos whose original place was taken by another file."""

    restored: int = 0
    renamed: list[tuple[Path, Path]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    cancelled: bool = False
    journal: Path | None = None
    moved_back: list[tuple[Path, Path]] = field(default_factory=list)  # (where the export put it, where it is now)
    sidecars: int = 0  # sidecar files put back beside their photos
    sidecars_failed: list[tuple[Path, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable summary."""
        return {
            "restored": self.restored,
            "cancelled": self.cancelled,
            "journal": None if self.journal is None else str(self.journal),
            "renamed": [{"original": str(a), "restored_to": str(b)} for a, b in self.renamed],
            "failed": _pairs_to_json(self.failed, "reason"),
            "sidecars": self.sidecars,
            "sidecars_failed": _pairs_to_json(self.sidecars_failed, "reason"),
        }


def links_note(methods: dict[str, int]) -> str:
    """`` (68 hard links, 2 symbolic links to another disk)`` from :meth:`ExportResult.methods`, or nothing
    where no photo was linked."""
    parts = [plural(methods[method], one, many) for method, one, many in _LINK_KINDS if methods.get(method)]
    return f" ({', '.join(parts)})" if parts else ""


def sidecars_note(carried: int) -> str:
    """`` and 5 sidecars`` to follow a photo count ("Copied 12 photos and 5 sidecars"), or nothing:
    sidecar files are never counted as photos."""
    return f" and {plural(carried, 'sidecar')}" if carried else ""


def sidecar_failures_note(failed: list[tuple[Path, str]]) -> str:
    """The one line that says sidecars stayed behind (the list says which and why), or nothing."""
    if not failed:
        return ""
    were = "was" if len(failed) == 1 else "were"
    return f"{plural(len(failed), 'sidecar file')} {were} not carried along with its photo:"


class ExportStopped(ExportError):
    """The export stopped as a whole (disk full, destination not writable, unsafe
    folder); ``result`` says what was done before, all of which is kept."""

    def __init__(self, message: str, result: ExportResult) -> None:
        super().__init__(message)
        self.result = result


def _pairs_to_json(pairs: list[tuple[Path, str]], key: str) -> list[dict[str, str]]:
    return [{"path": str(path), key: text} for path, text in pairs]
