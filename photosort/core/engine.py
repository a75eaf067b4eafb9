"""The engine facade that the CLI and the GUI's worker both drive.

An :class:`Engine` owns one cache connection and, loaded only when needed,
the CLIP model, so it belongs to one thread. Everything that answers from
cached vectors (sorting, search, heads) needs no model call for the photos;
text prompts are embedded once per model and remembered in the cache.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .cache import Cache, EmbeddingSet
from .config import Settings
from .errors import HeadError, LabelsError, PhotosortError
from .export import ExportItem, ExportPlan, ExportResult, ExportStopped, Placed, plan_export, resume_or_recover, run_export
from .heads import FEW_LABELS, MAX_CLASSES, MAX_FILE_BYTES, MAX_NAME_CHARS, Head, least_sure_order, train, untrained_head
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
    accuracy: float | None  # cross-validated; None until every labelled class has 2 labels
    missing: list[str]  # labelled paths not (yet) in the index
    few_labels: list[str]  # classes with fewer than FEW_LABELS labels: the user should add some

    def to_json(self) -> dict:
        return {
            "head": self.head,
            "classes": self.classes,
            "labels": self.labels,
            "labels_per_class": self.per_class,
            "cross_validated_accuracy": None if self.accuracy is None else round(self.accuracy, 4),
            "few_labels": self.few_labels,
            "missing": self.missing,
        }


@dataclass(frozen=True)
class HeadSummary:
    """One stored classifier, as listed to the user."""

    name: str
    classes: list[str]
    labels: int
    accuracy: float | None
    model_key: str
    for_this_model: bool

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "classes": self.classes,
            "labels": self.labels,
            "cross_validated_accuracy": None if self.accuracy is None else round(self.accuracy, 4),
            "model": self.model_key,
            "for_this_model": self.for_this_model,
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

    def head_summaries(self) -> list[HeadSummary]:
        """Every stored classifier with its classes, labels and accuracy (heads of other models included)."""
        out = []
        for name in self.head_names():
            row = self._head_row(name)
            metrics = row[4] if isinstance(row[4], dict) else {}
            accuracy = metrics.get("cv_accuracy")
            out.append(HeadSummary(name, list(row[2]), len(self.cache.labels(row[0])),
                                   accuracy if isinstance(accuracy, float) else None, row[1], row[1] == self.model_key))
        return out

    def load_head(self, name: str) -> Head:
        row = self._head_row(name)
        if row[3] is None:
            raise HeadError(f"The classifier '{name}' has no weights yet: label some photos and train it.")
        head = Head.from_bytes(row[3], expected_model_key=self.model_key, expected_dim=self.identity[1])
        return head.renamed(self._stored_name(name))

    def create_head(self, name: str, classes: Sequence[str | Category], use_prior: bool = True) -> Head:
        """A new (or reset) head predicting from its classes' zero-shot scores until it has labels.

        Classes may be typed categories: a category's own prompt (``pets = a photo of a cat or a
        dog``) is then what the head's prior uses, exactly as zero-shot sorting does.
        """
        name = _checked_head_name(name)
        categories = _unique_categories(classes)
        if not categories:
            raise HeadError("A classifier needs at least one class.")
        if len(categories) > MAX_CLASSES:
            raise HeadError(f"A classifier can have at most {MAX_CLASSES} classes.")
        key, dim = self.identity
        prior = self.class_vectors(categories) if use_prior else None
        head = untrained_head(name, [c.name for c in categories], key, dim, prior,
                              self.logit_scale() if use_prior else 100.0, [c.prompt for c in categories])
        self.save_head(head)
        return head

    def save_head(self, head: Head) -> int:
        return self.cache.save_head(head.name, head.model_key, head.classes, head.to_bytes(), head.metrics)

    def rename_head(self, old: str, new: str) -> None:
        """Rename a classifier; it keeps its labels and weights."""
        row = self._head_row(old)
        new = _checked_head_name(new)
        other = self.cache.head_row(new)
        if other is not None and other[0] != row[0]:
            raise HeadError(f"A classifier named '{new}' already exists; choose another name.")
        self.cache.rename_head(self._stored_name(old), new)

    def delete_head(self, name: str) -> None:
        """Delete a classifier and its labels (the photos are untouched)."""
        self._head_row(name)
        self.cache.delete_head(self._stored_name(name))

    def export_head(self, name: str, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write a classifier to a file (safetensors + JSON metadata) to use on another machine.

        Written to a temporary file beside the target first, so a crash never leaves half a
        file; an existing file is replaced only when ``overwrite`` is set.
        """
        data = self.load_head(name).to_bytes()
        target = Path(path).expanduser()
        if target.exists() and not overwrite:
            raise HeadError(f"{target} already exists; choose another file name, or allow replacing it (--force).")
        try:
            _write_atomically(target, data, overwrite)
        except FileExistsError:
            raise HeadError(f"{target} already exists; choose another file name, or allow replacing it (--force).") from None
        except OSError as exc:
            raise HeadError(f"Cannot write {target}: {exc.strerror or exc}.") from None
        return target

    def import_head(self, path: str | os.PathLike[str], name: str | None = None) -> Head:
        """Add a classifier from a file made by export_head; refused unless it is a valid head for this model."""
        source = Path(path).expanduser()
        try:
            with source.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            raise HeadError(f"Classifier file not found: {source}.") from None
        except OSError as exc:
            raise HeadError(f"Cannot read the classifier file {source}: {exc.strerror or exc}.") from None
        head = Head.from_bytes(data, expected_model_key=self.model_key, expected_dim=self.identity[1])
        new_name = _checked_head_name(name if name is not None else head.name)
        if self.cache.head_row(new_name) is not None:
            raise HeadError(f"A classifier named '{new_name}' already exists; import it under another name (--name).")
        head = head.renamed(new_name)
        self.save_head(head)
        return head

    def head_labels(self, name: str) -> dict[int, str]:
        row = self.cache.head_row(name)
        return self.cache.labels(row[0]) if row else {}

    def set_labels(self, name: str, labels: dict[int, str | None]) -> None:
        """Set (or, with None, remove) photos' labels; a label must be one of the head's classes (any case)."""
        row = self._head_row(name)
        canonical = {c.casefold(): c for c in row[2]}
        checked: dict[int, str | None] = {}
        for photo_id, label in labels.items():
            if label is not None and label.strip().casefold() not in canonical:
                raise HeadError(f"'{label}' is not a class of '{name}' (its classes: {', '.join(row[2])}).")
            checked[photo_id] = None if label is None else canonical[label.strip().casefold()]
        self.cache.set_labels(row[0], checked)

    def train_head(self, name: str) -> TrainReport:
        """Fit the head on all its labels (photos anywhere in the cache) and store it with its accuracy.

        A head made for another model is trained again for this one from its classes and
        labels (its prior recomputed from the class prompts). Takes well under a second for
        hundreds of labels, so the app can call it after every few clicks.
        """
        base = self._untrained_copy(name)
        labels = self.head_labels(name)
        index = {c: i for i, c in enumerate(base.classes)}
        ids = [pid for pid, label in labels.items() if label in index]
        vectors, found = self._vectors_for_ids(ids)
        targets = np.array([index[labels[pid]] for pid in found], dtype=np.int64)
        training = train(base, vectors, targets)
        per_class = {c: int((targets == i).sum()) for i, c in enumerate(base.classes)}
        head = training.head
        head.metrics = {"labels": len(found), "labels_per_class": per_class, "cv_accuracy": training.accuracy,
                        "penalty": training.penalty, "prior_weight": head.prior_weight}
        self.save_head(head)
        missing = sorted(self.cache.paths_for_ids(set(ids) - set(found)).values())
        return TrainReport(base.name, base.classes, len(found), per_class, training.accuracy, missing,
                           [c for c, n in per_class.items() if n < FEW_LABELS])

    def train_from_csv(self, folder: str | os.PathLike[str], name: str, csv_path: str | os.PathLike[str]) -> TrainReport:
        root = resolve_root(folder)
        rows = read_labels_csv(csv_path, root)
        new = _unique_categories([label for _, label in rows])
        existing = self._stored_categories(name)
        categories = _unique_categories([*existing, *new])
        if not existing or [c.name for c in categories] != [c.name for c in existing]:
            self.create_head(name, categories)
        photos = self.embeddings(root)
        path_to_id = {p: int(i) for p, i in zip(photos.paths, photos.ids, strict=True)}
        missing = [p for p, _ in rows if p not in path_to_id]
        if len(missing) == len(rows):
            raise LabelsError("None of the labelled photos are indexed in this folder; check the paths in the CSV.")
        self.set_labels(name, {path_to_id[p]: label for p, label in rows if p in path_to_id})
        report = self.train_head(name)
        return replace(report, missing=missing)

    def least_sure(self, name: str, folder: str | os.PathLike[str], limit: int = 20) -> list[int]:
        """"Label these next": ids of the folder's unlabelled photos the head is least sure about, least first.

        Ranked by the margin between the two most likely classes: a photo the head hesitates
        on between two classes teaches it most when labelled.
        """
        head = self.load_head(name)
        photos = self.embeddings(folder)
        labelled = set(self.head_labels(name))
        order = least_sure_order(head.probabilities(photos.vectors))
        ids = (int(photos.ids[i]) for i in order)
        return [pid for pid in ids if pid not in labelled][: max(0, limit)]

    # ---- export ------------------------------------------------------------------
    def plan_export(self, folder: str | os.PathLike[str], result: SortResult, destination: str | os.PathLike[str],
                    *, mode: str = "copy", unsure: str = "folder") -> ExportPlan:
        """What an export would do; photos that could not be read are listed as skipped, never exported."""
        items = [ExportItem(Path(path), result.category_of(i), float(result.assignment.score[i]))
                 for i, path in enumerate(result.embeddings.paths)]
        plan = plan_export(items, Path(destination).expanduser(), mode=mode, unsure=unsure)
        plan.skipped.extend((Path(path), f"could not be read: {error}") for path, error in self.failures(folder))
        return plan

    def run_export(self, plan: ExportPlan, progress: Callable[[int, int], None] | None = None,
                   cancel: CancelFn | None = None) -> ExportResult:
        """Carry out a plan; moved photos keep their vectors and labels at their new place."""
        try:
            result = run_export(plan, journal_dir=self.journal_dir, progress=progress, cancel=cancel)
        except ExportStopped as stopped:
            self._record_moves(stopped.result.placed)
            raise
        self._record_moves(result.placed)
        return result

    def finish_move(self, journal: str | os.PathLike[str], progress: Callable[[int, int], None] | None = None,
                    cancel: CancelFn | None = None) -> ExportResult:
        """Finish an interrupted move export from its journal."""
        result = resume_or_recover(Path(journal), progress=progress, cancel=cancel)
        self._record_moves(result.placed)
        return result

    def _record_moves(self, placed: list[Placed]) -> None:
        moved = [(str(p.source), str(p.destination)) for p in placed if p.method in ("move", "copy+delete")]
        if moved:
            self.cache.repoint(moved)

    @property
    def journal_dir(self) -> Path:
        """Where move journals live (beside the cache) until the user clears them."""
        return self.settings.cache_path.parent / "journals"

    def _head_row(self, name: str) -> tuple[int, str, list[str], bytes | None, dict]:
        row = self.cache.head_row(name)
        if row is None:
            known = ", ".join(self.head_names()) or "none yet"
            raise HeadError(f"No classifier named '{name}' (known: {known}). Train one with: photosort train.")
        return row

    def _stored_name(self, name: str) -> str:
        """The name as stored (names match whatever their case)."""
        return next((n for n in self.head_names() if n.casefold() == name.casefold()), name)

    def _stored_categories(self, name: str) -> list[Category]:
        """A stored head's classes with their prompts (any model's head), or [] when there is none."""
        row = self.cache.head_row(name)
        if row is None:
            return []
        try:
            stored = Head.from_bytes(row[3]) if row[3] is not None else None
        except HeadError:
            stored = None
        prompts = stored.prompts if stored is not None else [None] * len(row[2])
        return [Category(c, p) for c, p in zip(row[2], prompts, strict=True)]

    def _untrained_copy(self, name: str) -> Head:
        """The head with its labels' learning undone: for this model, keeping its prior (or rebuilding it)."""
        row = self._head_row(name)
        key, dim = self.identity
        if row[1] == key:
            head = self.load_head(name)
            return untrained_head(head.name, head.classes, key, dim, head.prior, head.prior_scale, head.prompts)
        try:
            had_prior = row[3] is None or Head.from_bytes(row[3]).prior is not None
        except HeadError:
            had_prior = True
        log.info("retraining classifier %s for %s (it was made for %s)", name, key, row[1])
        categories = self._stored_categories(name)
        prior = self.class_vectors(categories) if had_prior else None
        return untrained_head(self._stored_name(name), [c.name for c in categories], key, dim, prior,
                              self.logit_scale() if had_prior else 100.0, [c.prompt for c in categories])

    def _vectors_for_ids(self, ids: list[int]) -> tuple[np.ndarray, list[int]]:
        _, dim = self.identity
        vectors = self.cache.vectors_for_ids(self.model_id(), ids, dim)
        found = [pid for pid in ids if pid in vectors]
        matrix = np.stack([vectors[pid] for pid in found]) if found else np.zeros((0, dim), np.float32)
        return matrix, found


def _unique_categories(items: Sequence[str | Category]) -> list[Category]:
    """Classes as categories (a plain name has no prompt of its own), first of each name (any case) kept."""
    seen: set[str] = set()
    out = []
    for item in items:
        category = item if isinstance(item, Category) else Category(str(item))
        name = " ".join(category.name.split())
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            out.append(Category(name, category.prompt))
    return out


def _checked_head_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise HeadError("A classifier needs a name.")
    if len(name) > MAX_NAME_CHARS:
        raise HeadError(f"A classifier's name can have at most {MAX_NAME_CHARS} characters.")
    return name


def _write_atomically(target: Path, data: bytes, overwrite: bool) -> None:
    """Write ``data`` to a temporary file beside ``target``, then put it in place in one step."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            _link_without_overwriting(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _link_without_overwriting(tmp: str, target: Path) -> None:
    """A hard link fails if the target appeared meanwhile; where links are unsupported, check then move."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:
        if target.exists():
            raise FileExistsError(str(target)) from None
        os.replace(tmp, target)


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
