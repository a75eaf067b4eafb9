"""The user's own data: classifiers, their labels, and saved category sets (``library.db``).

This is as precious as the photos: photosort never clears, rebuilds or moves
it aside. "Clear cache" and a damaged cache leave it alone; a damaged
``library.db`` is refused with a message, never replaced. Labels are keyed by
the photo's identity (its content fingerprint, see :mod:`photosort.core.cache`),
so a label follows its photo when the photo is moved or renamed, and survives
the cache being cleared and rebuilt; the path at labelling time is kept beside
it so that a label whose photo is not indexed can still be named. Both are
stored as bytes (:func:`photosort.core.database.sql_path`), so a photo whose
name is not UTF-8 is labelled like any other.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .database import Database, path_from_sql, sql_path

if TYPE_CHECKING:
    from .cache import Rewritten

log = logging.getLogger(__name__)

APPLICATION_ID = 0x5053554C  # "PSUL"

_SCHEMA_V1 = """
CREATE TABLE classifiers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    model_key TEXT NOT NULL,
    classes TEXT NOT NULL,
    weights BLOB,
    metrics TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE labels (
    classifier_id INTEGER NOT NULL REFERENCES classifiers(id) ON DELETE CASCADE,
    photo TEXT NOT NULL,
    label TEXT NOT NULL,
    path TEXT,
    labelled REAL NOT NULL,
    PRIMARY KEY (classifier_id, photo)
);
CREATE TABLE category_sets (name TEXT PRIMARY KEY, text TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Version 2: a label's photo identity and path are stored as bytes (sql_path), so names that are not UTF-8 fit.
_SCHEMA_V2 = """
UPDATE labels SET photo = CAST(photo AS BLOB), path = CAST(path AS BLOB) WHERE typeof(photo) = 'text'
"""

# Version 3: keep/reject decisions on near-duplicates (photosort.core.rejects). Keyed like labels by the photo's
# identity, with its path in the key too: identical copies share an identity, and the path tells which was rejected.
_SCHEMA_V3 = """
CREATE TABLE decisions (
    photo BLOB NOT NULL,
    path BLOB NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('keep', 'reject')),
    decided REAL NOT NULL,
    PRIMARY KEY (photo, path)
);
"""

CURRENT_CATEGORIES = ""  # the category set the window shows (typed text, kept as the user types)


@dataclass(frozen=True)
class StoredClassifier:
    """One classifier as stored: its classes, weights (None until first saved with any) and training metrics."""

    id: int
    name: str
    model_key: str
    classes: tuple[str, ...]
    weights: bytes | None
    metrics: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        value = self.metrics.get("cv_accuracy")
        return value if isinstance(value, float) else None

    @property
    def trained_on(self) -> int:
        """How many labels its last training used (to notice labels changed since)."""
        return int(self.metrics.get("labels", 0) or 0)


@dataclass(frozen=True)
class Label:
    photo: str  # the photo's identity
    label: str
    path: str | None  # where the photo was when it was labelled


@dataclass(frozen=True)
class StoredDecision:
    """The user's word on one file: ``"keep"`` or ``"reject"`` (a near-duplicate they do not want)."""

    photo: str  # the photo's identity (content fingerprint) when it was decided
    path: str  # where it was then
    decision: str
    decided: float  # time.time()


class UserStore(Database):
    """One thread's connection to ``library.db``."""

    APPLICATION_ID = APPLICATION_ID
    MIGRATIONS = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3)
    KIND = "library"

    # ---- classifiers ----------------------------------------------------------------------------
    def classifier(self, name: str) -> StoredClassifier | None:
        """The classifier of this name, in any case."""
        row = self.query_one("SELECT id, name, model_key, classes, weights, metrics FROM classifiers WHERE name=?",
                             (name,))
        if row is None:
            return None
        return StoredClassifier(int(row[0]), row[1], row[2], tuple(json.loads(row[3])), row[4],
                                json.loads(row[5] or "{}"))

    def classifier_names(self) -> list[str]:
        return [r[0] for r in self.query("SELECT name FROM classifiers ORDER BY name COLLATE NOCASE")]

    def save_classifier(self, name: str, model_key: str, classes: list[str], weights: bytes | None,
                        metrics: dict) -> int:
        """Insert or update (by name, any case) a classifier; its labels are kept."""
        now = time.time()
        values = (name, model_key, json.dumps(list(classes)), weights, json.dumps(metrics))
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM classifiers WHERE name=?", (name,)).fetchone()
            if row:
                conn.execute("UPDATE classifiers SET name=?, model_key=?, classes=?, weights=?, metrics=?, updated=? "
                             "WHERE id=?", (*values, now, row[0]))
                return int(row[0])
            cur = conn.execute("INSERT INTO classifiers(name, model_key, classes, weights, metrics, created, updated) "
                               "VALUES (?,?,?,?,?,?,?)", (*values, now, now))
            return int(cur.lastrowid)

    def rename_classifier(self, old: str, new: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE classifiers SET name=?, updated=? WHERE name=?", (new, time.time(), old))

    def delete_classifier(self, name: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM classifiers WHERE name=?", (name,))

    # ---- labels -----------------------------------------------------------------------------------
    def labels(self, classifier_id: int) -> dict[str, str]:
        """Photo identity -> label."""
        rows = self.query("SELECT photo, label FROM labels WHERE classifier_id=?", (classifier_id,))
        return {path_from_sql(photo): label for photo, label in rows}

    def carry_labels(self, rewritten: Sequence[Rewritten]) -> int:
        """Move each rewritten photo's labels, in every classifier, from its old identity to its new one (one
        transaction); a label already given to the new content wins. Where a copy elsewhere still holds the old
        content, its labels stay as well. Returns how many labels the new identities received."""
        carried = 0
        with self.transaction() as conn:
            for photo in rewritten:
                old, new = sql_path(photo.old), sql_path(photo.new)
                carried += conn.execute(
                    "INSERT OR IGNORE INTO labels(classifier_id, photo, label, path, labelled) "
                    "SELECT classifier_id, ?, label, path, labelled FROM labels WHERE photo=?", (new, old)).rowcount
                if not photo.copy_remains:
                    conn.execute("DELETE FROM labels WHERE photo=?", (old,))
        return carried

    def label_records(self, classifier_id: int) -> list[Label]:
        rows = self.query("SELECT photo, label, path FROM labels WHERE classifier_id=? ORDER BY path", (classifier_id,))
        return [Label(path_from_sql(photo), label, path_from_sql(path)) for photo, label, path in rows]

    def set_labels(self, classifier_id: int, labels: dict[str, str | None], paths: dict[str, str] | None = None) -> None:
        """Set (or, with None, remove) the label of each photo identity, in one transaction."""
        now, paths = time.time(), paths or {}
        with self.transaction() as conn:
            for photo, label in labels.items():
                if label is None:
                    conn.execute("DELETE FROM labels WHERE classifier_id=? AND photo=?", (classifier_id, sql_path(photo)))
                else:
                    conn.execute("INSERT OR REPLACE INTO labels(classifier_id, photo, label, path, labelled) "
                                 "VALUES (?, ?, ?, ?, ?)", (classifier_id, *_label_row(photo, label, paths.get(photo)),
                                                            now))

    # ---- category sets ------------------------------------------------------------------------------
    def category_set(self, name: str = CURRENT_CATEGORIES) -> str | None:
        row = self.query_one("SELECT text FROM category_sets WHERE name=?", (name,))
        return row[0] if row else None

    def save_category_set(self, text: str, name: str = CURRENT_CATEGORIES) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO category_sets(name, text, updated) VALUES (?, ?, ?)",
                         (name, text, time.time()))

    def category_set_names(self) -> list[str]:
        return [r[0] for r in self.query("SELECT name FROM category_sets WHERE name != '' ORDER BY name")]

    # ---- keep / reject decisions ---------------------------------------------------------------------
    def decisions(self) -> list[StoredDecision]:
        """Every keep/reject decision (few: only photos someone decided on)."""
        rows = self.query("SELECT photo, path, decision, decided FROM decisions ORDER BY path")
        return [StoredDecision(path_from_sql(photo), path_from_sql(path), decision, float(decided))
                for photo, path, decision, decided in rows]

    def set_decisions(self, decisions: dict[tuple[str, str], str | None]) -> int:
        """Set (or, with None, remove) the decision on each (identity, path), in one transaction.

        Setting a decision a file already has changes nothing (not even its
        time), so recording the same choice again is harmless. Returns how many
        records changed.
        """
        now, changed = time.time(), 0
        with self.transaction() as conn:
            for (photo, path), decision in decisions.items():
                key = (sql_path(photo), sql_path(path))
                if decision is None:
                    changed += conn.execute("DELETE FROM decisions WHERE photo=? AND path=?", key).rowcount
                else:
                    changed += conn.execute(
                        "INSERT INTO decisions(photo, path, decision, decided) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(photo, path) DO UPDATE SET decision=excluded.decision, decided=excluded.decided "
                        "WHERE decision != excluded.decision", (*key, decision, now)).rowcount
        return changed

    # ---- bookkeeping --------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.query_one("SELECT value FROM meta WHERE key=?", (key,))
        return row[0] if row else None

    def import_classifiers(self, classifiers: Iterable[tuple[StoredClassifier, list[Label]]], marker: str) -> int:
        """Add classifiers with their labels in one transaction, once per ``marker`` (an import from elsewhere)."""
        count = 0
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM meta WHERE key=?", (marker,)).fetchone():
                return 0
            now = time.time()
            for stored, labels in classifiers:
                if conn.execute("SELECT 1 FROM classifiers WHERE name=?", (stored.name,)).fetchone():
                    log.warning("not importing the classifier %s: the library has one of that name", stored.name)
                    continue
                cur = conn.execute(
                    "INSERT INTO classifiers(name, model_key, classes, weights, metrics, created, updated) "
                    "VALUES (?,?,?,?,?,?,?)",
                    (stored.name, stored.model_key, json.dumps(list(stored.classes)), stored.weights,
                     json.dumps(stored.metrics), now, now))
                conn.executemany("INSERT OR REPLACE INTO labels(classifier_id, photo, label, path, labelled) "
                                 "VALUES (?, ?, ?, ?, ?)",
                                 [(cur.lastrowid, *_label_row(lab.photo, lab.label, lab.path), now) for lab in labels])
                count += 1
            conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (marker, str(now)))
        return count


def _label_row(photo: str, label: str, path: str | None) -> tuple[bytes, str, bytes | None]:
    """A label's (photo, label, path) as stored: identity and path as bytes."""
    return sql_path(photo), label, None if path is None else sql_path(path)
