"""How photosort uses SQLite, once for both of its databases (the cache and the user's library).

WAL mode, so the window and a CLI run can read while one of them writes; a
generous busy timeout and ``BEGIN IMMEDIATE`` so writers queue instead of
failing with "database is locked"; one transaction per batch so an interrupted
run keeps every finished batch. ``PRAGMA user_version`` carries the schema
version and migrations are applied in order inside one transaction; a schema
newer than this code knows is opened read-only, never "downgraded".
``PRAGMA application_id`` marks photosort's own files, so another program's
database is refused instead of getting photosort's tables added to it. Every
``sqlite3`` error leaves this module as a :mod:`~photosort.core.errors` error
(:func:`~photosort.core.errors.database_error`). A connection belongs to the
thread that opened it; other threads open their own.

Damage is for SQLite to judge: a file is treated as damaged only when SQLite
itself reports SQLITE_CORRUPT or SQLITE_NOTADB, or when its header promises
more pages than the file holds, and then only if ``PRAGMA quick_check`` on it
agrees. A WAL database whose checkpoint a full disk cut short looks truncated
but is whole (the WAL holds the rest), and a full disk, a lock or a permission
problem is never damage: such a file is opened, or refused with its reason,
but never moved aside.

Nothing here opens a database file except through SQLite while this process
has a connection to it: on POSIX, closing *any* descriptor of a file drops
every lock the process holds on it, SQLite's included, and another process
(a ``photosort`` command beside the window) would then take itself for the
last user and delete the WAL the window is still writing to. The header check
below therefore runs only for the first connection a process opens to a file
(:class:`_OpenFiles`).

Paths, and keys that hold one, are stored as their bytes (:func:`sql_path`):
a name that is not UTF-8 (see :mod:`photosort.core.paths`) cannot be SQLite
text, and bytes keep every lookup, range and uniqueness exact.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import overload

from .errors import StoreDamagedError, StoreError, database_error, is_corruption, os_error

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 60.0
SQLITE_HEADER = b"SQLite format 3\x00"


# ---- how paths are stored ----------------------------------------------------------------------
def sql_path(path: str) -> bytes:
    """A path (or a key holding one) as both databases store it: its exact bytes (``os.fsencode``)."""
    return os.fsencode(path)


@overload
def path_from_sql(value: bytes | str) -> str: ...
@overload
def path_from_sql(value: None) -> None: ...
def path_from_sql(value: bytes | str | None) -> str | None:
    """The path :func:`sql_path` stored (text written before schemas stored bytes reads the same)."""
    return None if value is None else os.fsdecode(value)


def path_range(root: str) -> tuple[bytes, bytes]:
    """Bounds such that ``lo <= path < hi`` selects exactly the stored paths under ``root``."""
    prefix = sql_path(root if root.endswith(os.sep) else root + os.sep)
    return prefix, prefix[:-1] + bytes([prefix[-1] + 1])


class _OpenFiles:
    """How many connections this process has open to each database file (by real path)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: Counter[str] = Counter()

    def opening(self, path: Path) -> bool:
        """Count a connection about to open ``path``; True when the header check may read the file (no other
        connection of this process has it open, so closing our own descriptor cannot drop their locks)."""
        key = os.path.realpath(path)
        with self._lock:
            first = self._count[key] == 0
            self._count[key] += 1
            if first:
                return _header_promises_more(path)  # read under the lock: no connection opens meanwhile
        return False

    def closed(self, path: Path) -> None:
        key = os.path.realpath(path)
        with self._lock:
            self._count[key] -= 1
            if self._count[key] <= 0:
                del self._count[key]


_open_files = _OpenFiles()


class NewerSchema(Exception):
    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version


class Database:
    """One thread's connection to one of photosort's SQLite files.

    Subclasses name their ``APPLICATION_ID``, ``MIGRATIONS`` (migration N takes
    user_version N-1 to N; append, never edit) and ``KIND`` (how the user calls
    the file in messages).
    """

    APPLICATION_ID = 0
    MIGRATIONS: tuple[str, ...] = ()
    KIND = "database"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.notices: list[str] = []
        self.read_only = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(exc, f"create the folder for the {self.KIND}", self.path.parent) from None
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder, not photosort's {self.KIND}; move it away or choose "
                             "another data folder.")
        self._path_key = self.path  # counted in _open_files until close()
        promises_more = _open_files.opening(self.path)
        try:
            self._conn = self._open(promises_more)
        except BaseException:
            _open_files.closed(self._path_key)
            raise

    @property
    def schema_version(self) -> int:
        return len(self.MIGRATIONS)

    # ---- opening ------------------------------------------------------------------------------
    def _open(self, promises_more: bool) -> sqlite3.Connection:
        """Open and migrate; a newer schema is opened read-only; what SQLite judges damaged goes to :meth:`_damaged`.

        ``promises_more``: the file's header says it is longer than it is (:func:`_header_promises_more`).
        """
        verdict = self._verdict() if promises_more else None
        if verdict is None:
            try:
                return self._connect_and_migrate()
            except NewerSchema as newer:
                return self._open_read_only(newer)
            except sqlite3.DatabaseError as exc:
                verdict = self._verdict() if is_corruption(exc) else None
                if verdict is None:
                    raise database_error(exc, self.path, "open") from None
        log.warning("SQLite finds %s damaged: %s", self.path, verdict)
        return self._damaged(StoreDamagedError(f"{self.path} is damaged ({verdict})."))

    def _verdict(self) -> str | None:
        """SQLite's own judgement of the file: what is wrong with it, or None when it is sound.

        None too when SQLite cannot judge it now (busy, a full disk, no
        permission): only damage SQLite sees makes photosort doubt a file.
        """
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            try:
                rows = conn.execute("PRAGMA quick_check(1)").fetchall()
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            return str(exc) if is_corruption(exc) else None
        return None if rows == [("ok",)] else str(rows[0][0] if rows else "no answer to quick_check")

    def _damaged(self, error: StoreDamagedError) -> sqlite3.Connection:
        """What to do with a file SQLite says is damaged: by default, refuse to touch it."""
        raise StoreDamagedError(f"{error} photosort leaves it as it is: restore it from a backup, or move it "
                                "away to start a new one.")

    def _connect_and_migrate(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=True)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys=ON")
            self._check_ours(conn)
            if conn.execute("PRAGMA user_version").fetchone()[0] > self.schema_version:
                raise NewerSchema(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_ours(self, conn: sqlite3.Connection) -> None:
        """Refuse another program's database (it has tables, but not our application id)."""
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id == self.APPLICATION_ID:
            return
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id == 0 and (tables == 0 or self._is_legacy_photosort(conn)):
            return
        raise StoreError(f"{self.path} is not photosort's {self.KIND} (it belongs to another program); photosort "
                         "leaves it alone. Move it away, or choose another data folder.")

    def _is_legacy_photosort(self, conn: sqlite3.Connection) -> bool:
        """A file photosort wrote before it set its application id."""
        return False

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == self.schema_version and conn.execute("PRAGMA application_id").fetchone()[0]:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            for number in range(version + 1, self.schema_version + 1):
                log.info("migrating %s to schema %d", self.path, number)
                for statement in migration_statements(self.MIGRATIONS[number - 1]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")
            conn.execute(f"PRAGMA application_id={self.APPLICATION_ID}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn, self.path)
            raise

    def _open_read_only(self, newer: NewerSchema) -> sqlite3.Connection:
        """A newer photosort's file is left exactly as it is: we only read it."""
        self.read_only = True
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        message = (f"The {self.KIND} {self.path} was written by a newer photosort (schema {newer.version}; this one "
                   f"knows {self.schema_version}), so it is open read-only: update photosort to change it, or use "
                   "another data folder.")
        log.warning(message)
        self.notices.append(message)
        return conn

    # ---- using ------------------------------------------------------------------------------------
    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            if self._path_key is not None:
                _open_files.closed(self._path_key)
                self._path_key = None

    def __enter__(self):  # returns the subclass
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def data_version(self) -> int:
        """A number that changes when another connection (another thread, a ``photosort`` command) commits to this
        file: how a window notices what was changed beside it, without reading anything else."""
        return int(self.query_one("PRAGMA data_version")[0])

    def query(self, sql: str, parameters: tuple | list = ()) -> list[tuple]:
        """All rows of a read; a SQLite failure becomes a photosort error."""
        try:
            return self._conn.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise database_error(exc, self.path, "read") from None

    def query_one(self, sql: str, parameters: tuple | list = ()) -> tuple | None:
        rows = self.query(sql, parameters)
        return rows[0] if rows else None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; takes the write lock up front so concurrent writers queue."""
        if self.read_only:
            raise StoreError(self.notices[-1] if self.notices else f"The {self.KIND} {self.path} is read-only.")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise database_error(exc, self.path, "write") from None
        try:
            yield self._conn
        except sqlite3.Error as exc:
            self._rollback()
            raise database_error(exc, self.path, "write") from None
        except BaseException:
            self._rollback()
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise database_error(exc, self.path, "write") from None

    def _rollback(self) -> None:
        _rollback(self._conn, self.path)

    def integrity_ok(self) -> bool:
        return self.query("PRAGMA integrity_check")[0][0] == "ok"

    def checkpoint(self) -> None:
        """Fold the WAL into the main file (before the file is renamed or copied)."""
        self.query("PRAGMA wal_checkpoint(TRUNCATE)")


def migration_statements(script: str) -> Iterator[str]:
    """The statements of a migration script one by one (``executescript`` would commit the transaction).

    Split where SQLite says a statement is complete, so a trigger keeps the
    semicolons of its body.
    """
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                yield pending
            pending = ""
    if pending.strip(" \t\n;"):
        yield pending


def _rollback(conn: sqlite3.Connection, path: Path) -> None:
    """Roll back if a transaction is open; SQLite may have rolled back already (a full disk does)."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        log.debug("rollback of %s: %s", path, exc)


def _header_promises_more(path: Path) -> bool:
    """The file is shorter than its header says (a cut-off copy, or a checkpoint a full disk interrupted).

    Only a reason to ask SQLite (:meth:`Database._verdict`), never a verdict:
    in WAL mode the rest of the pages may be in the WAL, and then the file is whole.
    """
    try:
        with open(path, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False  # missing, or unreadable: SQLite will say so when it opens it
    if len(header) < 100 or not header.startswith(SQLITE_HEADER):
        return False  # not SQLite's (or empty): SQLite itself says so with SQLITE_NOTADB
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    size_is_valid = header[24:28] == header[92:96]
    return bool(size_is_valid and pages and size < pages * page_size)
