"""Which photo of a group of near-duplicates to keep, and why, in words a person can check.

The order of preference, each step deciding only when one photo clearly
leads (by the margin given) and otherwise passing the photos that are close
to the best on to the next step:

1. **yours**: a photo the user marked *keep* ("you chose to keep it");
2. **sharpest**: the highest focus score, by at least 25 % ("sharpest (focus
   412 vs 97)");
3. **largest**: the most pixels, by at least 5 % ("largest (4000×3000 vs
   1000×750)");
4. **least compressed**: the most bytes per pixel, by at least 10 % ("least
   compressed (2.9 vs 0.8 bytes per pixel)");
5. otherwise the shortest file name (``IMG_1.JPG`` before ``IMG_1 (2).JPG``), then the
   first by name ("as good as the others; the shortest name").

Photos that cannot be read now, and photos the user rejected, are never
suggested; a group where no photo is left has no keeper, and says why.

The focus score is the variance of the Laplacian (how strong the fine edges
are) of the original, decoded small (JPEG draft mode) and in grey. To compare
sharpness, not resolution, every photo of a group is measured at the same
size: the largest of :data:`FOCUS_SIDES` (long side in pixels) that every
photo of the group reaches at half its own size or less, so a quarter-size
copy is not "sharper" or "blurred" but "smaller", and a blurred copy at full
size is found blurred. The scores at
every size are measured in one decode and kept in the cache
(``looks.focus``), so each original is read once. Noise counts as detail too:
of two equally sharp photos, the noisier scores higher.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .decode import DEFAULT_MAX_PIXELS, HEIF_EXTENSIONS, heif_available, open_checked
from .progress import CancelToken, ProgressFn, Reporter, check_cancel
from .rejects import Decision
from .wording import natural_key

if TYPE_CHECKING:
    from .cache import Cache

log = logging.getLogger(__name__)

FOCUS_SIDES = (960, 480, 240, 120)  # long sides (pixels) a photo's focus is measured at
FOCUS_MARGIN = 1.25  # "sharpest" only when 25 % sharper than the next
PIXELS_MARGIN = 1.05
COMPRESSION_MARGIN = 1.10


@dataclass(frozen=True)
class Measures:
    """What the keeper is chosen by, for one photo."""

    photo_id: int
    width: int
    height: int
    bytes: int
    focus: tuple[float, ...] | None  # at each of FOCUS_SIDES (nan where the photo is smaller); None: unreadable

    @property
    def readable(self) -> bool:
        return self.focus is not None

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def bytes_per_pixel(self) -> float:
        return self.bytes / self.pixels if self.pixels else 0.0

    def focus_at(self, side: int) -> float:
        if self.focus is None:
            return math.nan
        return self.focus[FOCUS_SIDES.index(side)]


@dataclass(frozen=True)
class Suggestion:
    """The photo to keep (None when none can be) and the short sentence that says why."""

    keep: int | None
    reason: str


# ---- measuring ---------------------------------------------------------------------------------------
def focus_profile(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[float, ...] | None:
    """The focus score of a photo at each of FOCUS_SIDES (nan where it is smaller), or None if it cannot be read."""
    if path.lower().endswith(HEIF_EXTENSIONS) and not heif_available():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(path, "rb") as f:
                image = open_checked(f, max_pixels)
                w, h = image.size
                top = next((s for s in FOCUS_SIDES if _reaches(max(w, h), s)), None)
                if top is not None and image.format in ("JPEG", "MPO"):
                    scale = 2 * top / max(w, h)
                    image.draft("L", (math.ceil(w * scale), math.ceil(h * scale)))
                grey = image.convert("L")
                return tuple(_laplacian_variance(_long_side(grey, side)) if _reaches(max(w, h), side) else math.nan
                             for side in FOCUS_SIDES)
    except Exception as exc:  # a photo that cannot be read now is simply not a keeper
        log.info("cannot measure the focus of %s: %s", path, exc)
        return None


def _reaches(long_side: int, side: int) -> bool:
    """A photo is measured at ``side`` only when that shrinks it at least twofold.

    Shrinking averages away what the photo's own pixel grid adds (JPEG blocks,
    sensor noise), which would otherwise make a small re-encoded copy look
    sharper than its original. Photos of very different sizes then have no
    size in common, and "largest" decides between them.
    """
    return 2 * side <= long_side


def _long_side(grey: Image.Image, side: int) -> Image.Image:
    w, h = grey.size
    scale = side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return grey if size == grey.size else grey.resize(size, Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR)


def _laplacian_variance(grey: Image.Image) -> float:
    a = np.asarray(grey, np.float32)
    if a.shape[0] < 3 or a.shape[1] < 3:
        return 0.0
    lap = 4 * a[1:-1, 1:-1] - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:]
    return float(lap.var())


def measure(cache: Cache, photos: Sequence[tuple[int, str]], progress: ProgressFn | None = None,
            cancel: CancelToken | None = None) -> dict[int, Measures]:
    """The measures of photos given as (id, path): sizes from the cache, focus from the cache or the original.

    Only photos whose focus is not cached are read (and their scores stored). A
    photo whose file has gone or cannot be read has ``focus=None``.
    """
    ids = [pid for pid, _ in photos]
    facts = cache.file_facts(ids)
    cached = {pid: _focus_from_blob(blob) for pid, blob in cache.focus_for_ids(ids).items()}
    todo = [(pid, path) for pid, path in photos if cached.get(pid) is None]
    reporter = Reporter("measuring focus", len(todo), progress)
    fresh: dict[int, tuple[float, ...]] = {}
    for done, (pid, path) in enumerate(todo):
        check_cancel(cancel)
        profile = focus_profile(path) if os.path.isfile(path) else None
        if profile is not None:
            fresh[pid] = profile
        reporter.update(done + 1)
    if fresh:
        cache.store_focus({pid: np.asarray(v, np.float32).tobytes() for pid, v in fresh.items()})
    out = {}
    for pid, path in photos:
        size, width, height = facts.get(pid, (0, None, None))
        focus = cached.get(pid) or fresh.get(pid)
        if focus is not None and not os.path.isfile(path):
            focus = None  # measured before, gone now
        out[pid] = Measures(pid, int(width or 0), int(height or 0), int(size), focus)
    return out


def _focus_from_blob(blob: bytes) -> tuple[float, ...] | None:
    values = np.frombuffer(blob, np.float32)
    return tuple(float(v) for v in values) if len(values) == len(FOCUS_SIDES) else None


# ---- choosing ----------------------------------------------------------------------------------------
def choose_keeper(photos: Sequence[tuple[int, str]], measures: dict[int, Measures],
                  decisions: dict[int, Decision]) -> Suggestion:
    """The photo of a group to keep, by the order of preference in this module's description.

    The reason compares the keeper with every readable photo of the group, the
    rejected ones too, so rejecting the others leaves the reason as it was.
    """
    readable = sorted(((pid, path) for pid, path in photos if pid in measures and measures[pid].readable),
                      key=lambda c: natural_key(c[1]))
    if not readable:
        return Suggestion(None, "none of these photos can be read now")
    candidates = [(pid, path) for pid, path in readable if decisions.get(pid) != Decision.REJECT]
    if not candidates:
        return Suggestion(None, "every readable photo of this group is rejected")
    kept = [(pid, path) for pid, path in candidates if decisions.get(pid) == Decision.KEEP]
    if len(kept) == 1:
        return Suggestion(kept[0][0], "you chose to keep it")
    if kept:
        return _best(kept, measures)
    best = _best(readable, measures)
    if best.keep in {pid for pid, _ in candidates}:
        return best
    if len(candidates) == 1:
        return Suggestion(candidates[0][0], "the only one left: the others are rejected")
    return _best(candidates, measures)


def _best(candidates: list[tuple[int, str]], measures: dict[int, Measures]) -> Suggestion:
    """The best of several readable photos (in natural name order) by focus, pixels, compression, then name."""
    if len(candidates) == 1:
        return Suggestion(candidates[0][0], "the only one that can be read now")
    side = _common_side(measures[pid] for pid, _ in candidates)
    steps = ((lambda m: m.focus_at(side) if side is not None else math.nan, FOCUS_MARGIN, _say_focus),
             (lambda m: float(m.pixels), PIXELS_MARGIN, _say_pixels),
             (lambda m: m.bytes_per_pixel, COMPRESSION_MARGIN, _say_compression))
    for score, margin, say in steps:
        values = {pid: score(measures[pid]) for pid, _ in candidates}
        if any(math.isnan(v) for v in values.values()) or max(values.values()) <= 0:
            continue
        best = max(values.values())
        leaders = [(pid, path) for pid, path in candidates if values[pid] * margin >= best]
        if len(leaders) == 1:
            winner = leaders[0][0]
            runner_up = max((pid for pid, _ in candidates if pid != winner), key=lambda pid: values[pid])
            return Suggestion(winner, say(measures[winner], measures[runner_up], values[winner], values[runner_up]))
        candidates = leaders
    plainest = sorted(candidates, key=lambda c: (len(os.path.basename(c[1])), natural_key(c[1])))
    shorter = len(os.path.basename(plainest[0][1])) < len(os.path.basename(plainest[1][1]))
    return Suggestion(plainest[0][0], "as good as the others; the shortest name" if shorter else
                      "as good as the others; first by name")


def _common_side(measures: Iterable[Measures]) -> int | None:
    """The largest of FOCUS_SIDES at which every one of these photos was measured."""
    measures = list(measures)
    for side in FOCUS_SIDES:
        if all(not math.isnan(m.focus_at(side)) for m in measures):
            return side
    return None


def _say_focus(winner: Measures, other: Measures, a: float, b: float) -> str:
    return f"sharpest (focus {a:.0f} vs {b:.0f})"


def _say_pixels(winner: Measures, other: Measures, a: float, b: float) -> str:
    return f"largest ({winner.width}×{winner.height} vs {other.width}×{other.height})"


def _say_compression(winner: Measures, other: Measures, a: float, b: float) -> str:
    return f"least compressed ({a:.2g} vs {b:.2g} bytes per pixel)"
