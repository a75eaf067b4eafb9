"""The engine facade that the CLI and the GUI's worker both drive.

An :class:`Engine` owns one cache connection and, loaded only when needed,
the CLIP model, so it belongs to one thread. Everything that answers from
cached vectors (sorting, search, heads) needs no model call for the photos;
text prompts are embedded once per model and remembered in the cache.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import Cache, EmbeddingSet
from .config import Settings
from .errors import HeadError, LabelsError, PhotosortError
from .export import ExportItem, ExportPlan, plan_export
from .heads import Head, cross_validated_accuracy, fit_head, untrained_head
from .indexer import IndexReport, PipelineOptions, index_folder
from .labels_csv import read_labels_csv
from .progress import CancelFn, ProgressFn
from .scan import resolve_root
from .zeroshot import DEFAULT_THRESHOLD, Assignment, Category, assign, category_vectors, zero_shot_probabilities

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SortResult:
    """Every indexed photo of a folder with its best class (or unsure) and confidence."""

    classes: list[str]
    embeddings: EmbeddingSet
    assignment: Assignment

    def category_of(self, i: int) -> str | None:
        best = int(self.assignment.best[i])
        return self.classes[best] if best >= 0 else None

    def counts(self) -> dict[str | None, int]:
        counts: dict[str | None, int] = {c: 0 for c in self.classes}
        counts[None] = 0
        for i in range(len(self.embeddings)):
            counts[self.category_of(i)] += 1
        return counts

    def to_json(self) -> dict:
        return {
            "classes": self.classes,
            "photos": [
                {"path": path, "category": self.category_of(i), "score": round(float(self.assignment.score[i]), 4)}
                for i, path in enumerate(self.embeddings.paths)
            ],
            "counts": {("unsure" if k is None else k): v for k, v in self.counts().items()},
        }


@dataclass(frozen=True)
class TrainReport:
    head: str
    classes: list[str]
    labels: int
    per_class: dict[str, int]
    accuracy: float | None
    missing: list[str]  # labelled paths not (yet) in the index

    def to_json(self) -> dict:
        return {
            "head": self.head,
            "classes": self.classes,
            "labels": self.labels,
            "labels_per_class": self.per_class,
            "cross_validated_accuracy": None if self.accuracy is None else round(self.accuracy, 4),
            "missing": self.missing,
        }


class Engine:
    """Cache + lazily loaded model for one thread, with the operations users ask for."""

    def __init__(self, settings: Settings, options: PipelineOptions | None = None) -> None:
        self.settings = settings
        self.options = options or PipelineOptions()
        self._cache: Cache | None = None
        self._encoder = None
        self._identity: tuple[str, int] | None = None

    # ---- resources ---------------------------------------------------------------
    @property
    def cache(self) -> Cache:
        if self._cache is None:
            self._cache = Cache(self.settings.cache_path)
        return self._cache

    def encoder(self):  # -> ClipEncoder; imported lazily so start-up stays fast
        if self._encoder is None:
            from .model import load_encoder

            self._encoder = load_encoder(self.settings)
            self._identity = (self._encoder.model_key, self._encoder.dim)
        return self._encoder

    @property
    def identity(self) -> tuple[str, int]:
        """(model key, vector size), without loading the model when possible."""
        if self._identity is None:
            from .model import model_identity

            self._identity = model_identity(self.settings)
        return self._identity

    @property
    def model_key(self) -> str:
        return self.identity[0]

    def model_id(self) -> int:
        key, dim = self.identity
        return self.cache.model_id(key, dim)

    def notices(self) -> list[str]:
        out = list(self._cache.notices) if self._cache else []
        if self._encoder is not None:
            out += self._encoder.notices
        return out

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    # ---- indexing ------------------------------------------------------------------
    def index(self, folder: str | os.PathLike[str], progress: ProgressFn | None = None, cancel: CancelFn | None = None,
              on_batch: Callable[[list[int]], None] | None = None) -> IndexReport:
        key, dim = self.identity
        report = index_folder(folder, self.cache, key, dim, self.encoder, progress=progress, cancel=cancel,
                              on_batch=on_batch, options=self.options)
        report.model = self.settings.model
        if self._encoder is not None:
            report.device, report.precision = self._encoder.device.type, self._encoder.precision.name
        return report

    def embeddings(self, folder: str | os.PathLike[str]) -> EmbeddingSet:
        _, dim = self.identity
        return self.cache.load_embeddings(resolve_root(folder), self.model_id(), dim)

    def failures(self, folder: str | os.PathLike[str]) -> list[tuple[str, str]]:
        return self.cache.failures_under(resolve_root(folder))

    # ---- text --------------------------------------------------------------------
    def text_vectors(self, texts: list[str]) -> np.ndarray:
        """Unit vectors for prompts, from the cache when seen before (no model load), else embedded once."""
        _, dim = self.identity
        model_id = self.model_id()
        known = self.cache.text_vectors(model_id, texts, dim)
        missing = sorted({t for t in texts if t not in known})
        if missing:
            fresh = dict(zip(missing, self.encoder().embed_texts(missing), strict=True))
            self.cache.store_text_vectors(model_id, fresh)
            known.update(fresh)
        return np.stack([known[t] for t in texts]).astype(np.float32)

    def logit_scale(self) -> float:
        key = f"logit_scale:{self.model_key}"
        cached = self.cache.get_setting(key)
        if cached is None:
            cached = repr(self.encoder().logit_scale)
            self.cache.set_setting(key, cached)
        return float(cached)

    def class_vectors(self, categories: list[Category]) -> np.ndarray:
        return category_vectors(categories, self.text_vectors)

    # ---- sorting -------------------------------------------------------------------
    def sort_by_categories(self, folder: str | os.PathLike[str], categories: list[Category],
                           threshold: float = DEFAULT_THRESHOLD) -> SortResult:
        if not categories:
            raise PhotosortError("No categories given: type at least one, e.g. --categories \"beach, city\".")
        photos = self.embeddings(folder)
        probs = zero_shot_probabilities(photos.vectors, self.class_vectors(categories), self.logit_scale())
        return SortResult([c.name for c in categories], photos, assign(probs, threshold))

    def sort_by_head(self, folder: str | os.PathLike[str], head_name: str, threshold: float = 0.0) -> SortResult:
        head = self.load_head(head_name)
        photos = self.embeddings(folder)
        return SortResult(head.classes, photos, assign(head.probabilities(photos.vectors), threshold))

    # ---- search --------------------------------------------------------------------
    def search_text(self, folder: str | os.PathLike[str], query: str, limit: int = 20) -> list[tuple[str, float]]:
        if not query.strip():
            raise PhotosortError("Empty search: type what you are looking for.")
        photos = self.embeddings(folder)
        return _top(photos, photos.vectors @ self.text_vectors([query.strip()])[0], limit)

    def search_like(self, folder: str | os.PathLike[str], photo: str | os.PathLike[str],
                    limit: int = 20) -> list[tuple[str, float]]:
        photos = self.embeddings(folder)
        target = _find_photo(photos, photo, resolve_root(folder))
        scores = photos.vectors @ photos.vectors[target]
        scores[target] = -np.inf
        return _top(photos, scores, limit)

    # ---- heads ---------------------------------------------------------------------
    def head_names(self) -> list[str]:
        return self.cache.head_names()

    def load_head(self, name: str) -> Head:
        row = self.cache.head_row(name)
        if row is None:
            known = ", ".join(self.head_names()) or "none yet"
            raise HeadError(f"No classifier named '{name}' (known: {known}). Train one with: photosort train.")
        weights = row[3]
        if weights is None:
            raise HeadError(f"The classifier '{name}' has no weights yet: label some photos and train it.")
        return Head.from_bytes(weights, expected_model_key=self.model_key)

    def create_head(self, name: str, classes: list[str], use_prior: bool = True) -> Head:
        """A new (or reset) head predicting from the class names' zero-shot scores until it has labels."""
        name = name.strip()
        if not name:
            raise HeadError("A classifier needs a name.")
        classes = _unique(classes)
        if not classes:
            raise HeadError("A classifier needs at least one class.")
        key, dim = self.identity
        prior = self.class_vectors([Category(c) for c in classes]) if use_prior else None
        head = untrained_head(name, classes, key, dim, prior, self.logit_scale() if use_prior else 100.0)
        self.save_head(head)
        return head

    def save_head(self, head: Head) -> int:
        return self.cache.save_head(head.name, head.model_key, head.classes, head.to_bytes(), head.metrics)

    def head_labels(self, name: str) -> dict[int, str]:
        row = self.cache.head_row(name)
        return self.cache.labels(row[0]) if row else {}

    def set_labels(self, name: str, labels: dict[int, str | None]) -> None:
        row = self.cache.head_row(name)
        if row is None:
            raise HeadError(f"No classifier named '{name}'.")
        self.cache.set_labels(row[0], labels)

    def train_head(self, name: str, folder: str | os.PathLike[str] | None = None) -> TrainReport:
        """Fit the head on all its labels (photos anywhere in the cache) and store it with its accuracy."""
        head = self.load_head(name)
        labels = self.head_labels(name)
        key, dim = self.identity
        known = {c: i for i, c in enumerate(head.classes)}
        ids = [pid for pid, lab in labels.items() if lab in known]
        vectors, found = self._vectors_for_ids(ids)
        targets = np.array([known[labels[pid]] for pid in found], dtype=np.int64)
        base = untrained_head(head.name, head.classes, key, dim, head.prior, head.prior_scale)
        trained = fit_head(base, vectors, targets) if len(found) else base
        accuracy = cross_validated_accuracy(base, vectors, targets) if len(found) else None
        per_class = {c: int((targets == i).sum()) for i, c in enumerate(head.classes)}
        trained.metrics = {"labels": len(found), "labels_per_class": per_class, "cv_accuracy": accuracy}
        self.save_head(trained)
        return TrainReport(name, head.classes, len(found), per_class, accuracy, [])

    def train_from_csv(self, folder: str | os.PathLike[str], name: str, csv_path: str | os.PathLike[str]) -> TrainReport:
        root = resolve_root(folder)
        rows = read_labels_csv(csv_path, root)
        classes = _unique([label for _, label in rows])
        existing = self.cache.head_row(name)
        if existing is not None:
            classes = _unique(existing[2] + classes)
        if existing is None or existing[2] != classes:
            self.create_head(name, classes)
        photos = self.embeddings(root)
        path_to_id = {p: int(i) for p, i in zip(photos.paths, photos.ids, strict=True)}
        missing = [p for p, _ in rows if p not in path_to_id]
        if len(missing) == len(rows):
            raise LabelsError("None of the labelled photos are indexed in this folder; check the paths in the CSV.")
        self.set_labels(name, {path_to_id[p]: label for p, label in rows if p in path_to_id})
        report = self.train_head(name)
        return TrainReport(report.head, report.classes, report.labels, report.per_class, report.accuracy, missing)

    # ---- export ------------------------------------------------------------------
    def plan_export(self, folder: str | os.PathLike[str], result: SortResult, destination: str | os.PathLike[str],
                    *, mode: str = "copy", unsure: str = "folder") -> ExportPlan:
        """What an export would do; photos that could not be read are listed as skipped, never exported."""
        items = [ExportItem(Path(path), result.category_of(i), float(result.assignment.score[i]))
                 for i, path in enumerate(result.embeddings.paths)]
        plan = plan_export(items, Path(destination).expanduser(), mode=mode, unsure=unsure)
        plan.skipped.extend((Path(path), f"could not be read: {error}") for path, error in self.failures(folder))
        return plan

    @property
    def journal_dir(self) -> Path:
        """Where move journals live (beside the cache) until the user clears them."""
        return self.settings.cache_path.parent / "journals"

    def _vectors_for_ids(self, ids: list[int]) -> tuple[np.ndarray, list[int]]:
        _, dim = self.identity
        vectors = self.cache.vectors_for_ids(self.model_id(), ids, dim)
        found = [pid for pid in ids if pid in vectors]
        matrix = np.stack([vectors[pid] for pid in found]) if found else np.zeros((0, dim), np.float32)
        return matrix, found


def _unique(names: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for name in (n.strip() for n in names):
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            out.append(name)
    return out


def _top(photos: EmbeddingSet, scores: np.ndarray, limit: int) -> list[tuple[str, float]]:
    limit = max(0, min(limit, len(scores)))
    if limit == 0:
        return []
    top = np.argpartition(-scores, limit - 1)[:limit]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(photos.paths[i], float(scores[i])) for i in top if np.isfinite(scores[i])]


def _find_photo(photos: EmbeddingSet, photo: str | os.PathLike[str], root: str) -> int:
    candidate = Path(photo).expanduser()
    options = [os.path.realpath(candidate), os.path.realpath(Path(root) / candidate)]
    by_path = {p: i for i, p in enumerate(photos.paths)}
    for option in options:
        if option in by_path:
            return by_path[option]
    matches = [i for i, p in enumerate(photos.paths) if os.path.basename(p) == candidate.name]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise PhotosortError(f"Several photos are named {candidate.name}; give the path relative to the folder.")
    raise PhotosortError(f"{photo} is not an indexed photo of {root}; run photosort index first.")
