"""The cache: derived data only; WAL, schema versioning and migration, damage handling, vectors kept apart by model."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from photosort.core.cache import _SCHEMA_V1, APPLICATION_ID, SCHEMA_VERSION, Cache, NewPhoto
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
