"""An open library: the photos of one or more folders, their vectors in memory, and how they sort.

:class:`Library` is the one object both faces ask about an open set of
folders. It holds the photos (ids, paths, identities, vectors) so scoring new
categories, a classifier's predictions, search and "label these next" need no
database round trip, and it builds the export plan from exactly the sorting
the user sees: labels beat predictions (:mod:`photosort.core.sorting`)
everywhere — in ``photosort sort`` and ``export``, in the window's grid,
counts and exports. It belongs to the engine's thread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .cache import EmbeddingSet, PhotoList
from .calibration import TARGET_NEEDS_CLASSIFIER, AutoFiling, Calibration, auto_filing, check_target, no_estimate
from .capture import PhotoDate
from .classifiers import TrainReport, unique_categories
from .errors import ExportError, LabelsError, ModelLoadError, PhotosortError, UsageError
from .export import DEFAULT_LAYOUT, ExportItem, ExportPlan, Layout, parse_layout, plan_export
from .labels_csv import read_labels_csv
from .rejects import REJECTED_REASON
from .rejects import rejected as rejected_photos
from .scan import resolve_root
from .sorting import DEFAULT_THRESHOLD, NO_LABEL, Decision, decide, least_sure
from .zeroshot import NO_CATEGORIES, Category, zero_shot_probabilities

if TYPE_CHECKING:
    from .classifier import Classifier
    from .engine import Engine

log = logging.getLogger(__name__)

NOT_ANALYSED_REASON = "not sorted: the model has not analysed it yet"


@dataclass(frozen=True)
class Sorting:
    """How to sort: by typed ``categories``, or by the ``classifier`` of that name."""

    categories: tuple[Category, ...] = ()
    classifier: str = ""

    @classmethod
    def by_categories(cls, categories: Iterable[Category]) -> Sorting:
        return cls(categories=tuple(categories))

    @classmethod
    def by_classifier(cls, name: str) -> Sorting:
        return cls(classifier=name)


@dataclass(frozen=True)
class Scores:
    """Every photo's probabilities (N x C) for ``classes`` and its label (class index or NO_LABEL)."""

    classes: list[str]
    categories: tuple[Category, ...]
    probabilities: np.ndarray
    labels: np.ndarray
    classifier: Classifier | None = None


@dataclass(frozen=True)
class SortResult:
    """Every photo of the library with the group it goes to (its label's, its prediction's, or unsure)."""

    classes: list[str]
    photos: EmbeddingSet
    decision: Decision
    filing: AutoFiling | None = None  # sorted at a target accuracy: its thresholds and counts

    def category_of(self, i: int) -> str | None:
        best = int(self.decision.best[i])
        return self.classes[best] if best >= 0 else None

    def counts(self) -> dict[str | None, int]:
        counts: dict[str | None, int] = {c: 0 for c in self.classes}
        counts[None] = 0
        for i in range(len(self.photos)):
            counts[self.category_of(i)] += 1
        return counts

    def to_json(self) -> dict:
        return {
            "classes": self.classes,
            "photos": [
                {"path": path, "category": self.category_of(i), "score": round(float(self.decision.score[i]), 4),
                 "labelled": bool(self.decision.labelled[i])}
                for i, path in enumerate(self.photos.paths)
            ],
            "counts": {("unsure" if k is None else k): v for k, v in self.counts().items()},
            **({"auto_filing": self.filing.to_json(self.classes)} if self.filing is not None else {}),
        }


class Library:
    """The photos of some folders, as the engine's cache has them for its model.

    The photos with a vector for the model are the library proper: sorted, searched,
    exported. Photos seen without one (the model is downloading, or cannot be had) are
    held apart as :attr:`unanalysed`: shown and browsed, never guessed into a group,
    and listed as skipped by an export.
    """

    def __init__(self, engine: Engine, roots: Sequence[str] = ()) -> None:
        self._engine = engine
        self.roots: list[str] = []
        self._ids: list[int] = []
        self._paths: list[str] = []
        self._keys: list[str] = []
        self._row: dict[int, int] = {}
        self._vectors = np.zeros((0, 0), np.float32)
        self._unanalysed: dict[int, str] = {}  # photo id -> path, in the order they came
        self._zero_shot: tuple[tuple[Category, ...], np.ndarray] | None = None
        for root in roots:
            self.add_folder(root)

    # ---- what is open -------------------------------------------------------------------------
    def __len__(self) -> int:
        """The photos that can be sorted (analysed by the model)."""
        return len(self._ids)

    @property
    def unanalysed(self) -> PhotoList:
        """Photos shown without a vector for the model yet: browsable, not sortable."""
        return PhotoList(np.fromiter(self._unanalysed, np.int64, len(self._unanalysed)), list(self._unanalysed.values()))

    def model_problem(self) -> ModelLoadError | None:
        """Why the model cannot analyse these photos now (offline before its first download, …), or None."""
        return self._engine.model_problem()

    def check_sortable(self, error: type[PhotosortError] = UsageError) -> None:
        """Raise what stops these photos from being sorted: there are none, or none is analysed yet (and why)."""
        if len(self):
            return
        if not self._unanalysed:
            raise error("There are no indexed photos here: open a folder of photos first.")
        raise self.model_problem() or error("The photos are not analysed yet: they can be sorted once the model has "
                                            "looked at them.")

    @property
    def photos(self) -> EmbeddingSet:
        return EmbeddingSet(np.asarray(self._ids, np.int64), list(self._paths), self._vectors[: len(self._ids)],
                            list(self._keys))

    @property
    def ids(self) -> np.ndarray:
        return np.asarray(self._ids, np.int64)

    @property
    def engine(self) -> Engine:
        """The engine whose cache and user data this library reads (for the core's other modules)."""
        return self._engine

    def add_folder(self, folder: str | os.PathLike[str]) -> str:
        """Open one more folder (resolved; a folder already open is not added twice); returns its real path."""
        root = resolve_root(folder)
        if root not in self.roots:
            self.roots.append(root)
            self._read_folder(root)
        return root

    def reload(self) -> None:
        """Read every open folder again from the cache (after renames or removals on disk)."""
        self._ids, self._paths, self._keys, self._row, self._unanalysed = [], [], [], {}, {}
        for root in self.roots:
            self._read_folder(root)

    def _read_folder(self, root: str) -> None:
        if self.model_problem() is None:
            self.upsert(self._engine.embeddings(root))
        unanalysed = self._engine.unanalysed(root)
        self._unanalysed.update(zip(unanalysed.ids.tolist(), unanalysed.paths, strict=True))

    def add_indexed(self, ids: list[int]) -> tuple[EmbeddingSet, PhotoList]:
        """Photos just indexed (one committed batch): read them back and hold them; returns what was added, the
        photos analysed and those only browsable (the model is not there yet)."""
        batch = self._engine.embeddings_for_ids(ids) if self.model_problem() is None else EmbeddingSet(
            np.zeros(0, np.int64), [], np.zeros((0, 0), np.float32), [])
        self.upsert(batch)
        analysed = set(batch.ids.tolist())
        rest = [i for i in ids if i not in analysed]
        paths = self._engine.cache.paths_for_ids(rest)
        waiting = PhotoList(np.array([i for i in rest if i in paths], np.int64), [paths[i] for i in rest if i in paths])
        self._unanalysed.update(zip(waiting.ids.tolist(), waiting.paths, strict=True))
        return batch, waiting

    def upsert(self, photos: EmbeddingSet) -> None:
        """Add photos, or replace the vector, path and identity of photos already held (a changed file)."""
        if not len(photos):
            return
        if self._vectors.shape[1] != photos.vectors.shape[1]:
            self._vectors = np.zeros((0, photos.vectors.shape[1]), np.float32)
        self._reserve(len(self._ids) + len(photos))
        for photo_id, path, key, vector in zip(photos.ids.tolist(), photos.paths, photos.keys, photos.vectors,
                                               strict=True):
            row = self._row.get(photo_id)
            self._unanalysed.pop(photo_id, None)
            if row is None:
                row = self._row[photo_id] = len(self._ids)
                self._ids.append(photo_id)
                self._paths.append(path)
                self._keys.append(key)
            else:
                self._paths[row], self._keys[row] = path, key
            self._vectors[row] = vector

    def keys_for(self, photo_ids: Iterable[int]) -> dict[int, str]:
        """Photo id -> identity, for photos held."""
        return {pid: self._keys[self._row[pid]] for pid in photo_ids if pid in self._row}

    def path_of(self, photo_id: int) -> str | None:
        row = self._row.get(photo_id)
        return self._paths[row] if row is not None else self._unanalysed.get(photo_id)

    def dates(self, photo_ids: Iterable[int] | None = None) -> dict[int, PhotoDate]:
        """When each held photo (or each of ``photo_ids``) was taken: EXIF capture facts and file time."""
        return self._engine.cache.dates_for_ids(self._ids if photo_ids is None else photo_ids)

    def shapes(self, photo_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
        """Each photo's upright width and height as indexed (photos whose size is not known are left out)."""
        return {pid: (w, h) for pid, (_size, w, h) in self._engine.cache.file_facts(photo_ids).items() if w and h}

    def failures(self) -> list[tuple[str, str]]:
        """Photos of the open folders that could not be read, with the reason."""
        return [f for root in self.roots for f in self._engine.failures(root)]

    # ---- scoring and sorting ------------------------------------------------------------------
    def scores(self, sorting: Sorting, photos: EmbeddingSet | None = None) -> Scores:
        """Probabilities and labels of every photo held (or of ``photos``) for a sorting."""
        photos = self.photos if photos is None else photos
        if sorting.classifier:
            head = self._engine.classifiers.current(sorting.classifier)
            labels = self.labels(head.name, photos)
            return Scores(list(head.classes), tuple(Category(c) for c in head.classes),
                          head.probabilities(photos.vectors).astype(np.float32), labels, head)
        categories = sorting.categories
        return Scores([c.name for c in categories], categories, self._zero_shot_probabilities(categories, photos.vectors),
                      np.full(len(photos), NO_LABEL, np.int64))

    def labels(self, classifier: str, photos: EmbeddingSet | None = None) -> np.ndarray:
        """Each photo's label under ``classifier`` as a class index (NO_LABEL when it has none)."""
        photos = self.photos if photos is None else photos
        c = self._engine.classifiers.stored(classifier)
        index = {name: k for k, name in enumerate(c.classes)}
        by_key = self._engine.classifiers.labels(c.name)
        return np.fromiter((index.get(by_key.get(key, ""), NO_LABEL) for key in photos.keys), np.int64, len(photos))

    def sort(self, sorting: Sorting, threshold: float = DEFAULT_THRESHOLD, target_accuracy: float | None = None, *,
             require_estimate: bool = True) -> SortResult:
        """Every photo held, in the group the user sees: its label's, else its prediction's, else unsure.

        With ``target_accuracy`` a classifier's thresholds come from its labels
        (:mod:`photosort.core.calibration`); where it has no estimate (typed
        categories, too few labels, trained before estimates) that is a usage error,
        or with ``require_estimate=False`` (the window) ``threshold`` applies.
        """
        if not sorting.classifier and not sorting.categories:
            raise UsageError(NO_CATEGORIES)
        if not 0.0 <= threshold <= 1.0:
            raise UsageError(f"The threshold must be between 0 and 1 (got {threshold}).")
        if target_accuracy is not None:
            check_target(target_accuracy)
            if not sorting.classifier and require_estimate:
                raise UsageError(TARGET_NEEDS_CLASSIFIER)
        scores = self.scores(sorting)
        calibration = None if target_accuracy is None or scores.classifier is None else \
            Calibration.of(scores.classifier.metrics, len(scores.classes))
        if calibration is None:
            if target_accuracy is not None and require_estimate:
                raise UsageError(no_estimate(sorting.classifier))
            return SortResult(scores.classes, self.photos, decide(scores.probabilities, threshold, scores.labels))
        filing = auto_filing(calibration, target_accuracy, scores.probabilities, scores.labels)
        return SortResult(scores.classes, self.photos, filing.decision, filing)

    def least_sure(self, classifier: str, limit: int = 20) -> list[int]:
        """"Label these next": ids of unlabelled photos the classifier is least sure about, least first."""
        scores = self.scores(Sorting.by_classifier(classifier))
        return [self._ids[i] for i in least_sure(scores.probabilities, scores.labels, limit)]

    def _zero_shot_probabilities(self, categories: tuple[Category, ...], vectors: np.ndarray) -> np.ndarray:
        if not categories or not len(vectors):
            return np.zeros((len(vectors), len(categories)), np.float32)
        if self._zero_shot is None or self._zero_shot[0] != categories:
            self._zero_shot = (categories, self._engine.class_vectors(list(categories)))
        probs = zero_shot_probabilities(vectors, self._zero_shot[1], self._engine.logit_scale())
        return probs.astype(np.float32)

    # ---- labelling ----------------------------------------------------------------------------
    def set_labels(self, classifier: str, labels: dict[int, str | None]) -> None:
        """Label photos held (photo id -> class name, None removes); labels follow the photo's content."""
        keys = self.keys_for(labels)
        self._engine.classifiers.set_labels(classifier, {keys[pid]: label for pid, label in labels.items()
                                                         if pid in keys},
                                            {keys[pid]: self._paths[self._row[pid]] for pid in keys})

    def train_from_csv(self, classifier: str, csv_path: str | os.PathLike[str]) -> TrainReport:
        """Label from a CSV of ``path,label`` rows (paths relative to the first folder) and train."""
        if not self.roots:
            raise UsageError("Open a folder first.")
        rows = read_labels_csv(csv_path, self.roots[0])
        by_path = {p: pid for pid, p in zip(self._ids, self._paths, strict=True)}
        missing = [p for p, _ in rows if p not in by_path]
        if len(missing) == len(rows):
            raise LabelsError("None of the labelled photos are indexed in this folder; check the paths in the CSV "
                              "(relative to the folder).")
        return replace(self.train_from_labels(classifier, [(p, label) for p, label in rows if p in by_path]),
                       missing=missing)

    def train_from_labels(self, classifier: str, rows: Sequence[tuple[str, str]]) -> TrainReport:
        """Label photos held (``(path, class name)`` rows) and train; the classifier is made, or given the new
        class names, as needed. What a labels CSV and a photo manager's keywords both come down to."""
        by_path = {p: pid for pid, p in zip(self._ids, self._paths, strict=True)}
        classifiers = self._engine.classifiers
        existing = classifiers.categories(classifier)
        categories = unique_categories([*existing, *(label for _, label in rows)])
        if [c.name for c in categories] != [c.name for c in existing]:
            classifiers.create(classifier, categories)  # new classes: the classifier is reset; its labels stay
        self.set_labels(classifier, {by_path[p]: label for p, label in rows if p in by_path})
        return classifiers.train(classifier)

    # ---- search -------------------------------------------------------------------------------
    def search_text(self, query: str, limit: int = 20) -> list[tuple[str, float]]:
        if not query.strip():
            raise UsageError("Empty search: type what you are looking for.")
        if limit <= 0:
            raise UsageError("--limit must be at least 1.")
        return [(self._paths[self._row[pid]], score) for pid, score in self.text_hits(query, limit)]

    def text_hits(self, query: str, limit: int) -> list[tuple[int, float]]:
        """The photos that best match a text by meaning (CLIP text → image): (photo id, cosine), best first."""
        if not query.strip():
            raise UsageError("Empty search: type what you are looking for.")
        vectors = self._vectors[: len(self._ids)]
        return self._top(vectors @ self._engine.text_vectors([query.strip()])[0], limit)

    def like_hits(self, photo_id: int, limit: int) -> list[tuple[int, float]]:
        """The photos that look most like this one (image → image): (photo id, cosine), best first, itself left out."""
        target = self._row.get(photo_id)
        if target is None:
            raise PhotosortError("That photo is no longer in the open folders.")
        vectors = self._vectors[: len(self._ids)]
        scores = vectors @ vectors[target]
        scores[target] = -np.inf
        return self._top(scores, limit)

    def search_like(self, photo: str | os.PathLike[str], limit: int = 20) -> list[tuple[str, float]]:
        if limit <= 0:
            raise UsageError("--limit must be at least 1.")
        hits = self.like_hits(self._ids[self._find_photo(photo)], limit)
        return [(self._paths[self._row[pid]], score) for pid, score in hits]

    def _top(self, scores: np.ndarray, limit: int) -> list[tuple[int, float]]:
        if limit <= 0:
            raise UsageError("--limit must be at least 1.")
        limit = min(limit, len(scores))
        if limit == 0:
            return []
        top = np.argpartition(-scores, limit - 1)[:limit]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self._ids[i], float(scores[i])) for i in top if np.isfinite(scores[i])]

    def _find_photo(self, photo: str | os.PathLike[str]) -> int:
        candidate = Path(photo).expanduser()
        by_path = {p: i for i, p in enumerate(self._paths)}
        options = [os.path.realpath(candidate)] + [os.path.realpath(Path(r) / candidate) for r in self.roots]
        for option in options:
            if option in by_path:
                return by_path[option]
        matches = [i for i, p in enumerate(self._paths) if os.path.basename(p) == candidate.name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UsageError(f"Several photos are named {candidate.name}; give the path relative to the folder.")
        self._refuse_unreadable(photo, candidate, options)
        if not any(os.path.exists(o) for o in options):
            raise PhotosortError(f"{photo} does not exist; give the path of a photo in the folder.")
        raise PhotosortError(f"{photo} is not an indexed photo of {', '.join(self.roots)}.")

    def _refuse_unreadable(self, photo: str | os.PathLike[str], candidate: Path, options: list[str]) -> None:
        """A photo that could not be read when indexed has no vector to compare with: say why, not "not indexed"
        (found as :meth:`_find_photo` finds indexed ones: by its path, else by a name no other failure has)."""
        failed = dict(self.failures())
        reasons = [failed[option] for option in options if option in failed]
        if not reasons:
            reasons = [reason for path, reason in failed.items() if os.path.basename(path) == candidate.name]
        if len(reasons) == 1:
            raise PhotosortError(f"{photo} could not be read when indexed: {reasons[0]}")

    # ---- export -------------------------------------------------------------------------------
    def plan_export(self, result: SortResult, destination: str | os.PathLike[str], *, mode: str = "copy",
                    unsure: str = "folder", layout: str = DEFAULT_LAYOUT, include_rejected: bool = False) -> ExportPlan:
        """What an export of this sorting would do; photos that could not be read are listed as skipped.

        ``layout`` is the folder template (:mod:`photosort.core.export.layout`), e.g. ``{category}/{year}``.
        Photos the user rejected as duplicates (:mod:`photosort.core.rejects`) are left out and listed as
        skipped, unless ``include_rejected``.
        """
        parsed = parse_layout(layout)
        if not len(result.photos):
            self.check_sortable(ExportError)
        items = self._export_items(result, parsed)
        left_out = set() if include_rejected else {Path(r.path) for r in rejected_photos(self)}
        plan = plan_export([item for item in items if item.source not in left_out], Path(destination).expanduser(),
                           mode=mode, unsure=unsure, layout=parsed)
        plan.skipped.extend((Path(path), f"could not be read: {error}") for path, error in self.failures())
        plan.skipped.extend((path, REJECTED_REASON) for path in sorted(left_out))
        plan.skipped.extend((Path(path), NOT_ANALYSED_REASON) for path in self._unanalysed.values())
        return plan

    def _export_items(self, result: SortResult, layout: Layout) -> list[ExportItem]:
        """The photos to export with their capture date (else file time) and camera, where the layout uses them."""
        dates = self.dates(result.photos.ids.tolist()) if layout.needs_capture_facts else {}
        items = []
        for i, (photo_id, path) in enumerate(zip(result.photos.ids.tolist(), result.photos.paths, strict=True)):
            date = dates.get(photo_id)
            items.append(ExportItem(Path(path), result.category_of(i), float(result.decision.score[i]),
                                    date.when if date else None, date.facts.camera if date else None))
        return items

    def _reserve(self, n: int) -> None:
        if n > len(self._vectors):
            grown = np.zeros((max(n, 2 * len(self._vectors), 256), self._vectors.shape[1]), np.float32)
            grown[: len(self._ids)] = self._vectors[: len(self._ids)]
            self._vectors = grown
