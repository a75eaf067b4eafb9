"""Export layouts: a folder template such as ``{category}/{year}/{month}`` that says where each photo goes.

Like the renaming templates of digiKam and Lightroom, a layout is text with
placeholders; ``/`` (or ``\\``) starts a subfolder. The placeholders:

=====================  =============================================================================
``{category}``         the photo's category (its label's, else its prediction's), or the unsure folder
``{year}``, ``{month}``,  when it was taken (EXIF capture time), else when its file was written:
``{day}``              ``2019``, ``07``, ``14`` (zero-padded, so folders sort in time order)
``{camera}``           the camera that took it, ``Unknown camera`` when its EXIF does not say
``{original_folder}``  the name of the folder the photo is in now (``Unknown folder`` if it has none)
=====================  =============================================================================

The default, :data:`DEFAULT_LAYOUT` (``{category}``), is the one folder per
category photosort has always made. Each folder level is filled in and then
made safe exactly like a category name (:func:`~.names.safe_folder_name`): a
camera called ``../../etc``, ``CON`` or ``Canon/EOS`` is one harmless folder
name, never a way out of the destination nor a second level; a value with
nothing usable left (a camera called ``...``) becomes its stated placeholder.

Two different values that come out alike on disk stay apart, as two
categories do: cameras ``Canon/EOS`` and ``Canon_EOS`` get ``Canon_EOS`` and
``Canon_EOS (2)``, and so do two open folders both called ``Holiday``
(``/a/Holiday``, ``/b/Holiday``) under ``{original_folder}`` — photos from
different places are never mixed. A layout without ``{category}`` ignores the
sorting (``--unsure skip`` still leaves unsure photos out); with it, the unsure
folder takes the category's place (``2019/07/Unsure``).

An unknown placeholder, a stray brace, an empty level (``{category}//{year}``,
a leading ``/``) or a ``.``/``..`` level is refused with :class:`LayoutError`,
which says which names are allowed. :func:`folder_tree` turns a plan's
per-folder counts into the indented tree the dry run and previews show.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from photosort.core.errors import UsageError
from photosort.core.wording import natural_key

from .names import is_blank_name, safe_folder_name

log = logging.getLogger(__name__)

DEFAULT_LAYOUT = "{category}"
PLACEHOLDERS = ("category", "year", "month", "day", "camera", "original_folder")
DATE_PLACEHOLDERS = frozenset({"year", "month", "day"})
MAX_LEVELS = 8
MAX_TEMPLATE_CHARS = 1000
UNKNOWN = {  # what a level says when the photo does not tell (a category is never blank: see safe_folder_name)
    "year": "Unknown year",
    "month": "Unknown month",
    "day": "Unknown day",
    "camera": "Unknown camera",
    "original_folder": "Unknown folder",
}
PRESETS = (  # what the window offers; any other template may be typed
    ("Category", "{category}"),
    ("Category / Year", "{category}/{year}"),
    ("Category / Year / Month", "{category}/{year}/{month}"),
    ("Year / Month / Category", "{year}/{month}/{category}"),
)

_TOKEN = re.compile(r"\{([^{}]*)\}")
_SEPARATORS = re.compile(r"[/\\]")
_ALLOWED = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)


class LayoutError(UsageError):
    """A folder template that cannot be used; the message names the allowed placeholders."""


@dataclass(frozen=True)
class PhotoFacts:
    """What a layout needs to know about one photo."""

    category: str | None  # None: the classifier was unsure
    when: str | None  # ISO 8601 local time: capture time, else file time (None: unknown)
    camera: str | None
    folder: str  # the folder the photo is in (its full path)


Piece = tuple[bool, str]  # (is a placeholder, its name or the literal text)
LevelKey = tuple[str | None, ...]  # what tells two folders of one level apart: the raw values used in it


@dataclass(frozen=True)
class Layout:
    """A parsed folder template: one tuple of pieces per folder level."""

    template: str
    levels: tuple[tuple[Piece, ...], ...]

    @classmethod
    def parse(cls, template: str) -> Layout:
        """Read a template; raises :class:`LayoutError` with what is wrong and what is allowed."""
        text = (template or "").strip()
        if not text:
            raise LayoutError(f"The folder layout is empty: use placeholders such as {{category}}/{{year}} "
                              f"(allowed: {_ALLOWED}).")
        if len(text) > MAX_TEMPLATE_CHARS:
            raise LayoutError(f"The folder layout is longer than {MAX_TEMPLATE_CHARS} characters.")
        parts = _SEPARATORS.split(text)
        if len(parts) > MAX_LEVELS:
            raise LayoutError(f"The folder layout has {len(parts)} levels; at most {MAX_LEVELS} are allowed.")
        return cls(text, tuple(_parse_level(part, text) for part in parts))

    @property
    def names(self) -> frozenset[str]:
        """The placeholders the template uses."""
        return frozenset(name for level in self.levels for is_name, name in level if is_name)

    @property
    def needs_capture_facts(self) -> bool:
        """Whether a date or the camera is used (so the caller should look them up)."""
        return bool(self.names & (DATE_PLACEHOLDERS | {"camera"}))

    def folder_levels(self, facts: PhotoFacts, unsure_name: str) -> list[tuple[LevelKey, str]]:
        """Each level's key and safe folder name for one photo (before `` (n)`` suffixes for clashes)."""
        values = _values(facts, unsure_name, self.names)
        out: list[tuple[LevelKey, str]] = []
        for level in self.levels:
            key = tuple(values[name][0] for is_name, name in level if is_name)
            text = "".join(values[name][1] if is_name else name for is_name, name in level)
            out.append((key, safe_folder_name(text)))
        return out


def parse_layout(template: str | Layout | None) -> Layout:
    """A layout from a template (None: the default); a parsed one is returned as it is."""
    if isinstance(template, Layout):
        return template
    return Layout.parse(DEFAULT_LAYOUT if template is None else template)


def _parse_level(part: str, template: str) -> tuple[Piece, ...]:
    stripped = part.strip()
    if not stripped:
        raise LayoutError(f"The folder layout {template!r} has an empty folder level (a '/' at the start, the end "
                          "or twice in a row): write e.g. {category}/{year}.")
    if stripped in (".", ".."):
        raise LayoutError(f"The folder layout {template!r} has a {stripped!r} level: every level must be a folder name "
                          "or placeholders, never a way out of the destination.")
    pieces: list[Piece] = []
    position = 0
    for match in _TOKEN.finditer(stripped):
        _literal(stripped[position:match.start()], pieces, template)
        name = match.group(1).strip()
        if name not in PLACEHOLDERS:
            shown = f"{{{match.group(1)}}}"
            raise LayoutError(f"Unknown placeholder {shown} in the folder layout: the allowed ones are {_ALLOWED}.")
        pieces.append((True, name))
        position = match.end()
    _literal(stripped[position:], pieces, template)
    return tuple(pieces)


def _literal(text: str, pieces: list[Piece], template: str) -> None:
    if "{" in text or "}" in text:
        raise LayoutError(f"The folder layout {template!r} has a '{{' or '}}' that does not enclose a placeholder: "
                          f"write placeholders as {_ALLOWED}.")
    if text:
        pieces.append((False, text))


def _values(facts: PhotoFacts, unsure_name: str, used: frozenset[str]) -> dict[str, tuple[str | None, str]]:
    """Placeholder -> (raw value that tells folders apart, text to write), for the placeholders used."""
    values: dict[str, tuple[str | None, str]] = {}
    if "category" in used:
        values["category"] = (facts.category, unsure_name if facts.category is None else facts.category)
    if used & DATE_PLACEHOLDERS:
        year, month, day = _date_parts(facts.when)
        values.update(year=(year, year or UNKNOWN["year"]), month=(month, month or UNKNOWN["month"]),
                      day=(day, day or UNKNOWN["day"]))
    if "camera" in used:
        camera = facts.camera if facts.camera and not is_blank_name(facts.camera) else None
        values["camera"] = (camera, camera or UNKNOWN["camera"])
    if "original_folder" in used:
        values["original_folder"] = (facts.folder, _or_unknown(_readable_name(facts.folder), "original_folder"))
    return values


def _or_unknown(text: str, name: str) -> str:
    return UNKNOWN[name] if is_blank_name(text) else text


def _date_parts(when: str | None) -> tuple[str | None, str | None, str | None]:
    if not when:
        return None, None, None
    try:
        moment = dt.datetime.fromisoformat(when)
    except ValueError:
        log.debug("not an ISO time: %r", when)
        return None, None, None
    return f"{moment.year:04d}", f"{moment.month:02d}", f"{moment.day:02d}"


def _readable_name(folder: str) -> str:
    """The folder's own name as text; bytes that are not UTF-8 (kept as surrogates) become U+FFFD,
    which is valid in a folder name everywhere, instead of vanishing."""
    name = os.path.basename(os.path.normpath(folder)) if folder else ""
    return os.fsencode(name).decode("utf-8", "replace") if name else ""


def level_sort_key(key: LevelKey) -> tuple:
    """Keys in a stable order (a category before the unsure folder, None last), so names are stable between runs."""
    return tuple((value is None, value or "") for value in key)


def folder_tree(counts: dict[str, int]) -> list[tuple[int, str, int]]:
    """Per-folder counts (``"Cats/2019/07"`` -> 12) as a tree: (depth, folder name, photos under it),
    parents before children, siblings in natural order (``2`` before ``10``)."""
    totals: dict[tuple[str, ...], int] = {}
    for folder, count in counts.items():
        parts = tuple(folder.split("/"))
        for depth in range(1, len(parts) + 1):
            totals[parts[:depth]] = totals.get(parts[:depth], 0) + count
    ordered = sorted(totals, key=lambda parts: [natural_key(p) for p in parts])
    return [(len(parts) - 1, parts[-1], totals[parts]) for parts in ordered]


def describe_tree(counts: dict[str, int], indent: str = "  ") -> Iterable[str]:
    """``   12  Cats/`` lines with subfolders indented under their parent, for people to read."""
    for depth, name, count in folder_tree(counts):
        yield f"{count:>7}  {indent * depth}{name}/"
