"""Interruptions, concurrent use and odd real-world files lose nothing and crash nothing."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from photo_factory import draw_photo

from photosort.core.cache import Cache
from photosort.core.scan import is_photo_name
from photosort.core.userdata import UserStore


def photosort_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "photosort", *args]


def make_library(root: Path, count: int, size: tuple[int, int] = (800, 600)) -> Path:
    kinds = ["beach", "forest", "night", "document", "sunset"]
    for i in range(count):
        folder = root / f"2024-{i % 4:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        draw_photo(kinds[i % 5], size=size, seed=i).save(folder / f"IMG_{i:04d}.jpg", quality=85)
    return root


def embedded_count(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [0, 32])
def test_sigkill_mid_index_keeps_finished_batches_and_resumes(tmp_path: Path, tiny_model: Path, kill_after: int) -> None:
    root = make_library(tmp_path / "lib", 80, size=(640, 480))
    cache_dir = tmp_path / "cache"
    db = cache_dir / "cache.db"
    args = ["--model", str(tiny_model), "--data-dir", str(cache_dir), "--json"]
    proc = subprocess.Popen(photosort_cmd("index", str(root), *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def reached() -> bool:
        return db.exists() if kill_after == 0 else embedded_count(db) >= kill_after

    deadline = time.monotonic() + 600  # only so that a stuck indexer fails the test instead of hanging it
    while not reached() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    goal = f"{kill_after} embedded photos" if kill_after else "creating the cache"
    assert reached(), f"the indexer never got to {goal} (exit code {proc.returncode}, {embedded_count(db)} embedded)"

    with Cache(db) as cache:
        assert cache.integrity_ok()
        assert not cache.notices  # not damaged: nothing had to be moved aside
    kept = embedded_count(db)
    assert kept >= min(kill_after, 80)
    result = subprocess.run(photosort_cmd("index", str(root), *args), capture_output=True, text=True, check=True)
    doc = json.loads(result.stdout)
    assert doc["indexed"] + doc["unchanged"] == 80 and doc["failed"] == []
    assert doc["unchanged"] >= kept
    with Cache(db) as cache:
        rows = cache._conn.execute("SELECT count(*), count(DISTINCT path) FROM photos").fetchone()
        assert rows == (80, 80)
        assert embedded_count(db) == 80
    with UserStore(cache_dir / "library.db") as user:
        assert user.integrity_ok() and not user.notices


@pytest.mark.slow
def test_two_cli_runs_on_one_cache_at_once(tmp_path: Path, tiny_model: Path) -> None:
    root = make_library(tmp_path / "lib", 60, size=(320, 240))
    # --cache-dir is the old name of --data-dir: it still works
    args = ["--model", str(tiny_model), "--cache-dir", str(tmp_path / "cache"), "--json"]
    procs = [subprocess.Popen(photosort_cmd("index", str(root), *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err
    docs = [json.loads(out) for out, _ in outputs]
    assert all(d["indexed"] + d["unchanged"] == 60 for d in docs)
    with Cache(tmp_path / "cache" / "cache.db") as cache:
        assert cache.integrity_ok()
        assert cache._conn.execute("SELECT count(*) FROM photos").fetchone()[0] == 60
    with UserStore(tmp_path / "cache" / "library.db") as user:  # both runs created it at once: still one, sound
        assert user.integrity_ok() and user._conn.execute("PRAGMA user_version").fetchone()[0] == user.schema_version


@pytest.mark.slow
def test_pillow_corpus_every_file_indexed_or_reported(tmp_path: Path, tiny_model: Path, shared_dir: Path) -> None:
    corpus = shared_dir / "corpora" / "pillow-test-images"
    if not corpus.is_dir():
        pytest.skip("no Pillow corpus in ../shared")
    args = ["--model", str(tiny_model), "--data-dir", str(tmp_path / "cache"), "--json"]
    result = subprocess.run(photosort_cmd("index", str(corpus), *args), capture_output=True, text=True,
                            timeout=1800)  # a hang guard, not a budget: how fast is for photosort bench
    assert result.returncode == 0, result.stderr[-2000:]
    doc = json.loads(result.stdout)
    photos = {os.path.realpath(p) for p in corpus.rglob("*") if p.is_file() and is_photo_name(p.name)
              and not any(part.startswith(".") for part in p.relative_to(corpus).parts)}
    failed = {f["path"]: f["error"] for f in doc["failed"]}
    assert doc["total"] == len(photos)
    assert doc["indexed"] + len(failed) == len(photos)
    assert all(reason.strip() and "\n" not in reason and len(reason) < 300 for reason in failed.values())
    assert doc["ignored"] > 0  # fonts, palettes, PDFs… are not photos and are left alone
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert peak_mb < 1500, f"peak memory {peak_mb:.0f} MB"
    again = json.loads(subprocess.run(photosort_cmd("index", str(corpus), *args), capture_output=True, text=True,
                                      check=True).stdout)
    assert again["indexed"] == 0 and again["known_failures"] == len(failed)  # failures are not retried


# ---- a full disk under the cache ----------------------------------------------------------------------
def cli_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from photosort.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_full_disk_mid_index_is_one_line_and_the_next_run_keeps_every_committed_batch(
        tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """PRAGMA max_page_count gives SQLite a real SQLITE_FULL partway, as a disk with no room left does."""
    root = make_library(tmp_path / "lib", 12, size=(320, 240))
    data = tmp_path / "data"
    args = ["--model", str(tiny_model), "--data-dir", str(data)]
    (tmp_path / "labels.csv").write_text("2024-00/IMG_0000.jpg,beach\n2024-01/IMG_0001.jpg,forest\n")
    code, _, err = cli_in_process(capsys, "train", str(root), "--classifier", "kinds", "--labels",
                                  str(tmp_path / "labels.csv"), *args)
    assert code == 0, err
    make_library(tmp_path / "lib" / "more", 60, size=(640, 480))
    connect = sqlite3.connect

    def room_for_a_batch(*a, **k):
        conn = connect(*a, **k)
        if str(a[0] if a else k.get("database")).endswith("cache.db"):
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count={pages + 20}")  # room for about one batch
        return conn

    monkeypatch.setattr(sqlite3, "connect", room_for_a_batch)
    code, _, err = cli_in_process(capsys, "index", str(root), *args)
    monkeypatch.setattr(sqlite3, "connect", connect)
    assert code == 1 and err.count("\n") == 1 and "disk is full" in err and "Traceback" not in err, err
    kept = embedded_count(data / "cache.db")
    assert 12 < kept < 72  # some batches were committed before the disk was full
    code, out, err = cli_in_process(capsys, "index", str(root), "--json", *args)
    doc = json.loads(out)
    assert code == 0 and doc["unchanged"] == kept and doc["indexed"] == 72 - kept and "damaged" not in err
    assert not list(data.glob("*damaged*"))
    code, out, _ = cli_in_process(capsys, "classifiers", "list", "--json", *args)
    assert json.loads(out)["classifiers"][0]["labels"] == 2  # the user's library survived the cache's trouble


def test_a_cache_whose_checkpoint_a_full_disk_cut_short_is_not_taken_for_damage(
        tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The WAL holds every committed batch; only the main file is shorter than its header says."""
    from test_cache import wal_frames

    root = make_library(tmp_path / "lib", 20, size=(320, 240))
    data, left = tmp_path / "data", tmp_path / "left"
    assert cli_in_process(capsys, "index", str(root), "--model", str(tiny_model), "--data-dir", str(data))[0] == 0
    left.mkdir()
    shutil.copy(data / "library.db", left / "library.db")
    conn = sqlite3.connect(data / "cache.db", isolation_level=None)
    try:
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("VACUUM")  # every page rewritten into the WAL, none back into the file yet
        wal = Path(f"{data / 'cache.db'}-wal").read_bytes()
    finally:
        conn.close()
    (left / "cache.db-wal").write_bytes(wal)
    (left / "cache.db").write_bytes(wal_frames(wal)[1])  # the checkpoint wrote page 1, then the disk was full
    code, out, err = cli_in_process(capsys, "index", str(root), "--json", "--model", str(tiny_model),
                                    "--data-dir", str(left))
    doc = json.loads(out)
    assert code == 0 and (doc["indexed"], doc["unchanged"]) == (0, 20) and "damaged" not in err, err
    assert not list(left.glob("*damaged*"))
