"""The SQLite cache: photos, embeddings, thumbnails, failures, heads, labels, settings.

One database per user (``photosort.db`` in the app-data folder). WAL mode so
the GUI and a CLI run can read while one of them writes; a generous busy
timeout and ``BEGIN IMMEDIATE`` so writers queue instead of failing with
"database is locked"; one transaction per batch so an interrupted run keeps
every finished batch. ``PRAGMA user_version`` carries the schema version;
a newer schema than this code knows is refused (never "downgraded"), and a
file that is not a database is moved aside, never deleted.

Embeddings are stored as float16 unit vectors (1 KB for ViT-B/32) keyed by
model identity, so vectors of different models never mix. A connection
belongs to the thread that opened it; other threads open their own.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CacheError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0

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

# Migration N takes a database at user_version N-1 to N. Append, never edit.
MIGRATIONS: list[str] = [_SCHEMA_V1]
assert len(MIGRATIONS) == SCHEMA_VERSION


class NewerSchema(Exception):
    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version


@dataclass(frozen=True)
class PhotoRecord:
    id: int
    path: str
    size: int
    mtime_ns: int
    fingerprint: str | None
    error: str | None
    has_embedding: bool


@dataclass(frozen=True)
class NewPhoto:
    """What the indexer writes for one decoded photo."""

    path: str
    size: int
    mtime_ns: int
    fingerprint: str
    width: int
    height: int
    thumb: bytes
    vector: np.ndarray


@dataclass(frozen=True)
class EmbeddingSet:
    """The cached vectors of one folder for one model, in path order."""

    ids: np.ndarray  # int64, N
    paths: list[str]
    vectors: np.ndarray  # float32, N x dim, unit length

    def __len__(self) -> int:
        return len(self.paths)

    def index_of(self) -> dict[int, int]:
        return {int(pid): i for i, pid in enumerate(self.ids)}


def path_range(root: str) -> tuple[str, str]:
    """Bounds such that ``lo <= path < hi`` selects exactly the paths under ``root``."""
    prefix = root if root.endswith(os.sep) else root + os.sep
    return prefix, prefix[:-1] + chr(ord(os.sep) + 1)


class Cache:
    """One thread's connection to the cache database."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.notices: list[str] = []
        self.read_only = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"Cannot create the cache folder {self.path.parent}: {exc.strerror}. "
                             "Choose another with --cache-dir.") from None
        try:
            self._conn = self._open_and_migrate()
        except NewerSchema as newer:
            self._open_read_only(newer)
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise CacheError(f"Cannot open the cache {self.path}: {exc}. "
                                 "Check the folder's permissions and free space, or use --cache-dir.") from None
            self._move_aside(exc)
            self._conn = self._open_and_migrate()

    # ---- connection management -------------------------------------------------
    def _open_and_migrate(self) -> sqlite3.Connection:
        if self.read_only:
            uri = f"{self.path.resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            return conn
        _check_not_truncated(self.path)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise NewerSchema(version)
        if version == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            for number in range(version + 1, SCHEMA_VERSION + 1):
                log.info("migrating cache %s to schema %d", self.path, number)
                for statement in MIGRATIONS[number - 1].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _open_read_only(self, newer: NewerSchema) -> None:
        """A newer photosort's cache is left exactly as it is: we only read it."""
        self.read_only = True
        self._conn = self._open_and_migrate()
        message = (f"The cache {self.path} was written by a newer photosort (schema {newer.version}; this one knows "
                   f"{SCHEMA_VERSION}), so it is open read-only: update photosort to index new photos, or use "
                   "another cache folder with --cache-dir.")
        log.warning(message)
        self.notices.append(message)

    def _move_aside(self, exc: BaseException) -> None:
        """Keep a damaged cache file for inspection and start a new one; never delete it."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                src.rename(Path(str(aside) + suffix))
        message = (f"The cache was damaged ({exc}); it was moved aside to {aside} and a new one was started. "
                   "Photos will be indexed again.")
        log.warning(message)
        self.notices.append(message)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; takes the write lock up front so concurrent writers queue."""
        if self.read_only:
            raise CacheError(self.notices[-1] if self.notices else f"The cache {self.path} is read-only.")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def integrity_ok(self) -> bool:
        return self._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # ---- models ----------------------------------------------------------------
    def model_id(self, key: str, dim: int) -> int:
        row = self._conn.execute("SELECT id FROM models WHERE key=?", (key,)).fetchone()
        if row:
            return int(row[0])
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO models(key, dim) VALUES (?, ?)", (key, dim))
        return int(self._conn.execute("SELECT id FROM models WHERE key=?", (key,)).fetchone()[0])

    # ---- photos ----------------------------------------------------------------
    def photos_under(self, root: str, model_id: int | None = None) -> dict[str, PhotoRecord]:
        lo, hi = path_range(root)
        rows = self._conn.execute(
            "SELECT p.id, p.path, p.size, p.mtime_ns, p.fingerprint, p.error, "
            "EXISTS(SELECT 1 FROM embeddings e WHERE e.photo_id=p.id AND e.model_id=?) "
            "FROM photos p WHERE p.path >= ? AND p.path < ?",
            (model_id if model_id is not None else -1, lo, hi),
        )
        return {r[1]: PhotoRecord(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows}

    def write_indexed(self, model_id: int, photos: list[NewPhoto], failures: list[tuple[str, int, int, str]]) -> list[int]:
        """Store one batch of embedded photos and failures in a single transaction; return photo ids."""
        now = time.time()
        ids: list[int] = []
        with self.transaction() as conn:
            for p in photos:
                photo_id = self._upsert_photo(conn, p.path, p.size, p.mtime_ns, p.fingerprint, p.width, p.height, None, now)
                conn.execute("INSERT OR REPLACE INTO thumbs(photo_id, jpeg) VALUES (?, ?)", (photo_id, p.thumb))
                conn.execute(
                    "INSERT OR REPLACE INTO embeddings(model_id, photo_id, vector) VALUES (?, ?, ?)",
                    (model_id, photo_id, p.vector.astype(np.float16).tobytes()),
                )
                ids.append(photo_id)
            for path, size, mtime_ns, reason in failures:
                photo_id = self._upsert_photo(conn, path, size, mtime_ns, None, None, None, reason, now)
                conn.execute("DELETE FROM embeddings WHERE photo_id=?", (photo_id,))
                conn.execute("DELETE FROM thumbs WHERE photo_id=?", (photo_id,))
        return ids

    @staticmethod
    def _upsert_photo(conn: sqlite3.Connection, path: str, size: int, mtime_ns: int, fingerprint: str | None,
                      width: int | None, height: int | None, error: str | None, now: float) -> int:
        row = conn.execute("SELECT id FROM photos WHERE path=?", (path,)).fetchone()
        if row is None and fingerprint is not None:
            row = Cache._moved_here(conn, path, size, fingerprint)
        if row:
            conn.execute(
                "UPDATE photos SET size=?, mtime_ns=?, fingerprint=?, width=?, height=?, error=? WHERE id=?",
                (size, mtime_ns, fingerprint, width, height, error, row[0]),
            )
            if error is None:
                # The content changed: vectors of every model are stale now.
                conn.execute("DELETE FROM embeddings WHERE photo_id=?", (row[0],))
            return int(row[0])
        cur = conn.execute(
            "INSERT INTO photos(path, size, mtime_ns, fingerprint, width, height, error, added) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (path, size, mtime_ns, fingerprint, width, height, error, now),
        )
        return int(cur.lastrowid)

    @staticmethod
    def _moved_here(conn: sqlite3.Connection, path: str, size: int, fingerprint: str) -> tuple[int] | None:
        """A known photo with the same content whose old path is gone was moved here: keep its id and labels.

        This is how a photo moved by a file manager (or by undoing a move export)
        keeps its labels, wherever it went. A photo that still exists at its old
        path is a copy, and a copy is a photo of its own.
        """
        for photo_id, old_path in conn.execute(
            "SELECT id, path FROM photos WHERE fingerprint=? AND size=? AND error IS NULL", (fingerprint, size)
        ).fetchall():
            if not os.path.lexists(old_path):
                conn.execute("UPDATE photos SET path=? WHERE id=?", (path, photo_id))
                log.info("%s is %s moved; keeping its labels", path, old_path)
                return (int(photo_id),)
        return None

    def repoint(self, moves: Iterable[tuple[str, str]]) -> int:
        """Record that photos now live elsewhere (a move export), keeping their ids, vectors and labels."""
        count = 0
        with self.transaction() as conn:
            for old, new in moves:
                if conn.execute("SELECT 1 FROM photos WHERE path=?", (new,)).fetchone():
                    continue  # something is already known there; never merge two photos
                count += conn.execute("UPDATE photos SET path=? WHERE path=?", (new, old)).rowcount
        return count

    def move_photo(self, photo_id: int, new_path: str, size: int, mtime_ns: int) -> None:
        """A renamed photo keeps its id, and with it its embeddings, thumbnail and labels."""
        with self.transaction() as conn:
            conn.execute("UPDATE photos SET path=?, size=?, mtime_ns=? WHERE id=?", (new_path, size, mtime_ns, photo_id))

    def delete_photos(self, ids: Iterable[int]) -> int:
        ids = list(ids)
        with self.transaction() as conn:
            conn.executemany("DELETE FROM photos WHERE id=?", [(i,) for i in ids])
        return len(ids)

    def failures_under(self, root: str) -> list[tuple[str, str]]:
        lo, hi = path_range(root)
        rows = self._conn.execute(
            "SELECT path, error FROM photos WHERE path >= ? AND path < ? AND error IS NOT NULL ORDER BY path", (lo, hi)
        )
        return [(r[0], r[1]) for r in rows]

    def photo_id_for_path(self, path: str) -> int | None:
        row = self._conn.execute("SELECT id FROM photos WHERE path=?", (path,)).fetchone()
        return int(row[0]) if row else None

    def paths_for_ids(self, ids: Iterable[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for chunk in _chunks(list(ids), 900):
            marks = ",".join("?" * len(chunk))
            out.update(self._conn.execute(f"SELECT id, path FROM photos WHERE id IN ({marks})", chunk).fetchall())
        return out

    # ---- embeddings and thumbnails ----------------------------------------------
    def load_embeddings(self, root: str, model_id: int, dim: int) -> EmbeddingSet:
        """Every cached vector under ``root`` for one model, in path order, in one query."""
        lo, hi = path_range(root)
        rows = self._conn.execute(
            "SELECT p.id, p.path, e.vector FROM photos p JOIN embeddings e ON e.photo_id = p.id "
            "WHERE e.model_id=? AND p.path >= ? AND p.path < ? ORDER BY p.path",
            (model_id, lo, hi),
        ).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        paths = [r[1] for r in rows]
        blob = b"".join(r[2] for r in rows)
        vectors = np.frombuffer(blob, dtype=np.float16).reshape(len(rows), dim).astype(np.float32)
        return EmbeddingSet(ids, paths, vectors)

    def vectors_for_ids(self, model_id: int, ids: list[int], dim: int) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        for chunk in _chunks(ids, 900):
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT photo_id, vector FROM embeddings WHERE model_id=? AND photo_id IN ({marks})", (model_id, *chunk)
            )
            out.update({pid: np.frombuffer(v, dtype=np.float16).reshape(dim).astype(np.float32) for pid, v in rows})
        return out

    def thumbnail(self, photo_id: int) -> bytes | None:
        row = self._conn.execute("SELECT jpeg FROM thumbs WHERE photo_id=?", (photo_id,)).fetchone()
        return bytes(row[0]) if row else None

    def thumbnails(self, ids: list[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        for chunk in _chunks(ids, 900):
            marks = ",".join("?" * len(chunk))
            out.update(self._conn.execute(f"SELECT photo_id, jpeg FROM thumbs WHERE photo_id IN ({marks})", chunk))
        return out

    def text_vectors(self, model_id: int, texts: list[str], dim: int) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for chunk in _chunks(texts, 900):
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
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

    # ---- heads and labels ---------------------------------------------------------
    def head_row(self, name: str) -> tuple[int, str, list[str], bytes | None, dict] | None:
        row = self._conn.execute(
            "SELECT id, model_key, classes, weights, metrics FROM heads WHERE name=?", (name,)
        ).fetchone()
        if not row:
            return None
        return int(row[0]), row[1], json.loads(row[2]), row[3], json.loads(row[4] or "{}")

    def head_names(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT name FROM heads ORDER BY name COLLATE NOCASE")]

    def save_head(self, name: str, model_key: str, classes: list[str], weights: bytes | None, metrics: dict) -> int:
        now = time.time()
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM heads WHERE name=?", (name,)).fetchone()
            if row:
                conn.execute(
                    "UPDATE heads SET name=?, model_key=?, classes=?, weights=?, metrics=?, updated=? WHERE id=?",
                    (name, model_key, json.dumps(classes), weights, json.dumps(metrics), now, row[0]),
                )
                return int(row[0])
            cur = conn.execute(
                "INSERT INTO heads(name, model_key, classes, weights, metrics, created, updated) VALUES (?,?,?,?,?,?,?)",
                (name, model_key, json.dumps(classes), weights, json.dumps(metrics), now, now),
            )
            return int(cur.lastrowid)

    def rename_head(self, old: str, new: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE heads SET name=?, updated=? WHERE name=?", (new, time.time(), old))

    def delete_head(self, name: str) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM heads WHERE name=?", (name,))

    def labels(self, head_id: int) -> dict[int, str]:
        return dict(self._conn.execute("SELECT photo_id, label FROM labels WHERE head_id=?", (head_id,)).fetchall())

    def set_labels(self, head_id: int, labels: dict[int, str | None]) -> None:
        """Set (or, with None, remove) the label of each photo for one head."""
        with self.transaction() as conn:
            for photo_id, label in labels.items():
                if label is None:
                    conn.execute("DELETE FROM labels WHERE head_id=? AND photo_id=?", (head_id, photo_id))
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO labels(head_id, photo_id, label) VALUES (?, ?, ?)",
                        (head_id, photo_id, label),
                    )

    # ---- settings -------------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        row = self._conn.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", (key, value))


def _check_not_truncated(path: Path) -> None:
    """A database file shorter than its header says it is was cut off (a failed copy, a full disk)."""
    try:
        with open(path, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        return
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        if size:
            raise sqlite3.DatabaseError("file is not a database")
        return
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    change_counter_matches = header[24:28] == header[92:96]
    if change_counter_matches and pages and size < pages * page_size:
        raise sqlite3.DatabaseError(f"database disk image is malformed (truncated to {size} of {pages * page_size} bytes)")


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """True for a file that is not (or no longer) a database, as opposed to a busy or unreadable one."""
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text
