"""Near-duplicates and bursts among the photos of a library, each group with a suggested keeper.

Two kinds of group:

* **duplicate**: the same picture more than once: a re-encoded or resized copy,
  a lightly edited one (exposure, colour), or byte-identical copies;
* **burst**: similar shots taken within a few seconds of each other (by EXIF
  capture time, with the same camera). Only real capture times count: copied
  files share meaningless modification times.

Why the rule is relative: with random-weight models unrelated photos reach a
CLIP cosine of 0.9998 against 0.9999 for a true copy, and real CLIP spreads them
far wider, so no absolute cosine threshold holds for both. Two photos are
near-duplicates when two independent signals agree:

1. **their look**: the perceptual signature of their thumbnails
   (:mod:`photosort.core.perceptual`, the pHash DCT) is at most
   :attr:`Criteria.look` apart, and
2. **their CLIP neighbourhood**: they are closer to each other than
   :attr:`Criteria.closeness` times each one's distance to its own
   :data:`NEIGHBOURS`-th nearest photo (:mod:`photosort.core.neighbours`): a copy
   stands out from a photo's ordinary neighbours whatever the scale of the
   model's distances.

Byte-identical photos (the same content fingerprint) are duplicates outright.
Shots of a burst need less: taken at most :data:`BURST_GAP_S` apart by the same
camera, and *either* signal says they are alike, at looser settings.
A group is every photo connected by such pairs; it is a *duplicate* group when
duplicate pairs alone connect it, else a *burst*.

**Sensitivity** (the one setting, 0 to 1, :data:`DEFAULT_SENSITIVITY` = 0.5):
higher finds more (looser look and closeness), lower only the most certain.
:meth:`Criteria.at` is the one place it becomes thresholds. Measured on
``make_library.py``'s edited copies (re-encoded at a quarter of the size): look
distance at most 0.0016 and closeness at most 0.73 of the 10th-neighbour
distance with the ViT-B/32 random-weight stand-in (0.27 with the tiny test
model); the default (0.003 and 0.8) finds them all. Photos of smooth sky and
sea that differ only by a horizon 1 % higher are found as near-duplicates too,
as a person would call them.

In a library of :data:`NEIGHBOURS` photos or fewer, a photo's ordinary
neighbours are not known, and the look decides alone. A group larger than
about :data:`NEIGHBOURS` copies of one picture may be found as several groups
or not at all (each copy's neighbours are all copies); byte-identical copies
are always found. Speed: the signatures are computed once per
thumbnail and cached; grouping 100,000 photos is measured by ``photosort bench
--scale``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from . import keeper, perceptual, rejects
from .capture import seconds_of
from .errors import UsageError
from .keeper import Measures, Suggestion
from .neighbours import nearest_neighbours, pair_distances
from .progress import CancelToken, ProgressFn, check_cancel
from .rejects import Decision
from .wording import natural_key

if TYPE_CHECKING:
    from .library import Library

log = logging.getLogger(__name__)

DEFAULT_SENSITIVITY = 0.5
NEIGHBOURS = 10  # each photo's reference distance is to its 10th nearest photo
BURST_GAP_S = 3.0  # shots of a burst are at most this many seconds apart
BURST_PARTNERS = 32  # a photo is compared with at most this many later shots (a clock stuck on one time)


def check_sensitivity(value: float) -> float:
    """The sensitivity, or a usage error saying its range."""
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"The sensitivity must be between 0 and 1 (got {value}); {DEFAULT_SENSITIVITY} is the "
                         "default, higher finds more.")
    return float(value)


@dataclass(frozen=True)
class Criteria:
    """What makes two photos near-duplicates, or shots of one burst, at one sensitivity."""

    sensitivity: float
    look: float  # duplicates: look distance (1 - correlation of signatures) at most this
    closeness: float  # duplicates: CLIP distance below this times each one's reference distance
    burst_gap_s: float  # bursts: at most this many seconds apart, same camera
    burst_look: float  # bursts: look distance at most this ...
    burst_closeness: float  # ... or CLIP distance below this times each one's reference distance

    @classmethod
    def at(cls, sensitivity: float = DEFAULT_SENSITIVITY) -> Criteria:
        """The thresholds for a sensitivity (0: only the most certain; 1: the loosest; 0.5: the default).

        The look threshold is 0.003 at the default and moves tenfold either way
        (0.0003 to 0.03); closeness goes from 0.6 to 1.0 of the reference
        distance (1.0: nearer than the 10th neighbour). Bursts: ten times the
        look threshold, or closeness from 1.0 to 2.0.
        """
        s = check_sensitivity(sensitivity)
        look = 0.003 * 10.0 ** (2.0 * (s - 0.5))
        return cls(s, look=look, closeness=0.6 + 0.4 * s, burst_gap_s=BURST_GAP_S, burst_look=10.0 * look,
                   burst_closeness=1.0 + s)


class GroupKind(str, Enum):
    DUPLICATE = "duplicate"
    BURST = "burst"


@dataclass(frozen=True)
class PhotoGroup:
    """Photos found to be one picture (``duplicate``) or one burst, in natural name order."""

    kind: GroupKind
    ids: tuple[int, ...]
    paths: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class GroupPhoto:
    """One photo of a reviewed group: where it is, the user's word on it, and what the keeper was chosen by."""

    id: int
    path: str
    decision: Decision | None
    measures: Measures


@dataclass(frozen=True)
class DuplicateGroup:
    """A group with its suggested keeper and the reason, as both faces show it."""

    kind: GroupKind
    photos: tuple[GroupPhoto, ...]
    keep: int | None  # the suggested keeper's photo id; None when no photo can be kept (says ``reason``)
    reason: str

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(p.id for p in self.photos)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(p.path for p in self.photos)

    @property
    def keep_path(self) -> str | None:
        return next((p.path for p in self.photos if p.id == self.keep), None)

    def others(self) -> list[GroupPhoto]:
        """The photos that are not the keeper (those ``reject_others`` rejects)."""
        return [p for p in self.photos if p.id != self.keep]

    def to_json(self) -> dict:
        return {"kind": self.kind.value, "photos": [p.path for p in self.photos], "keep": self.keep_path,
                "reason": self.reason,
                "rejected": [p.path for p in self.photos if p.decision == Decision.REJECT]}


# ---- finding groups ---------------------------------------------------------------------------------
def find_groups(library: Library, sensitivity: float = DEFAULT_SENSITIVITY, *, bursts: bool = True,
                progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> list[PhotoGroup]:
    """The near-duplicate (and, with ``bursts``, burst) groups among every photo of the library.

    Reads only cached data (vectors, thumbnail signatures, capture times);
    signatures not cached yet are computed from the thumbnails first (progress
    phase "comparing looks"). Deterministic: the same library and sensitivity
    give the same groups, in natural order of their first photo.
    """
    criteria = Criteria.at(sensitivity)
    photos = library.photos
    n = len(photos)
    if n < 2:
        return []
    signatures = perceptual.signatures(library.engine.cache, photos.ids.tolist(), progress, cancel)
    check_cancel(cancel)
    neighbours = nearest_neighbours(photos.vectors, NEIGHBOURS, cancel)
    # Too few photos to know a photo's ordinary neighbours: the look decides alone.
    reference = neighbours.reference() if n > NEIGHBOURS else np.full(n, np.inf, np.float32)
    edges = _Edges(n)
    _duplicate_pairs(edges, neighbours.index, photos.vectors, signatures, reference, criteria)
    _identical_pairs(edges, photos.keys)
    if bursts:
        check_cancel(cancel)
        _burst_pairs(edges, library, photos.ids, photos.vectors, signatures, reference, criteria)
    return _groups(edges, photos.ids, photos.paths)


class _Edges:
    """Pairs found, as two union-finds: all pairs, and duplicate pairs alone."""

    def __init__(self, n: int) -> None:
        self.everything = list(range(n))
        self.duplicates = list(range(n))

    def add(self, a: np.ndarray, b: np.ndarray, duplicate: bool) -> None:
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            _union(self.everything, x, y)
            if duplicate:
                _union(self.duplicates, x, y)


def _find(parent: list[int], x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return root


def _union(parent: list[int], a: int, b: int) -> None:
    ra, rb = _find(parent, a), _find(parent, b)
    if ra != rb:
        parent[max(ra, rb)] = min(ra, rb)


def _duplicate_pairs(edges: _Edges, index: np.ndarray, vectors: np.ndarray, signatures: np.ndarray,
                     reference: np.ndarray, criteria: Criteria) -> None:
    """Pairs of neighbours that look alike and stand out from both photos' ordinary neighbours."""
    a = np.repeat(np.arange(len(index)), index.shape[1])
    b = index.ravel()
    valid = b >= 0
    a, b = np.minimum(a[valid], b[valid]), np.maximum(a[valid], b[valid])
    if not len(a):
        return
    n = len(index)
    pairs = np.sort(a * n + b)
    pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]  # each pair once (sorting is faster than np.unique here)
    a, b = pairs // n, pairs % n
    look = perceptual.look_distances(signatures, a, b)
    alike = look <= criteria.look
    a, b = a[alike], b[alike]
    clip = pair_distances(vectors, a, b)
    close = (clip < criteria.closeness * reference[a]) & (clip < criteria.closeness * reference[b])
    edges.add(a[close], b[close], duplicate=True)


def _identical_pairs(edges: _Edges, keys: Sequence[str]) -> None:
    """Photos with the same content fingerprint are the same photo."""
    first: dict[str, int] = {}
    a, b = [], []
    for i, key in enumerate(keys):
        if key.startswith("path:"):
            continue  # no fingerprint: only its path is known
        if key in first:
            a.append(first[key])
            b.append(i)
        else:
            first[key] = i
    edges.add(np.asarray(a, np.int64), np.asarray(b, np.int64), duplicate=True)


def _burst_pairs(edges: _Edges, library: Library, ids: np.ndarray, vectors: np.ndarray, signatures: np.ndarray,
                 reference: np.ndarray, criteria: Criteria) -> None:
    """Shots by one camera at most ``burst_gap_s`` apart that look alike, or are near in CLIP space."""
    dates = library.dates(ids.tolist())
    shots: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for row, pid in enumerate(ids.tolist()):
        date = dates.get(pid)
        if date is None or not date.facts.taken:
            continue  # no capture time: the file's time says nothing about when it was taken
        try:
            shots[date.facts.camera or ""].append((seconds_of(date.facts.taken), row))
        except ValueError:
            continue
    a, b = [], []
    for series in shots.values():
        series.sort()
        for i, (when, row) in enumerate(series):
            for later, other in series[i + 1 : i + 1 + BURST_PARTNERS]:
                if later - when > criteria.burst_gap_s:
                    break
                a.append(row)
                b.append(other)
    if not a:
        return
    a_rows, b_rows = np.asarray(a, np.int64), np.asarray(b, np.int64)
    look = perceptual.look_distances(signatures, a_rows, b_rows)
    clip = pair_distances(vectors, a_rows, b_rows)
    near = (clip < criteria.burst_closeness * reference[a_rows]) & (clip < criteria.burst_closeness * reference[b_rows])
    alike = (look <= criteria.burst_look) | near
    edges.add(a_rows[alike], b_rows[alike], duplicate=False)


def _groups(edges: _Edges, ids: np.ndarray, paths: Sequence[str]) -> list[PhotoGroup]:
    members: dict[int, list[int]] = defaultdict(list)
    for row in range(len(ids)):
        members[_find(edges.everything, row)].append(row)
    groups = []
    for rows in members.values():
        if len(rows) < 2:
            continue
        rows.sort(key=lambda r: natural_key(paths[r]))
        one_picture = len({_find(edges.duplicates, r) for r in rows}) == 1
        groups.append(PhotoGroup(GroupKind.DUPLICATE if one_picture else GroupKind.BURST,
                                 tuple(int(ids[r]) for r in rows), tuple(paths[r] for r in rows)))
    groups.sort(key=lambda g: natural_key(g.paths[0]))
    return groups


# ---- reviewing: keepers and decisions --------------------------------------------------------------
def review(library: Library, sensitivity: float = DEFAULT_SENSITIVITY, *, bursts: bool = True,
           progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> list[DuplicateGroup]:
    """The groups of :func:`find_groups`, each with its suggested keeper, the reason, and the user's decisions.

    Measuring focus reads the originals of grouped photos not measured before
    (progress phase "measuring focus"); everything else is cached.
    """
    groups = find_groups(library, sensitivity, bursts=bursts, progress=progress, cancel=cancel)
    return suggest_keepers(library, groups, progress, cancel)


def suggest_keepers(library: Library, groups: Sequence[PhotoGroup], progress: ProgressFn | None = None,
                    cancel: CancelToken | None = None) -> list[DuplicateGroup]:
    """Each group with its keeper (:mod:`photosort.core.keeper`) and the user's keep/reject decisions."""
    members = [(pid, path) for g in groups for pid, path in zip(g.ids, g.paths, strict=True)]
    measures = keeper.measure(library.engine.cache, members, progress, cancel)
    decided = rejects.decisions(library)
    out = []
    for g in groups:
        pairs = list(zip(g.ids, g.paths, strict=True))
        suggestion: Suggestion = keeper.choose_keeper(pairs, measures, decided)
        photos = tuple(GroupPhoto(pid, path, decided.get(pid), measures[pid]) for pid, path in pairs)
        out.append(DuplicateGroup(g.kind, photos, suggestion.keep, suggestion.reason))
    return out


def reject_others(library: Library, groups: Sequence[DuplicateGroup]) -> int:
    """Record every photo that is not its group's keeper as rejected; returns how many were newly rejected.

    A photo the user marked *keep* is never rejected, nor is any photo of a group
    without a keeper. Running it again changes nothing.
    """
    choices: dict[int, Decision | None] = {}
    for group in groups:
        if group.keep is None:
            continue
        for photo in group.others():
            if photo.decision is None:
                choices[photo.id] = Decision.REJECT
    return rejects.set_decisions(library, choices) if choices else 0
