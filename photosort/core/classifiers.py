"""The user's classifiers: create, rename, delete, import, export, label, train.

A classifier is a small MLP head (:mod:`photosort.core.classifier`) over one
model's CLIP vectors, stored in ``library.db`` with its labels. Names match in
any case. A classifier made for another model is trained again for this one
from its classes and labels (its zero-shot prior recomputed from the class
prompts) the first time it is used. Everything here is the same for the CLI
and the window: both reach it as ``engine.classifiers``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .classifier import FEW_LABELS, MAX_CLASSES, MAX_FILE_BYTES, MAX_NAME_CHARS, Classifier, train, untrained_classifier
from .errors import BadFileError, ClassifierError, os_error
from .progress import CancelToken, check_cancel
from .userdata import StoredClassifier
from .wording import plural
from .zeroshot import Category

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainReport:
    """What the user is told after training: labels per class, accuracy, and what to do next."""

    classifier: str
    classes: list[str]
    labels: int
    per_class: dict[str, int]
    accuracy: float | None  # cross-validated; None until every labelled class has 2 labels
    missing: list[str]  # labelled photos not (yet) indexed: their paths
    few_labels: list[str]  # classes with fewer than FEW_LABELS labels: the user should add some

    def to_json(self) -> dict:
        return {
            "classifier": self.classifier,
            "classes": self.classes,
            "labels": self.labels,
            "labels_per_class": self.per_class,
            "cross_validated_accuracy": None if self.accuracy is None else round(self.accuracy, 4),
            "few_labels": self.few_labels,
            "missing": self.missing,
        }


@dataclass(frozen=True)
class ClassifierSummary:
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


class Classifiers:
    """The classifiers in the user's library, for the engine's model."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def _store(self):  # -> UserStore
        return self._engine.user

    # ---- reading --------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return self._store.classifier_names()

    def stored(self, name: str) -> StoredClassifier:
        found = self._store.classifier(name)
        if found is None:
            known = ", ".join(self.names()) or "none yet"
            raise ClassifierError(f"No classifier named '{name}' (known: {known}). "
                                  "Create one in the window, or train one with: photosort train.")
        return found

    def summaries(self) -> list[ClassifierSummary]:
        """Every stored classifier with its classes, labels and accuracy (those of other models included)."""
        out = []
        for name in self.names():
            c = self.stored(name)
            out.append(ClassifierSummary(c.name, list(c.classes), len(self._store.labels(c.id)), c.accuracy,
                                         c.model_key, c.model_key == self._engine.model_key))
        return out

    def load(self, name: str) -> Classifier:
        """The classifier ready to predict with this model (refused when it was made for another)."""
        c = self.stored(name)
        if c.weights is None:
            raise ClassifierError(f"The classifier '{name}' has no weights yet: label some photos and train it.")
        key, dim = self._engine.identity
        return Classifier.from_bytes(c.weights, expected_model_key=key, expected_dim=dim).renamed(c.name)

    def current(self, name: str) -> Classifier:
        """The classifier, trained first if its labels changed since its last training (the app was killed first).

        One made for another model is refused (load says so): training it again for this
        model is the user's choice (the window asks; ``photosort train`` does it).
        """
        c = self.stored(name)
        if c.model_key == self._engine.model_key and (c.weights is None or _labels_changed(c, self._store.labels(c.id))):
            self.train(c.name)
        return self.load(c.name)

    def categories(self, name: str) -> list[Category]:
        """A classifier's classes with their own prompts (any model's classifier); [] when there is none."""
        c = self._store.classifier(name)
        if c is None:
            return []
        stored = _decoded(c)
        prompts = stored.prompts if stored is not None else [None] * len(c.classes)
        return [Category(cls, p) for cls, p in zip(c.classes, prompts, strict=True)]

    def labels(self, name: str) -> dict[str, str]:
        """Photo identity -> label (empty for a classifier that does not exist)."""
        c = self._store.classifier(name)
        return self._store.labels(c.id) if c else {}

    # ---- changing ---------------------------------------------------------------------------------
    def create(self, name: str, classes: Sequence[str | Category], use_prior: bool = True) -> Classifier:
        """A new (or reset) classifier predicting from its classes' zero-shot scores until it has labels.

        Classes may be typed categories: a category's own prompt (``pets = a photo of a cat or a
        dog``) is then what the classifier's prior uses, exactly as zero-shot sorting does.
        """
        name = checked_name(name)
        categories = unique_categories(classes)
        if not categories:
            raise ClassifierError("A classifier needs at least one class.")
        if len(categories) > MAX_CLASSES:
            raise ClassifierError(f"A classifier can have at most {MAX_CLASSES} classes.")
        created = self._untrained(name, categories, use_prior)
        self._save(created)
        return created

    def rename(self, old: str, new: str) -> str:
        """Rename a classifier; it keeps its labels and weights. Returns the new name as stored."""
        c = self.stored(old)
        new = checked_name(new)
        other = self._store.classifier(new)
        if other is not None and other.id != c.id:
            raise ClassifierError(f"A classifier named '{new}' already exists; choose another name.")
        self._store.rename_classifier(c.name, new)
        return new

    def delete(self, name: str) -> None:
        """Delete a classifier and its labels (the photos are untouched)."""
        self._store.delete_classifier(self.stored(name).name)

    def set_labels(self, name: str, labels: dict[str, str | None], paths: dict[str, str] | None = None) -> None:
        """Set (or, with None, remove) photos' labels by identity; a label must be one of the classes (any case)."""
        c = self.stored(name)
        canonical = {cls.casefold(): cls for cls in c.classes}
        checked: dict[str, str | None] = {}
        for photo, label in labels.items():
            if label is not None and label.strip().casefold() not in canonical:
                raise ClassifierError(f"'{label}' is not a class of '{c.name}' (its classes: {', '.join(c.classes)}).")
            checked[photo] = None if label is None else canonical[label.strip().casefold()]
        self._store.set_labels(c.id, checked, paths)

    def train(self, name: str, cancel: CancelToken | None = None) -> TrainReport:
        """Fit the classifier on all its labels (photos anywhere in the cache) and store it with its accuracy.

        Takes well under a second for hundreds of labels, so the window can call it after every few clicks.
        """
        c = self.stored(name)
        base = self._untrained_copy(c)
        records = self._store.label_records(c.id)
        index = {cls: i for i, cls in enumerate(base.classes)}
        usable = [r for r in records if r.label in index]
        key_vectors = self._engine.vectors_for_keys([r.photo for r in usable])
        found = [r for r in usable if r.photo in key_vectors]
        vectors = (np.stack([key_vectors[r.photo] for r in found]) if found
                   else np.zeros((0, base.dim), np.float32))
        targets = np.array([index[r.label] for r in found], dtype=np.int64)
        check_cancel(cancel)
        training = train(base, vectors, targets)
        per_class = {cls: int((targets == i).sum()) for i, cls in enumerate(base.classes)}
        trained = training.head
        trained.metrics = {"labels": len(records), "labels_digest": labels_digest({r.photo: r.label for r in records}),
                           "labels_per_class": per_class, "cv_accuracy": training.accuracy,
                           "penalty": training.penalty, "prior_weight": trained.prior_weight,
                           "calibration": None if training.calibration is None else training.calibration.to_json()}
        check_cancel(cancel)
        self._save(trained)
        missing = sorted(r.path or r.photo for r in usable if r.photo not in key_vectors)
        return TrainReport(base.name, base.classes, len(found), per_class, training.accuracy, missing,
                           [cls for cls, n in per_class.items() if n < FEW_LABELS])

    # ---- files ------------------------------------------------------------------------------------
    def export_file(self, name: str, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write a classifier to a file (safetensors + JSON metadata) to use on another computer.

        Written to a temporary file beside the target first, so a crash never leaves half a
        file; an existing file is replaced only when ``overwrite`` is set.
        """
        data = self.load(name).to_bytes()
        target = Path(path).expanduser()
        taken = f"{target} already exists; choose another file name, or allow replacing it (--force)."
        if target.exists() and not overwrite:
            raise ClassifierError(taken)
        try:
            _write_atomically(target, data, overwrite)
        except FileExistsError:
            raise ClassifierError(taken) from None
        except OSError as exc:
            raise os_error(exc, "write the classifier file", target) from None
        return target

    def import_file(self, path: str | os.PathLike[str], name: str | None = None) -> Classifier:
        """Add a classifier from a file made by export; refused unless it is a valid classifier for this model."""
        imported = self.read_file(path)
        new_name = checked_name(name if name is not None else imported.name)
        if self._store.classifier(new_name) is not None:
            raise ClassifierError(f"A classifier named '{new_name}' already exists; import it under another name "
                                  "(--name).")
        imported = imported.renamed(new_name)
        # Its labels stay on the computer that made it: it is up to date with the (no) labels here.
        imported.metrics = {**imported.metrics, "labels_digest": labels_digest({})}
        self._save(imported)
        return imported

    def read_file(self, path: str | os.PathLike[str]) -> Classifier:
        """A classifier file, checked (a regular file, not too big, safetensors, made for this model), not stored."""
        key, dim = self._engine.identity
        return Classifier.from_bytes(read_classifier_file(path), expected_model_key=key, expected_dim=dim)

    def unique_name(self, name: str) -> str:
        """``name``, or ``name (2)``, ``name (3)``... when a classifier already has it (names match in any case)."""
        folded = {n.casefold() for n in self.names()}
        candidate, number = name, 2
        while candidate.casefold() in folded:
            candidate, number = f"{name} ({number})", number + 1
        return candidate

    # ---- internals --------------------------------------------------------------------------------
    def _save(self, classifier: Classifier) -> int:
        return self._store.save_classifier(classifier.name, classifier.model_key, classifier.classes,
                                           classifier.to_bytes(), classifier.metrics)

    def _untrained(self, name: str, categories: list[Category], use_prior: bool) -> Classifier:
        key, dim = self._engine.identity
        prior = self._engine.class_vectors(categories) if use_prior else None
        scale = self._engine.logit_scale() if use_prior else 100.0
        return untrained_classifier(name, [c.name for c in categories], key, dim, prior, scale, [c.prompt for c in categories])

    def _untrained_copy(self, c: StoredClassifier) -> Classifier:
        """The classifier with its labels' learning undone: for this model, keeping its prior (or rebuilding it)."""
        stored = _decoded(c)
        if stored is not None and c.model_key == self._engine.model_key:
            key, dim = self._engine.identity
            return untrained_classifier(c.name, stored.classes, key, dim, stored.prior, stored.prior_scale, stored.prompts)
        log.info("training classifier %s for %s (it was made for %s)", c.name, self._engine.model_key, c.model_key)
        had_prior = stored is None or stored.prior is not None
        return self._untrained(c.name, self.categories(c.name), had_prior)


def _decoded(c: StoredClassifier) -> Classifier | None:
    """A stored classifier's own head (any model's), or None when it has none or it cannot be read."""
    if c.weights is None:
        return None
    try:
        return Classifier.from_bytes(c.weights)
    except ClassifierError:
        return None


def read_classifier_file(path: str | os.PathLike[str]) -> bytes:
    """A classifier file's bytes: only a regular file, never blocking on a FIFO or device, size-capped."""
    source = Path(path).expanduser()
    try:
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise BadFileError(f"Classifier file not found: {source}.") from None
    except OSError as exc:
        raise os_error(exc, "read the classifier file", source) from None
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError as exc:
        os.close(fd)
        raise os_error(exc, "read the classifier file", source) from None
    if not regular:  # checked before fdopen, which refuses a folder with an OSError (and keeps the fd open)
        os.close(fd)
        raise BadFileError(f"{source} is not a classifier file (not a regular file).")
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise os_error(exc, "read the classifier file", source) from None
    if len(data) > MAX_FILE_BYTES:
        raise BadFileError(f"{source} is too large to be a classifier file (limit {MAX_FILE_BYTES // 1_000_000} MB).")
    return data


def unique_categories(items: Sequence[str | Category]) -> list[Category]:
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


def checked_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ClassifierError("A classifier needs a name.")
    if len(name) > MAX_NAME_CHARS:
        raise ClassifierError(f"A classifier's name can have at most {MAX_NAME_CHARS} characters.")
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


def labels_digest(labels: dict[str, str]) -> str:
    """A fingerprint of exactly which photo has which label: changes when any label changes, not only the count."""
    digest = hashlib.blake2b(digest_size=16)
    for photo, label in sorted(labels.items()):
        digest.update(f"{photo}\0{label}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _labels_changed(stored: StoredClassifier, labels: dict[str, str]) -> bool:
    """Whether the labels differ from those of the last training (one trained before 0.3 knows only their count)."""
    digest = stored.metrics.get("labels_digest")
    if digest is None:
        return bool(labels) and stored.trained_on != len(labels)
    return digest != labels_digest(labels)


def describe_import(classifier: Classifier) -> str:
    """What the user is told after an import (CLI and window alike): its classes and how good it was."""
    text = f"Imported the classifier '{classifier.name}' ({', '.join(classifier.classes)})"
    accuracy, labels = classifier.metrics.get("cv_accuracy"), classifier.metrics.get("labels")
    if isinstance(accuracy, float) and isinstance(labels, int) and labels:
        text += f": accuracy {accuracy:.0%} (cross-validated on {plural(labels, 'label')} where it was made)"
    return text + "."
