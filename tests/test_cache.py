"""The cache: derived data only; WAL, schema versioning and migration, damage handling, vectors kept apart by model."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from photosort.core.cache import _SCHEMA_V1, _SCHEMA_V2, APPLICATION_ID, SCHEMA_VERSION, Cache, NewPhoto
from photosort.core.errors import StoreError


def new_photo(path: str, seed: int = 0, dim: int = 8) -> NewPhoto:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return NewPhoto(path, 10, 20, f"fp-{path}-{seed}", 4, 3, b"jpeg", v / np.linalg.norm(v))


def test_new_cache_uses_wal_and_current_schema(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.db") as cache:
        assert cache._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cache._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert cache.integrity_ok()


def test_newer_schema_is_opened_read_only_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with Cache(path) as cache:
        m = cache.model_id("m", 8)
        cache.write_indexed(m, [new_photo("/r/a.jpg", 1)], [])
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with Cache(path) as cache:
        assert cache.read_only and "newer photosort" in cache.notices[0]
        assert cache.load_embeddings("/r", cache.model_id("m", 8), 8).paths == ["/r/a.jpg"]
        with pytest.raises(StoreError, match="read-only"):
            cache.write_indexed(1, [new_photo("/r/b.jpg", 2)], [])
    assert path.read_bytes() == before


def test_truncated_cache_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    with Cache(path) as cache:
        m = cache.model_id("m", 8)
        cache.write_indexed(m, [new_photo(f"/r/{i}.jpg", i) for i in range(200)], [])
        cache._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with Cache(path) as cache:
        assert cache.notices and "moved aside" in cache.notices[0]
        assert cache.integrity_ok()
        assert cache.photos_under("/r") == {}
    assert len(list(tmp_path.glob("c.db.damaged-*"))) == 1


def test_garbage_file_is_moved_aside_and_a_new_cache_started(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(b"this is not a database at all" * 100)
    cache = Cache(path)
    assert cache.notices and "moved aside" in cache.notices[0]
    aside = list(tmp_path.glob("c.db.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    assert cache.integrity_ok()
    cache.close()


def test_vectors_of_different_models_never_mix(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.db") as cache:
        a = cache.model_id("model-a/exact", 8)
        b = cache.model_id("model-b/exact", 8)
        cache.write_indexed(a, [new_photo(f"{tmp_path}/p/1.jpg", 1)], [])
        assert len(cache.load_embeddings(f"{tmp_path}/p", a, 8)) == 1
        assert len(cache.load_embeddings(f"{tmp_path}/p", b, 8)) == 0
        rec = cache.photos_under(f"{tmp_path}/p", b)[f"{tmp_path}/p/1.jpg"]
        assert not rec.has_embedding


def test_folder_queries_do_not_leak_into_sibling_folders(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.db") as cache:
        m = cache.model_id("m", 8)
        cache.write_indexed(m, [new_photo("/x/photos/a.jpg", 1), new_photo("/x/photos2/b.jpg", 2),
                                new_photo("/x/photos/sub/c.jpg", 3)], [])
        assert sorted(cache.photos_under("/x/photos")) == ["/x/photos/a.jpg", "/x/photos/sub/c.jpg"]


def test_vectors_round_trip_as_float16(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.db") as cache:
        m = cache.model_id("m", 8)
        photo = new_photo("/r/a.jpg", 5)
        cache.write_indexed(m, [photo], [])
        loaded = cache.load_embeddings("/r", m, 8)
        assert loaded.paths == ["/r/a.jpg"]
        v = loaded.vectors[0]
        assert float(v @ photo.vector / np.linalg.norm(v)) > 0.9999
        assert cache.thumbnail(int(loaded.ids[0])) == b"jpeg"


def test_two_connections_write_concurrently_without_locking_errors(tmp_path: Path) -> None:
    import threading

    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with Cache(tmp_path / "c.db") as cache:
                m = cache.model_id("m", 8)
                for i in range(30):
                    cache.write_indexed(m, [new_photo(f"/w{n}/{i}.jpg", i)], [])
        except BaseException as exc:
            errors.append(exc)

    Cache(tmp_path / "c.db").close()
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Cache(tmp_path / "c.db") as cache:
        assert sum(len(cache.photos_under(f"/w{n}")) for n in range(3)) == 90


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


def test_the_cache_holds_derived_data_only(tmp_path: Path) -> None:
    Cache(tmp_path / "c.db").close()
    assert not {"heads", "labels", "classifiers"} & tables(tmp_path / "c.db")


def test_a_version_1_cache_is_migrated_keeping_every_vector_and_dropping_the_user_tables(tmp_path: Path) -> None:
    """photosort 0.1 wrote schema 1 with no application id; its heads and labels are copied out before this."""
    path = tmp_path / "c.db"
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_V1)
    conn.execute("PRAGMA user_version=1")
    photo = new_photo("/r/a.jpg", 3)
    conn.execute("INSERT INTO models(id, key, dim) VALUES (1, 'm', 8)")
    conn.execute("INSERT INTO photos(id, path, size, mtime_ns, fingerprint, width, height, added) "
                 "VALUES (7, ?, 10, 20, 'fp', 4, 3, 0)", (photo.path,))
    conn.execute("INSERT INTO embeddings VALUES (1, 7, ?)", (photo.vector.astype(np.float16).tobytes(),))
    conn.execute("INSERT INTO heads(id, name, model_key, classes, created, updated) VALUES (1, 'h', 'm', '[\"a\"]', 0, 0)")
    conn.execute("INSERT INTO labels VALUES (1, 7, 'a')")
    conn.commit()
    conn.close()
    with Cache(path) as cache:
        assert not cache.notices and not cache.read_only
        assert cache._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert cache._conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        loaded = cache.load_embeddings("/r", cache.model_id("m", 8), 8)
        assert list(loaded.ids) == [7] and loaded.keys == ["fp"]
        np.testing.assert_allclose(loaded.vectors[0], photo.vector, atol=1e-3)
    assert not {"heads", "labels"} & tables(path)


def test_another_programs_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.execute("INSERT INTO recipes VALUES ('soup')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not photosort's cache") as error:
        Cache(path)
    assert "\n" not in str(error.value)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["cache.db"]


def test_the_library_file_is_not_taken_for_a_cache(tmp_path: Path) -> None:
    from photosort.core.userdata import UserStore

    UserStore(tmp_path / "library.db").close()
    before = (tmp_path / "library.db").read_bytes()
    with pytest.raises(StoreError, match="not photosort's cache"):
        Cache(tmp_path / "library.db")
    assert (tmp_path / "library.db").read_bytes() == before


def test_a_folder_where_the_cache_should_be_is_refused_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "c.db").mkdir()
    with pytest.raises(StoreError, match="is a folder"):
        Cache(tmp_path / "c.db")


def test_photos_with_the_same_content_share_one_identity(tmp_path: Path) -> None:
    """Identity is the content fingerprint: a copy beside the original is a photo of its own, same identity."""
    for name in ("a.jpg", "copy of a.jpg"):
        (tmp_path / name).write_bytes(b"same bytes")
    with Cache(tmp_path / "c.db") as cache:
        m = cache.model_id("m", 8)
        original = new_photo(str(tmp_path / "a.jpg"), 1)
        copy = NewPhoto(str(tmp_path / "copy of a.jpg"), original.size, original.mtime_ns, original.fingerprint, 4, 3,
                        b"j", original.vector)
        ids = cache.write_indexed(m, [original, copy], [])
        assert len(set(ids)) == 2
        keys = cache.keys_for_ids(ids)
        assert keys[ids[0]] == keys[ids[1]] == original.fingerprint
        assert list(cache.vectors_for_keys(m, [original.fingerprint], 8)) == [original.fingerprint]


def test_a_photo_whose_old_path_is_gone_was_moved_and_keeps_its_id(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.db") as cache:
        m = cache.model_id("m", 8)
        before = new_photo(str(tmp_path / "gone.jpg"), 1)
        [photo_id] = cache.write_indexed(m, [before], [])
        (tmp_path / "here.jpg").write_bytes(b"x")
        moved = NewPhoto(str(tmp_path / "here.jpg"), before.size, before.mtime_ns, before.fingerprint, 4, 3, b"j",
                         before.vector)
        assert cache.write_indexed(m, [moved], []) == [photo_id]
        assert cache.paths_for_ids([photo_id]) == {photo_id: moved.path}


# ---- full disks, locks and damage: only SQLite says a cache is damaged --------------------------------
def wal_frames(wal: bytes) -> dict[int, bytes]:
    """The newest image of each page in a WAL file (every frame of these tests is committed)."""
    page_size = int.from_bytes(wal[8:12], "big")
    pages: dict[int, bytes] = {}
    for offset in range(32, len(wal) - 24 - page_size + 1, 24 + page_size):
        pages[int.from_bytes(wal[offset : offset + 4], "big")] = wal[offset + 24 : offset + 24 + page_size]
    return pages


def cache_left_by_a_full_disk(tmp_path: Path, photos: int) -> Path:
    """What a full disk leaves when it stops a checkpoint: page 1 (the header: "N pages") written, no room for more.

    Every committed transaction is still in the WAL, so SQLite reads the whole
    database; only the main file is shorter than its header says.
    """
    live, left = tmp_path / "live" / "cache.db", tmp_path / "left"
    left.mkdir()
    with Cache(live) as cache:  # held open, so nothing is checkpointed into the main file
        m = cache.model_id("m", 8)
        for i in range(photos):
            cache.write_indexed(m, [new_photo(f"/r/{i:03d}.jpg", i)], [])
        wal = Path(f"{live}-wal").read_bytes()
        (left / "cache.db-wal").write_bytes(wal)
    (left / "cache.db").write_bytes(wal_frames(wal)[1])
    header = (left / "cache.db").read_bytes()[:100]
    assert int.from_bytes(header[28:32], "big") > 1 and header[24:28] == header[92:96]  # "N pages", believed
    return left / "cache.db"


def test_a_wal_cache_a_full_disk_cut_short_is_opened_whole_not_moved_aside(tmp_path: Path) -> None:
    path = cache_left_by_a_full_disk(tmp_path, 40)
    with Cache(path) as cache:
        assert not cache.notices and not cache.read_only
        assert len(cache.photos_under("/r")) == 40
        assert cache.integrity_ok()
    assert not list(path.parent.glob("*damaged*"))


def test_a_full_disk_stops_a_write_with_one_line_and_keeps_every_committed_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PRAGMA max_page_count makes SQLite meet a real SQLITE_FULL, as on a disk with no room left."""
    from photosort.core.errors import DiskFullError

    path = tmp_path / "cache.db"
    with Cache(path) as cache:
        m = cache.model_id("m", 8)
        cache.write_indexed(m, [new_photo(f"/r/{i}.jpg", i) for i in range(5)], [])
    connect = sqlite3.connect

    def full_disk(*args, **kwargs):
        conn = connect(*args, **kwargs)
        conn.execute("PRAGMA max_page_count=1")  # no page more than the file has now
        return conn

    monkeypatch.setattr(sqlite3, "connect", full_disk)
    with Cache(path) as cache, pytest.raises(DiskFullError) as error:
        for i in range(5, 200):
            cache.write_indexed(m, [NewPhoto(f"/r/{i}.jpg", 10, 20, f"fp{i}", 4, 3, b"t" * 3000, new_photo("x").vector)],
                                [])
    assert "\n" not in str(error.value) and "disk is full" in str(error.value)
    monkeypatch.setattr(sqlite3, "connect", connect)
    with Cache(path) as cache:  # the next run opens the same data: nothing was taken for damage
        assert not cache.notices
        kept = cache.photos_under("/r")
        assert {f"/r/{i}.jpg" for i in range(5)} <= set(kept)
        assert cache.integrity_ok()
    assert not list(tmp_path.glob("*damaged*"))


def test_a_cache_locked_by_another_program_is_busy_not_damaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from photosort.core import database
    from photosort.core.errors import StoreBusyError

    path = tmp_path / "cache.db"
    with Cache(path) as cache:
        cache.write_indexed(cache.model_id("m", 8), [new_photo("/r/a.jpg")], [])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")  # holds every lock, as another program mid-write would
    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.0)
    try:
        with pytest.raises(StoreBusyError):
            Cache(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not list(tmp_path.glob("*damaged*"))
    with Cache(path) as cache:
        assert list(cache.photos_under("/r")) == ["/r/a.jpg"]


def test_a_failed_migration_reports_its_own_error_not_the_rollback_sqlite_already_did(tmp_path: Path) -> None:
    """A full disk makes SQLite roll back by itself; the ROLLBACK after it must not hide the real reason."""
    from photosort.core.database import Database

    class Broken(Database):
        MIGRATIONS = ("CREATE TABLE t(x); ROLLBACK; SELECT * FROM no_such_table",)  # the transaction ends early

    with pytest.raises(StoreError, match="no_such_table"):
        Broken(tmp_path / "b.db")


def test_an_io_error_on_a_disk_with_no_room_is_a_full_disk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """SQLite words some writes a full disk refused (the WAL index, a sync) as "disk I/O error"."""
    import shutil
    from types import SimpleNamespace

    from photosort.core import errors

    exc = sqlite3.OperationalError("disk I/O error")
    assert not isinstance(errors.database_error(exc, tmp_path / "cache.db"), errors.DiskFullError)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: SimpleNamespace(total=100, used=100, free=0))
    assert isinstance(errors.database_error(exc, tmp_path / "cache.db"), errors.DiskFullError)


@pytest.mark.parametrize(("code", "kind"), [(13, "DiskFullError"), (5, "StoreBusyError"), (6, "StoreBusyError"),
                                            (8, "StoreError"), (14, "StoreError"), (11, "StoreDamagedError"),
                                            (26, "StoreDamagedError")])
def test_sqlite_result_codes_decide_what_an_error_is(code: int, kind: str) -> None:
    """Where Python gives SQLite's result code, it decides (a message that merely mentions "full" does not)."""
    from photosort.core import errors

    exc = sqlite3.OperationalError("some words: full, locked, malformed")
    exc.sqlite_errorcode = code
    assert type(errors.database_error(exc, "/data/cache.db")).__name__ == kind
    assert errors.is_corruption(exc) == (kind == "StoreDamagedError")


# ---- paths that are not UTF-8 ----------------------------------------------------------------------
ODD = os.fsdecode(b"/r/caf\xe9.jpg")  # a Latin-1 name: not UTF-8, so not SQLite text


def odd_photo(path: str, seed: int) -> NewPhoto:
    photo = new_photo("x", seed)
    return NewPhoto(path, photo.size, photo.mtime_ns, f"{seed:032x}", 4, 3, b"jpeg", photo.vector)


def test_a_path_that_is_not_utf8_is_stored_and_found_exactly(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.db") as cache:
        m = cache.model_id("m", 8)
        [photo_id] = cache.write_indexed(m, [odd_photo(ODD, 1)], [(os.fsdecode(b"/r/bad\xff.jpg"), 1, 2, "broken")])
        assert cache.write_indexed(m, [odd_photo(ODD, 2)], []) == [photo_id]  # the same photo, not a second row
        assert cache.photo_id_for_path(ODD) == photo_id and cache.photo_id_for_path("/r/café.jpg") is None
        assert sorted(os.fsencode(p) for p in cache.photos_under("/r")) == [b"/r/bad\xff.jpg", b"/r/caf\xe9.jpg"]
        assert cache.load_embeddings("/r", m, 8).paths == [ODD]
        assert cache.failures_under("/r") == [(os.fsdecode(b"/r/bad\xff.jpg"), "broken")]
        assert cache.photos_under(os.fsdecode(b"/r/caf\xe9")) == {}  # a folder is a prefix of whole names only
        assert cache.repoint([(ODD, "/s/moved.jpg")]) == 1 and cache.paths_for_ids([photo_id]) == {photo_id: "/s/moved.jpg"}


def test_a_reason_naming_an_undecodable_path_is_stored_readably(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.db") as cache:
        cache.write_indexed(cache.model_id("m", 8), [], [(ODD, 1, 2, f"cannot read {ODD}")])
        assert cache.failures_under("/r") == [(ODD, "cannot read /r/caf\\xe9.jpg")]


def test_a_version_2_cache_is_migrated_keeping_every_photo_findable_by_its_path(tmp_path: Path) -> None:
    """Schema 3 stores paths as bytes; a cache written by schema 2 (paths as text) keeps every photo and vector."""
    path = tmp_path / "c.db"
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_V1 + _SCHEMA_V2)
    conn.execute("PRAGMA user_version=2")
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute("INSERT INTO models(id, key, dim) VALUES (1, 'm', 8)")
    photos = [new_photo(p, i) for i, p in enumerate(["/r/a.jpg", "/r/café.jpg", "/r/sub/b.jpg", "/other/c.jpg"])]
    for i, photo in enumerate(photos, start=1):
        conn.execute("INSERT INTO photos(id, path, size, mtime_ns, fingerprint, width, height, added) "
                     "VALUES (?, ?, 10, 20, ?, 4, 3, 0)", (i, photo.path, photo.fingerprint))
        conn.execute("INSERT INTO embeddings VALUES (1, ?, ?)", (i, photo.vector.astype(np.float16).tobytes()))
        conn.execute("INSERT INTO thumbs VALUES (?, ?)", (i, b"jpeg"))
    conn.commit()
    conn.close()
    with Cache(path) as cache:
        assert not cache.notices and cache._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert cache._conn.execute("SELECT DISTINCT typeof(path) FROM photos").fetchall() == [("blob",)]
        assert cache.load_embeddings("/r", 1, 8).paths == ["/r/a.jpg", "/r/café.jpg", "/r/sub/b.jpg"]
        assert cache.photo_id_for_path("/r/café.jpg") == 2 and cache.thumbnail(2) == b"jpeg"
        again = NewPhoto("/r/café.jpg", 10, 20, photos[1].fingerprint, 4, 3, b"new", photos[1].vector)
        assert cache.write_indexed(1, [again], []) == [2]  # an old row and a new write are one photo
        assert cache._conn.execute("SELECT count(*) FROM photos").fetchone()[0] == 4


def test_a_second_damaged_cache_is_moved_aside_beside_the_first_never_over_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from photosort.core import cache as cache_module

    monkeypatch.setattr(cache_module.time, "strftime", lambda _: "20240101-000000")  # both in the same second
    path = tmp_path / "c.db"
    for content in (b"first garbage " * 100, b"second garbage " * 100):
        path.write_bytes(content)
        Cache(path).close()
    kept = sorted(p.read_bytes()[:6] for p in tmp_path.glob("c.db.damaged-*"))
    assert kept == [b"first ", b"second"]



# Each database: how to write a value, and a command (another process) that opens it and prints the value back.
STORES = {
    "cache": ("photosort.core.cache", "Cache", lambda db, value: db.set_setting("k", value), "get_setting('k')"),
    "library": ("photosort.core.userdata", "UserStore", lambda db, value: db.save_category_set(value), "category_set()"),
}


@pytest.mark.parametrize("store", sorted(STORES))
def test_a_command_beside_the_window_never_takes_the_wal_from_under_it(tmp_path: Path, store: str) -> None:
    """The window holds several connections to each database (one per thread). A ``photosort`` command run beside it
    must see them: were their locks lost (on POSIX, closing any descriptor of a file drops the process's locks on
    it), the command would take itself for the last user and delete the WAL the window still writes to, and the
    window's later writes (labels included) would never reach the file."""
    import importlib
    import subprocess
    import sys

    module, name, write, read = STORES[store]
    kind = getattr(importlib.import_module(module), name)
    path = tmp_path / f"{store}.db"
    command = f"from {module} import {name}; db = {name}({str(path)!r}); print(db.{read}); db.close()"
    window = kind(path)
    write(window, "before")
    kind(path).close()  # another thread of the window opens and closes its own connection
    subprocess.run([sys.executable, "-c", command], check=True, capture_output=True)  # a command runs beside it
    assert Path(f"{path}-wal").exists()
    write(window, "after")
    seen = subprocess.run([sys.executable, "-c", command], check=True, capture_output=True, text=True).stdout
    window.close()
    assert seen.strip() == "after"
