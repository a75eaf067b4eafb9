"""Planning an export: which photo goes to which folder, under which name, decided up front.

:func:`plan_export` writes nothing; it returns an :class:`ExportPlan` that can be
previewed (:meth:`ExportPlan.counts`) and is then carried out as is by
:func:`~photosort.core.export.run.run_export`. ``mode`` is ``"copy"``,
``"move"`` or ``"link"``; ``unsure`` is ``"folder"`` (photos the classifier was
unsure about go to an ``Unsure`` folder) or ``"skip"``. A destination that is a
file raises :class:`~photosort.core.errors.ExportError`.

Where in the destination is the ``layout`` (:mod:`.layout`): ``{category}``
(the default) makes one folder per category, ``{category}/{year}/{month}`` and
the like nest folders by capture date, camera or original folder. Each level's
folder is chosen against what already exists there, as category folders are.

Choices worth knowing: a move may go into the photos' own folder (sorting
"in place" into subfolders); a photo already in its target folder is skipped;
a copy or link never takes a photo that already lies inside the destination
(that would copy the copies of an earlier export); in move mode a source that
is a symbolic link is skipped rather than moved.
Every planned folder is checked with :func:`os.path.realpath` to be a child of
the destination (it is checked again just before writing).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from photosort.core.capture import file_time
from photosort.core.errors import ExportError
from photosort.core.raw import is_raw_name
from photosort.core.sidecar_names import Listings, existing_sidecars, is_sidecar_name, renamed_sidecar, shared_sidecars

from .layout import DEFAULT_LAYOUT, Layout, LevelKey, PhotoFacts, level_sort_key, parse_layout
from .names import MAX_SUFFIX, fold, numbered_file_name, numbered_folder_name, safe_folder_name
from .shots import one_folder_per_shot

log = logging.getLogger(__name__)

MODES = ("copy", "move", "link")
UNSURE_POLICIES = ("folder", "skip")


@dataclass(frozen=True)
class ExportItem:
    """One photo to export; ``category=None`` means the classifier was unsure.

    ``taken`` (ISO local time: the capture time, else the file time) and ``camera``
    feed layouts that use them; without ``taken`` the file's time is read when planning.
    """

    source: Path
    category: str | None
    score: float = 1.0
    taken: str | None = None
    camera: str | None = None


@dataclass(frozen=True)
class PlannedMove:
    """Where one photo will go; ``folder`` is its (safe) folder under the root, levels joined by ``/``.
    ``sidecars``: its XMP sidecar files, which go with it (renamed as it is, see :mod:`photosort.core.sidecar_names`)."""

    source: Path
    destination: Path
    folder: str
    sidecars: tuple[Path, ...] = ()

    @property
    def parts(self) -> tuple[str, ...]:
        """The folder's levels (each a safe name, so ``/`` never occurs inside one)."""
        return tuple(self.folder.split("/"))


@dataclass
class ExportPlan:
    """Everything :func:`run_export` will do, decided up front so it can be previewed."""

    destination: Path
    mode: str
    moves: list[PlannedMove]
    skipped: list[tuple[Path, str]]
    layout: str = DEFAULT_LAYOUT

    def counts(self) -> dict[str, int]:
        """Photos per destination folder, in plan order, for previews."""
        counts: dict[str, int] = {}
        for move in self.moves:
            counts[move.folder] = counts.get(move.folder, 0) + 1
        return counts

    def sidecar_count(self) -> int:
        """How many sidecar files go along with the photos (never counted as photos)."""
        return sum(len(move.sidecars) for move in self.moves)


def plan_export(
    items: Iterable[ExportItem],
    destination: Path,
    *,
    mode: str = "copy",
    unsure: str = "folder",
    unsure_name: str = "Unsure",
    layout: str | Layout = DEFAULT_LAYOUT,
) -> ExportPlan:
    """Decide where every photo goes, without writing anything.

    Folders and file names are chosen against what already exists in the
    destination (case-insensitively), so the plan shown to the user is what
    :func:`run_export` will do unless files appear in between. A bad ``layout``
    raises :class:`~photosort.core.export.layout.LayoutError`.
    """
    check_choice("mode", mode, MODES)
    check_choice("unsure", unsure, UNSURE_POLICIES)
    layout = parse_layout(layout)
    root = Path(os.path.abspath(destination))
    check_destination(root)
    items = one_folder_per_shot(list(items))  # a RAW and its JPEG twin go to one folder
    root_real = os.path.realpath(root)
    skipped: dict[int, tuple[Path, str]] = {}
    kept: list[tuple[int, Path, ExportItem]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        source = Path(os.path.abspath(item.source))
        reason = _skip_reason(source, item.category, mode, unsure == "folder", seen)
        if reason is not None:
            skipped[index] = (source, reason)
        else:
            kept.append((index, source, item))
    unsure_base = _unsure_folder_base(unsure_name, sorted({i.category for i in items if i.category is not None}))
    facts = [_facts(source, item, layout) for _, source, item in kept]
    folders = _assign_folders(facts, root, layout, unsure_base)
    names = _NameBook(root)
    moves: list[PlannedMove] = []
    placeable = [(index, source, parts) for (index, source, _item), parts in zip(kept, folders, strict=True)]
    for index, source, parts in placeable:
        reason = _placement_problem(source, parts, mode, root_real)
        if reason is not None:
            skipped[index] = (source, reason)
    sidecars = _sidecars_of([source for index, source, _ in placeable if index not in skipped], mode)
    for index, source, parts in placeable:
        if index in skipped:
            continue
        folder = "/".join(parts)
        carried = sidecars.get(source, ())
        target = root.joinpath(*parts, names.claim(folder, source.name, [s.name for s in carried]))
        moves.append(PlannedMove(source, target, folder, carried))
    for move in moves:
        _assert_planned_inside(root_real, move)
    log.info("Planned %s of %d photos into %s (layout %s)", mode, len(moves), root, layout.template)
    return ExportPlan(root, mode, moves, [skipped[i] for i in sorted(skipped)], layout.template)


def check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")


def check_destination(root: Path) -> None:
    """The destination may not exist yet, but it must not be a file or a broken link."""
    if os.path.lexists(root) and not root.is_dir():
        kind = "broken link" if root.is_symlink() and not root.exists() else "file"
        raise ExportError(f"The destination {root} is a {kind}, not a folder: choose a folder to export into.")


@dataclass
class _Existing:
    name: str
    plain_dir: bool


def _existing_entries(folder: Path) -> dict[str, _Existing]:
    """What is already in ``folder``, keyed by folded name; links never count as folders."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return {}
    entries: dict[str, _Existing] = {}
    for name in names:
        path = folder / name
        plain = path.is_dir() and not path.is_symlink()
        key = fold(name)
        if key in entries:
            entries[key].plain_dir = entries[key].plain_dir and plain
        else:
            entries[key] = _Existing(name, plain)
    return entries


def _facts(source: Path, item: ExportItem, layout: Layout) -> PhotoFacts:
    """What the layout needs of one photo; its file time is read only when a date is used and not given."""
    when = item.taken
    if when is None and layout.needs_capture_facts:
        try:
            when = file_time(os.stat(source).st_mtime_ns)
        except OSError:
            when = None
    return PhotoFacts(item.category, when, item.camera, str(source.parent))


def _assign_folders(facts: list[PhotoFacts], root: Path, layout: Layout, unsure_base: str) -> list[tuple[str, ...]]:
    """Each photo's folder levels: at every level one folder per distinct value (sorted for stable names),
    claimed against what that folder already holds, so two values never share a folder by accident."""
    levels = [layout.folder_levels(f, unsure_base) for f in facts]
    out: list[tuple[str, ...]] = [()] * len(facts)
    if facts:
        _claim_level(root, (), list(range(len(facts))), levels, out)
    return out


def _claim_level(root: Path, parent: tuple[str, ...], members: list[int],
                 levels: list[list[tuple[LevelKey, str]]], out: list[tuple[str, ...]]) -> None:
    depth = len(parent)
    if depth == len(levels[members[0]]):
        for member in members:
            out[member] = parent
        return
    by_key: dict[LevelKey, list[int]] = {}
    for member in members:
        by_key.setdefault(levels[member][depth][0], []).append(member)
    existing = _existing_entries(root.joinpath(*parent))
    claimed: set[str] = set()
    for key in sorted(by_key, key=level_sort_key):
        group = by_key[key]
        name = _claim_folder(levels[group[0]][depth][1], existing, claimed)
        _claim_level(root, (*parent, name), group, levels, out)


def _unsure_folder_base(unsure_name: str, categories: list[str]) -> str:
    """``Unsure``, unless a category already uses that name: then ``Unsure (photosort)``."""
    base = safe_folder_name(unsure_name)
    if fold(base) in {fold(safe_folder_name(c)) for c in categories}:
        base = safe_folder_name(f"{base} (photosort)")
    return base


def _claim_folder(base: str, existing: dict[str, _Existing], claimed: set[str]) -> str:
    """First free variant of ``base``; reuses an existing plain folder of that name,
    never a file or a link, and never one another category already took."""
    for number in range(1, MAX_SUFFIX):
        candidate = base if number == 1 else numbered_folder_name(base, number)
        key = fold(candidate)
        entry = existing.get(key)
        if key in claimed or (entry is not None and not entry.plain_dir):
            continue
        claimed.add(key)
        return entry.name if entry is not None else candidate
    raise ExportError(f"Too many folders named like {base!r}: choose an empty destination.")


def _sidecars_of(sources: list[Path], mode: str) -> dict[Path, tuple[Path, ...]]:
    """Each photo's sidecars in its own folder. A ``IMG_1.xmp`` that ``IMG_1.CR2`` and ``IMG_1.JPG`` share
    goes with one of them (the RAW, else the first), so it is carried once and lands beside the pair; a move
    takes it only when every file of that stem goes (it never takes a RAW's sidecar away from the RAW)."""
    listings = Listings()
    exported = set(sources)
    own: dict[Path, list[Path]] = {}
    shared: dict[Path, Path] = {}
    for _, source in sorted(enumerate(sources), key=lambda pair: (not is_raw_name(pair[1]), pair[0])):
        own[source] = [Path(p) for p in existing_sidecars(str(source), str(source.parent), listings)]
        for sidecar in map(Path, shared_sidecars(str(source), listings)):
            if sidecar in shared:
                continue
            shared[sidecar] = source
            if mode != "move" or _whole_stem_goes(source, exported, listings):
                own[source].append(sidecar)
            else:
                log.info("%s stays: a file of its stem beside it is not moved", sidecar)
    return {source: tuple(found) for source, found in own.items() if found}


def _whole_stem_goes(source: Path, exported: set[Path], listings: Listings) -> bool:
    stem = source.stem
    return all(source.parent / name in exported for name in listings.names(str(source.parent))
               if not is_sidecar_name(name) and os.path.splitext(name)[0] == stem)


class _NameBook:
    """Names taken in each destination folder (existing or planned), case-insensitively."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._taken: dict[str, set[str]] = {}

    def claim(self, folder: str, name: str, sidecars: Sequence[str] = ()) -> str:
        """A free name for the photo whose sidecars' names (renamed as it is) are all free too."""
        taken = self._taken.get(folder)
        if taken is None:
            taken = set(_existing_entries(self._root / folder))
            self._taken[folder] = taken
        candidate = name
        for number in range(2, MAX_SUFFIX):
            wanted = [candidate, *(renamed_sidecar(s, name, candidate) for s in sidecars)]
            if not any(fold(n) in taken for n in wanted):
                break
            candidate = numbered_file_name(name, number)
        taken.update(fold(n) for n in [candidate, *(renamed_sidecar(s, name, candidate) for s in sidecars)])
        return candidate


def _skip_reason(source: Path, category: str | None, mode: str, with_unsure: bool, seen: set[str]) -> str | None:
    """Why this photo must not be exported whatever its folder, or None when it can be."""
    if category is None and not with_unsure:
        return "unsure, left out"
    problem = _source_problem(source, mode)
    if problem is not None:
        return problem
    key = os.path.realpath(source)
    if key in seen:
        return "listed twice"
    seen.add(key)
    return None


def _placement_problem(source: Path, parts: tuple[str, ...], mode: str, root_real: str) -> str | None:
    """Why this photo must not go to its folder, or None when it can."""
    if os.path.realpath(source.parent) == os.path.join(root_real, *parts):
        return f"already in the folder {'/'.join(parts)!r}"
    if mode != "move" and _lies_inside(source, root_real):
        return "it already lies inside the destination (copying it there again would duplicate it)"
    return None


def _lies_inside(source: Path, root_real: str) -> bool:
    """Where the photo's name really is (its folder's links resolved) is under the destination."""
    where = os.path.join(os.path.realpath(source.parent), source.name)
    return where.startswith(root_real.rstrip(os.sep) + os.sep)


def _source_problem(source: Path, mode: str) -> str | None:
    try:
        info = os.lstat(source)
    except FileNotFoundError:
        return "the photo is missing"
    except OSError as exc:
        return f"the photo cannot be read ({exc.strerror})"
    if stat.S_ISLNK(info.st_mode):
        if mode == "move":
            return "it is a symbolic link; move the file it points to instead"
        try:
            info = os.stat(source)
        except OSError:
            return "it is a broken symbolic link"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if not os.access(source, os.R_OK):
        return "the photo cannot be read (permission denied)"
    if mode == "move" and not os.access(source.parent, os.W_OK | os.X_OK):
        return "its folder is read-only, so it cannot be moved (copy it instead)"
    return None


def _is_plain_component(name: str) -> bool:
    separators = {os.sep, os.altsep or os.sep, "/", "\\", "\0"}
    return name not in ("", ".", "..") and not any(sep in name for sep in separators)


def _assert_planned_inside(root_real: str, move: PlannedMove) -> None:
    """Defence in depth: the planned folder must really be a descendant of the root, level by level."""
    parts = move.parts
    parent_real = os.path.realpath(move.destination.parent)
    if (
        parent_real != os.path.join(root_real, *parts)
        or not all(_is_plain_component(part) for part in parts)
        or not _is_plain_component(move.destination.name)
    ):
        raise ExportError(
            f"Refusing to export {move.source}: {move.destination} would be outside "
            f"{root_real}. Remove links inside the destination or choose another folder."
        )
