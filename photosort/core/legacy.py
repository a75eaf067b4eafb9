"""Moving a photosort 0.1 data folder apart: one ``photosort.db`` becomes ``library.db`` + ``cache.db``.

photosort 0.1 kept the user's classifiers and labels in the same file as the
derived cache. On first open this copies every classifier and label into
``library.db`` (labels re-keyed from the old photo ids to the photos' content
identity) in one transaction, then renames ``photosort.db`` to ``cache.db``,
whose next migration drops the copied tables. Losing nothing comes first:
the old file is only renamed after the copy is committed, and a second run
(or a second photosort at the same moment) finds the copy done and skips it.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path

from .cache import photo_identity
from .config import CACHE_DB, LEGACY_DB
from .errors import database_error, os_error
from .userdata import Label, StoredClassifier, UserStore

log = logging.getLogger(__name__)

MARKER = "imported:" + LEGACY_DB


def split_legacy_database(folder: Path, store: UserStore) -> int:
    """Import a 0.1 database's user data into ``store`` and rename it to the cache; returns classifiers imported."""
    legacy = folder / LEGACY_DB
    if not legacy.is_file():
        return 0
    cache = folder / CACHE_DB
    if cache.exists():
        log.warning("both %s and %s exist; leaving %s as it is", legacy, cache, legacy)
        return 0
    imported = 0
    if store.meta(MARKER) is None:
        classifiers = _read_classifiers(legacy)
        imported = store.import_classifiers(classifiers, MARKER)
        log.info("copied %d classifiers with their labels from %s into %s", imported, legacy, store.path)
    _rename_to_cache(legacy, cache)
    return imported


def _read_classifiers(legacy: Path) -> list[tuple[StoredClassifier, list[Label]]]:
    try:
        conn = sqlite3.connect(legacy, timeout=60.0)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"heads", "labels", "photos"} <= tables:
                return []
            heads = conn.execute("SELECT id, name, model_key, classes, weights, metrics FROM heads").fetchall()
            out = []
            for head_id, name, model_key, classes, weights, metrics in heads:
                rows = conn.execute(
                    "SELECT p.fingerprint, l.label, p.path FROM labels l JOIN photos p ON p.id = l.photo_id "
                    "WHERE l.head_id=?", (head_id,)).fetchall()
                labels = [Label(photo_identity(fp, path), label, path) for fp, label, path in rows]
                out.append((StoredClassifier(0, name, model_key, tuple(json.loads(classes)), weights,
                                             json.loads(metrics or "{}")), labels))
            return out
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise database_error(exc, legacy, "read the classifiers in") from None


def _rename_to_cache(legacy: Path, cache: Path) -> None:
    """Fold the WAL into the file, then rename it with its companions."""
    try:
        conn = sqlite3.connect(legacy, timeout=60.0)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise database_error(exc, legacy, "prepare") from None
    try:
        for suffix in ("-wal", "-shm"):
            companion = Path(str(legacy) + suffix)
            if companion.exists() and companion.stat().st_size == 0:
                companion.unlink()
        os.rename(legacy, cache)
    except FileNotFoundError:
        log.info("%s was renamed meanwhile (another photosort)", legacy)
    except OSError as exc:
        raise os_error(exc, "rename the old cache", legacy) from None
