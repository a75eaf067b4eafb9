"""The cache: derived data only (photos seen, embeddings, thumbnails, unreadable-photo records).

``cache.db`` in the data folder holds nothing a user made: everything in it is
rebuilt by indexing, so it may be cleared at any time, and a damaged cache is
moved aside (never deleted) and started anew. The user's classifiers, labels
and category sets live in ``library.db`` (:mod:`photosort.core.userdata`).
SQLite is used as :mod:`photosort.core.database` describes.

Embeddings are stored as float16 unit vectors (1 KB for ViT-B/32) keyed by
model identity, so vectors of different models never mix. A photo's identity
for everything the user attaches to it is its content fingerprint
(:func:`photosort.core.decode.fingerprint`), stored here beside its path.
Paths are stored as their bytes (:func:`photosort.core.database.sql_path`),
so a photo whose name is not UTF-8 is indexed like any other.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .capture import NO_FACTS, CaptureFacts, PhotoDate
from .database import Database, path_from_sql, path_range, sql_path
from .errors import CacheError, StoreDamagedError, database_error, os_error
from .paths import printable

log = logging.getLogger(__name__)

APPLICATION_ID = 0x50534341  # "PSCA"

_SCHEMA_V1 = """
CREATE TABLE photos (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    fingerprint TEXT,
    width INTEGER,
    height INTEGER,
    error TEXT,
    added REAL NOT NULL
);
CREATE INDEX photos_fingerprint ON photos(fingerprint);
CREATE TABLE thumbs (photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE, jpeg BLOB NOT NULL);
CREATE TABLE models (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, dim INTEGER NOT NULL);
CREATE TABLE embeddings (
    model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    vector BLOB NOT NULL,
    PRIMARY KEY (model_id, photo_id)
);
CREATE INDEX embeddings_photo ON embeddings(photo_id);
CREATE TABLE text_vectors (
    model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    text TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model_id, text)
);
CREATE TABLE heads (
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
    head_id INTEGER NOT NULL REFERENCES heads(id) ON DELETE CASCADE,
    photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    PRIMARY KEY (head_id, photo_id)
);
CREATE INDEX labels_photo ON labels(photo_id);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Version 2: user data moved to library.db (photosort.core.legacy copies it there before this runs).
_SCHEMA_V2 = """
DROP INDEX labels_photo;
DROP TABLE labels;
DROP TABLE heads;
"""

# Version 3: photos.path holds each path's bytes (sql_path), so names that are not UTF-8 fit. The column keeps
# its declared type (rebuilding the table would cascade-delete every vector); a BLOB in it stays a BLOB.
_SCHEMA_V3 = """
UPDATE photos SET path = CAST(path AS BLOB) WHERE typeof(path) = 'text';
"""

# Version 4: when and with what each photo was taken (photosort.core.capture). Photos cached before have
# facts_read = 0 and get their facts from the next indexing run (a header read, no decode, no re-embedding).
_SCHEMA_V4 = """
ALTER TABLE photos ADD COLUMN taken TEXT;
ALTER TABLE photos ADD COLUMN camera TEXT;
ALTER TABLE photos ADD COLUMN facts_read INTEGER NOT NULL DEFAULT 0;
"""

# Version 5: what each photo looks like at a glance, for finding near-duplicates (photosort.core.perceptual,
# photosort.core.keeper): the DCT signature of its thumbnail and its focus measured on the original. Derived
# from the thumbnail and the file, so any write of the thumbnail (a changed file indexed again) forgets them.
_SCHEMA_V5 = """
CREATE TABLE looks (
    photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
    signature BLOB,
    focus BLOB
);
CREATE TRIGGER looks_thumb_added AFTER INSERT ON thumbs BEGIN DELETE FROM looks WHERE photo_id = NEW.photo_id; END;
CREATE TRIGGER looks_thumb_changed AFTER UPDATE ON thumbs BEGIN DELETE FROM looks WHERE photo_id = OLD.photo_id; END;
CREATE TRIGGER looks_thumb_removed AFTER DELETE ON thumbs BEGIN DELETE FROM looks WHERE photo_id = OLD.photo_id; END;
"""

SCHEMA_VERSION = 5


@dataclass(frozen=True)
class PhotoRecord:
    id: int
    path: str
    size: int
    mtime_ns: int
    fingerprint: str | None
    error: str | None
    has_embedding: bool  # a vector for the model asked about
    has_thumb: bool = False  # browsable: a thumbnail and capture facts, with or without vectors


@dataclass(frozen=True)
class NewPhoto:
    """What the indexer writes for one decoded photo; ``vector`` None: no model yet (browsable, not sortable)."""

    path: str
    size: int
    mtime_ns: int
    fingerprint: str
    width: int
    height: int
    thumb: bytes
    vector: np.ndarray | None
    facts: CaptureFacts = NO_FACTS


@dataclass(frozen=True)
class EmbeddingSet:
    """The cached vectors of one folder for one model, in path order."""

    ids: np.ndarray  # int64, N
    paths: list[str]
    vectors: np.ndarray  # float32, N x dim, unit length
    keys: list[str] = field(default_factory=list)  # each photo's identity (content fingerprint), parallel to ids

    def __len__(self) -> int:
        return len(self.paths)

    def index_of(self) -> dict[int, int]:
        return {int(pid): i for i, pid in enumerate(self.ids)}


@dataclass(frozen=True)
class PhotoList:
    """Photos that can be shown (thumbnail, capture facts) but have no vector for the model in use: not analysed
    yet, because the model is not on this computer or indexing has not reached them. Path order."""

    ids: np.ndarray  # int64, N
    paths: list[str]

    def __len__(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class Rewritten:
    """A photo whose file now holds other content at the same place: its identity before and after."""

    old: str
    new: str
    copy_remains: bool  # another indexed photo still holds the old content (a copy elsewhere)


def photo_identity(fingerprint: str | None, path: str) -> str:
    """What labels are keyed by: the content fingerprint (a photo cached before it had one: its path)."""
    return fingerprint or f"path:{path}"


class Cache(Database):
    """One thread's connection to the cache database."""

    APPLICATION_ID = APPLICATION_ID
    MIGRATIONS = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3, _SCHEMA_V4, _SCHEMA_V5)
    KIND = "cache"

    def _is_legacy_photosort(self, conn: sqlite3.Connection) -> bool:
        """photosort 0.1's single-file database (no application id yet) is ours."""
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return {"photos", "embeddings", "models"} <= names

    def _damaged(self, error: StoreDamagedError) -> sqlite3.Connection:
        """SQLite found the cache damaged; it holds only derived data: keep it for inspection, start a new one."""
        aside = self._aside_name()
        try:
            for suffix in ("", "-wal", "-shm"):
                src = Path(str(self.path) + suffix)
                if src.exists():
                    src.rename(Path(str(aside) + suffix))
        except OSError as exc:
            raise os_error(exc, "move the damaged cache aside", self.path) from None
        message = (f"The cache was damaged ({error}); it was moved aside to {aside} and a new one was started. "
                   "Photos will be indexed again; your classifiers and labels are kept.")
        log.warning(message)
        self.notices.append(message)
        try:
            return self._connect_and_migrate()
        except sqlite3.DatabaseError as exc:
            raise database_error(exc, self.path, "create") from None

    def _aside_name(self) -> Path:
        """A name no earlier damaged cache has (moving aside never replaces anything)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for number in range(1, 1000):
            aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}" + (f"-{number}" if number > 1 else ""))
            if not any(Path(str(aside) + suffix).exists() for suffix in ("", "-wal", "-shm")):
                return aside
        raise CacheError(f"Too many damaged caches beside {self.path}; delete some of them.")

    # ---- models ----------------------------------------------------------------
    def model_id(self, key: str, dim: int) -> int:
        row = self.query_one("SELECT id FROM models WHERE key=?", (key,))
        if row:
            return int(row[0])
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO models(key, dim) VALUES (?, ?)", (key, dim))
        return int(self.query_one("SELECT id FROM models WHERE key=?", (key,))[0])

    # ---- photos ----------------------------------------------------------------
    def photos_under(self, root: str, model_id: int | None = None) -> dict[str, PhotoRecord]:
        """Every photo known under ``root``; ``has_embedding`` for ``model_id`` (None: an unknown model, none has)."""
        lo, hi = path_range(root)
        rows = self.query(
            "SELECT p.id, p.path, p.size, p.mtime_ns, p.fingerprint, p.error, "
            "EXISTS(SELECT 1 FROM embeddings e WHERE e.photo_id=p.id AND e.model_id=?), "
            "EXISTS(SELECT 1 FROM thumbs t WHERE t.photo_id=p.id) "
            "FROM photos p WHERE p.path >= ? AND p.path < ?",
            (model_id if model_id is not None else -1, lo, hi),
        )
        records = (PhotoRecord(r[0], path_from_sql(r[1]), r[2], r[3], r[4], r[5], bool(r[6]), bool(r[7])) for r in rows)
        return {rec.path: rec for rec in records}

    def write_indexed(self, model_id: int | None, photos: list[NewPhoto],
                      failures: list[tuple[str, int, int, str]]) -> list[int]:
        """Store one batch of decoded photos and failures in a single transaction; return photo ids.

        A photo without a vector (no model yet: ``model_id`` None) gets its row, thumbnail and capture facts, so it
        can be browsed; its vector comes with a later run.
        """
        now = time.time()
        ids: list[int] = []
        with self.transaction() as conn:
            for p in photos:
                photo_id = self._upsert_photo(conn, p.path, p.size, p.mtime_ns, p.fingerprint, p.width, p.height, None, now,
                                              p.facts)
                conn.execute("INSERT OR REPLACE INTO thumbs(photo_id, jpeg) VALUES (?, ?)", (photo_id, p.thumb))
                if p.vector is not None and model_id is not None:
                    conn.execute(
                        "INSERT OR REPLACE INTO embeddings(model_id, photo_id, vector) VALUES (?, ?, ?)",
                        (model_id, photo_id, p.vector.astype(np.float16).tobytes()),
                    )
                ids.append(photo_id)
            for path, size, mtime_ns, reason in failures:
                photo_id = self._upsert_photo(conn, path, size, mtime_ns, None, None, None, printable(reason), now)
                conn.execute("DELETE FROM embeddings WHERE photo_id=?", (photo_id,))
                conn.execute("DELETE FROM thumbs WHERE photo_id=?", (photo_id,))
        return ids

    def replaced_contents(self, photos: Sequence[NewPhoto]) -> list[Rewritten]:
        """The photos of a batch whose path held other content when it was last indexed: files rewritten in place
        (an editor or photo manager saving over them, metadata written into them). One query a batch; a second
        only for each photo rewritten, which is rare."""
        fresh = {sql_path(p.path): p for p in photos if p.fingerprint is not None}
        out = []
        for chunk in _chunks(list(fresh), 900):
            marks = ",".join("?" * len(chunk))
            for stored_path, old in self.query(f"SELECT path, fingerprint FROM photos WHERE fingerprint IS NOT NULL "
                                               f"AND path IN ({marks})", chunk):
                p = fresh[stored_path]
                if old == p.fingerprint:
                    continue
                elsewhere = self.query_one("SELECT 1 FROM photos WHERE fingerprint=? AND path!=? AND error IS NULL",
                                           (old, stored_path))
                out.append(Rewritten(photo_identity(old, p.path), photo_identity(p.fingerprint, p.path),
                                     elsewhere is not None))
        return out

    @staticmethod
    def _upsert_photo(conn: sqlite3.Connection, path: str, size: int, mtime_ns: int, fingerprint: str | None,
                      width: int | None, height: int | None, error: str | None, now: float,
                      facts: CaptureFacts | None = None) -> int:
        """Insert or update one photo's row; ``facts`` (None: a failure, which reads none) are stored with it."""
        row = conn.execute("SELECT id, fingerprint FROM photos WHERE path=?", (sql_path(path),)).fetchone()
        if row is None and fingerprint is not None:
            row = Cache._moved_here(conn, path, size, fingerprint)
        if row:
            conn.execute(
                "UPDATE photos SET size=?, mtime_ns=?, fingerprint=?, width=?, height=?, error=? WHERE id=?",
                (size, mtime_ns, fingerprint, width, height, error, row[0]),
            )
            if error is None and (row[1] is None or row[1] != fingerprint):
                # The content changed: vectors of every model are stale now. (The same content decoded again,
                # for another model or after browsing without one, keeps the vectors other models made.)
                conn.execute("DELETE FROM embeddings WHERE photo_id=?", (row[0],))
            if facts is not None:
                conn.execute("UPDATE photos SET taken=?, camera=?, facts_read=1 WHERE id=?",
                             (facts.taken, facts.camera, row[0]))
            return int(row[0])
        read = facts is not None
        cur = conn.execute(
            "INSERT INTO photos(path, size, mtime_ns, fingerprint, width, height, error, added, taken, camera, facts_read) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (sql_path(path), size, mtime_ns, fingerprint, width, height, error, now,
             facts.taken if read else None, facts.camera if read else None, int(read)),
        )
        return int(cur.lastrowid)

    @staticmethod
    def _moved_here(conn: sqlite3.Connection, path: str, size: int, fingerprint: str) -> tuple[int, str] | None:
        """A known photo with the same content whose old path is gone was moved here: keep its id and vectors.

        This is how a photo moved by a file manager (or by undoing a move export)
        is not embedded again. A photo that still exists at its old path is a
        copy, and a copy is a row of its own (with the same identity).
        """
        for photo_id, stored in conn.execute(
            "SELECT id, path FROM photos WHERE fingerprint=? AND size=? AND error IS NULL", (fingerprint, size)
        ).fetchall():
            old_path = path_from_sql(stored)
            if not os.path.lexists(old_path):
                conn.execute("UPDATE photos SET path=? WHERE id=?", (sql_path(path), photo_id))
                log.info("%s is %s moved; keeping its labels", path, old_path)
                return int(photo_id), fingerprint
        return None

    def photos_without_facts(self, root: str) -> list[tuple[int, str]]:
        """Readable photos under ``root`` cached before capture facts were kept: (id, path)."""
        lo, hi = path_range(root)
        rows = self.query("SELECT id, path FROM photos WHERE facts_read=0 AND error IS NULL AND path >= ? AND path < ?",
                          (lo, hi))
        return [(int(r[0]), path_from_sql(r[1])) for r in rows]

    def store_facts(self, facts: dict[int, CaptureFacts]) -> None:
        """Record the capture facts read for already cached photos (one transaction)."""
        with self.transaction() as conn:
            conn.executemany("UPDATE photos SET taken=?, camera=?, facts_read=1 WHERE id=?",
                             [(f.taken, f.camera, photo_id) for photo_id, f in facts.items()])

    def dates_for_ids(self, ids: Iterable[int]) -> dict[int, PhotoDate]:
        """When each photo was taken (EXIF, with the file time beside it for photos that do not say)."""
        out: dict[int, PhotoDate] = {}
        for chunk in _chunks([int(i) for i in ids], 900):
            marks = ",".join("?" * len(chunk))
            for r in self.query(f"SELECT id, taken, camera, mtime_ns FROM photos WHERE id IN ({marks})", chunk):
                out[int(r[0])] = PhotoDate(CaptureFacts(r[1], r[2]), int(r[3]))
        return out

    def repoint(self, moves: Iterable[tuple[str, str]]) -> int:
        """Record that photos now live elsewhere (a move export), keeping their ids, vectors and labels."""
        count = 0
        with self.transaction() as conn:
            for old, new in moves:
                if conn.execute("SELECT 1 FROM photos WHERE path=?", (sql_path(new),)).fetchone():
                    continue  # something is already known there; never merge two photos
                count += conn.execute("UPDATE photos SET path=? WHERE path=?", (sql_path(new), sql_path(old))).rowcount
        return count

    def move_photo(self, photo_id: int, new_path: str, size: int, mtime_ns: int) -> None:
        """A renamed photo keeps its id, and with it its embeddings, thumbnail and labels."""
        with self.transaction() as conn:
            conn.execute("UPDATE photos SET path=?, size=?, mtime_ns=? WHERE id=?",
                         (sql_path(new_path), size, mtime_ns, photo_id))

    def delete_photos(self, ids: Iterable[int]) -> int:
        ids = list(ids)
        with self.transaction() as conn:
            conn.executemany("DELETE FROM photos WHERE id=?", [(i,) for i in ids])
        return len(ids)

    def failures_under(self, root: str) -> list[tuple[str, str]]:
        lo, hi = path_range(root)
        rows = self.query(
            "SELECT path, error FROM photos WHERE path >= ? AND path < ? AND error IS NOT NULL ORDER BY path", (lo, hi)
        )
        return [(path_from_sql(r[0]), r[1]) for r in rows]

    def photo_id_for_path(self, path: str) -> int | None:
        row = self.query_one("SELECT id FROM photos WHERE path=?", (sql_path(path),))
        return int(row[0]) if row else None

    def paths_for_ids(self, ids: Iterable[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for chunk in _chunks(list(ids), 900):
            marks = ",".join("?" * len(chunk))
            out.update((pid, path_from_sql(path)) for pid, path in
                       self.query(f"SELECT id, path FROM photos WHERE id IN ({marks})", chunk))
        return out

    def unanalysed_under(self, root: str, model_id: int | None) -> PhotoList:
        """Photos under ``root`` that can be shown but have no vector for ``model_id`` (None: an unknown model)."""
        lo, hi = path_range(root)
        rows = self.query(
            "SELECT p.id, p.path FROM photos p WHERE p.path >= ? AND p.path < ? AND p.error IS NULL "
            "AND EXISTS(SELECT 1 FROM thumbs t WHERE t.photo_id=p.id) "
            "AND NOT EXISTS(SELECT 1 FROM embeddings e WHERE e.photo_id=p.id AND e.model_id=?) ORDER BY p.path",
            (lo, hi, model_id if model_id is not None else -1),
        )
        return PhotoList(np.fromiter((r[0] for r in rows), np.int64, len(rows)), [path_from_sql(r[1]) for r in rows])

    # ---- embeddings and thumbnails ----------------------------------------------
    def load_embeddings(self, root: str, model_id: int, dim: int) -> EmbeddingSet:
        """Every cached vector under ``root`` for one model, in path order, in one query."""
        lo, hi = path_range(root)
        rows = self.query(
            "SELECT p.id, p.path, p.fingerprint, e.vector FROM photos p JOIN embeddings e ON e.photo_id = p.id "
            "WHERE e.model_id=? AND p.path >= ? AND p.path < ? ORDER BY p.path",
            (model_id, lo, hi),
        )
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        paths = [path_from_sql(r[1]) for r in rows]
        keys = [photo_identity(r[2], path) for r, path in zip(rows, paths, strict=True)]
        blob = b"".join(r[3] for r in rows)
        vectors = np.frombuffer(blob, dtype=np.float16).reshape(len(rows), dim).astype(np.float32)
        return EmbeddingSet(ids, paths, vectors, keys)

    def vectors_for_keys(self, model_id: int, keys: list[str], dim: int) -> dict[str, np.ndarray]:
        """One vector per photo identity (any path holding that content), for training on labels."""
        out: dict[str, np.ndarray] = {}
        keys = [k for k in keys if not k.startswith("path:")]  # a path identity has no fingerprint to look up
        for chunk in _chunks(keys, 900):
            marks = ",".join("?" * len(chunk))
            rows = self.query(
                "SELECT p.fingerprint, e.vector FROM photos p JOIN embeddings e ON e.photo_id = p.id "
                f"WHERE e.model_id=? AND p.fingerprint IN ({marks})", (model_id, *chunk)
            )
            out.update({k: np.frombuffer(v, dtype=np.float16).reshape(dim).astype(np.float32) for k, v in rows})
        return out

    def keys_for_ids(self, ids: Iterable[int]) -> dict[int, str]:
        """Photo id -> identity (content fingerprint) of indexed photos."""
        out: dict[int, str] = {}
        for chunk in _chunks(list(ids), 900):
            marks = ",".join("?" * len(chunk))
            out.update(self.query(f"SELECT id, fingerprint FROM photos WHERE fingerprint IS NOT NULL AND id IN ({marks})",
                                  chunk))
        return out

    def vectors_for_ids(self, model_id: int, ids: list[int], dim: int) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        for chunk in _chunks(ids, 900):
            marks = ",".join("?" * len(chunk))
            rows = self.query(
                f"SELECT photo_id, vector FROM embeddings WHERE model_id=? AND photo_id IN ({marks})", (model_id, *chunk)
            )
            out.update({pid: np.frombuffer(v, dtype=np.float16).reshape(dim).astype(np.float32) for pid, v in rows})
        return out

    def thumbnail(self, photo_id: int) -> bytes | None:
        row = self.query_one("SELECT jpeg FROM thumbs WHERE photo_id=?", (photo_id,))
        return bytes(row[0]) if row else None

    def thumbnails(self, ids: list[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        for chunk in _chunks(ids, 900):
            marks = ",".join("?" * len(chunk))
            out.update(self.query(f"SELECT photo_id, jpeg FROM thumbs WHERE photo_id IN ({marks})", chunk))
        return out

    def text_vectors(self, model_id: int, texts: list[str], dim: int) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for chunk in _chunks(texts, 900):
            marks = ",".join("?" * len(chunk))
            rows = self.query(
                f"SELECT text, vector FROM text_vectors WHERE model_id=? AND text IN ({marks})", (model_id, *chunk)
            )
            out.update({t: np.frombuffer(v, dtype=np.float32).reshape(dim) for t, v in rows})
        return out

    def store_text_vectors(self, model_id: int, vectors: dict[str, np.ndarray]) -> None:
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO text_vectors(model_id, text, vector) VALUES (?, ?, ?)",
                [(model_id, t, v.astype(np.float32).tobytes()) for t, v in vectors.items()],
            )

    # ---- looks: perceptual signatures and focus (near-duplicates) --------------------------------
    def signatures_for_ids(self, ids: Iterable[int]) -> dict[int, bytes]:
        """The cached thumbnail signatures (photosort.core.perceptual) of these photos, where computed."""
        out: dict[int, bytes] = {}
        for chunk in _chunks(list(ids), 900):
            marks = ",".join("?" * len(chunk))
            out.update(self.query(f"SELECT photo_id, signature FROM looks WHERE signature IS NOT NULL "
                                  f"AND photo_id IN ({marks})", chunk))
        return out

    def store_signatures(self, signatures: dict[int, bytes]) -> None:
        """Remember thumbnail signatures (one transaction); photos gone meanwhile are skipped."""
        with self.transaction() as conn:
            conn.executemany("INSERT INTO looks(photo_id, signature) SELECT ?, ? WHERE EXISTS "
                             "(SELECT 1 FROM thumbs WHERE photo_id=?) "
                             "ON CONFLICT(photo_id) DO UPDATE SET signature=excluded.signature",
                             [(pid, sig, pid) for pid, sig in signatures.items()])

    def focus_for_ids(self, ids: Iterable[int]) -> dict[int, bytes]:
        """The cached focus measurements (photosort.core.keeper) of these photos, where measured."""
        out: dict[int, bytes] = {}
        for chunk in _chunks(list(ids), 900):
            marks = ",".join("?" * len(chunk))
            out.update(self.query(f"SELECT photo_id, focus FROM looks WHERE focus IS NOT NULL "
                                  f"AND photo_id IN ({marks})", chunk))
        return out

    def store_focus(self, focus: dict[int, bytes]) -> None:
        """Remember focus measurements (one transaction); photos gone meanwhile are skipped."""
        with self.transaction() as conn:
            conn.executemany("INSERT INTO looks(photo_id, focus) SELECT ?, ? WHERE EXISTS "
                             "(SELECT 1 FROM thumbs WHERE photo_id=?) "
                             "ON CONFLICT(photo_id) DO UPDATE SET focus=excluded.focus",
                             [(pid, value, pid) for pid, value in focus.items()])

    def file_facts(self, ids: Iterable[int]) -> dict[int, tuple[int, int | None, int | None]]:
        """Photo id -> (file size in bytes, upright width, height) as indexed."""
        out: dict[int, tuple[int, int | None, int | None]] = {}
        for chunk in _chunks(list(ids), 900):
            marks = ",".join("?" * len(chunk))
            for r in self.query(f"SELECT id, size, width, height FROM photos WHERE id IN ({marks})", chunk):
                out[int(r[0])] = (int(r[1]), r[2], r[3])
        return out

    # ---- settings -------------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        row = self.query_one("SELECT value FROM settings WHERE key=?", (key,))
        return row[0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", (key, value))


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
