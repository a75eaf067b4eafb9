"""The cache: WAL, schema versioning, damage handling, vectors kept apart by model."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from photosort.core.cache import SCHEMA_VERSION, Cache, NewPhoto
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
