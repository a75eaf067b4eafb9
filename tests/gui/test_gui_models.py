"""The GUI's building blocks without the main window: models, thumbnails, preferences, helpers."""

from __future__ import annotations

import io
import sqlite3
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QItemSelectionModel, QMimeData, QObject, QUrl

from photosort.core.cache import Cache, NewPhoto
from photosort.core.errors import Action, ModelLoadError
from photosort.core.progress import Progress
from photosort.core.zeroshot import Category
from photosort.gui.main_window import describe_progress, folders_from_mime, format_duration
from photosort.gui.photo_model import UNSURE, CategoryRole, GroupRole, PhotoIdRole, PhotoModel, ScoreRole
from photosort.gui.preferences import MAX_RECENT, Preferences
from photosort.gui.preview import load_preview_image
from photosort.gui.problems import ProblemsModel
from photosort.gui.resources import app_icon, resource_path
from photosort.gui.task_runner import Failure
from photosort.gui.thumbnail_cache import ThumbnailCache

TIMEOUT_MS = 60_000  # a hang guard, not a speed budget: a busy machine may take its time
CATS = (Category("beach"), Category("forest"), Category("night"))


def probabilities(best: list[int], confidence: list[float], classes: int = 3) -> np.ndarray:
    """Rows whose best class is ``best[i]`` with probability ``confidence[i]``, the rest spread evenly."""
    out = np.zeros((len(best), classes), np.float32)
    for i, (b, c) in enumerate(zip(best, confidence, strict=True)):
        out[i] = (1 - c) / (classes - 1)
        out[i, b] = c
    return out


def fill(model: PhotoModel, n: int = 6) -> None:
    ids = np.arange(10, 10 + n, dtype=np.int64)
    paths = [f"/photos/p{i:02d}.jpg" for i in range(n)]
    model.set_scores(CATS, np.zeros(0, np.int64), np.zeros((0, 3), np.float32))
    best = [i % 3 for i in range(n)]
    conf = [0.9 if i % 2 == 0 else 0.4 for i in range(n)]
    model.add_photos(ids, paths, CATS, probabilities(best, conf))


def column(model: PhotoModel, role: int) -> list:
    return [model.index(r).data(role) for r in range(model.rowCount())]


# ---- PhotoModel ----------------------------------------------------------------------------------
def test_photo_model_groups_photos_by_category_with_unsure_last(qtmodeltester) -> None:
    model = PhotoModel()
    qtmodeltester.check(model)
    fill(model)
    groups = column(model, GroupRole)
    ranks = [3 if g == UNSURE else g for g in groups]
    assert ranks == sorted(ranks), "rows are grouped in category order, Unsure last"
    assert {(g.label, g.count) for g in model.groups()} == {
        ("All photos", 6), ("beach", 1), ("forest", 1), ("night", 1), ("Unsure", 3)}
    assert column(model, CategoryRole).count("") == 3
    assert [model.tile(r).category for r in range(6)].count(None) == 3
    qtmodeltester.check(model)


def test_threshold_moves_photos_into_and_out_of_unsure(qtmodeltester) -> None:
    model = PhotoModel()
    fill(model)
    qtmodeltester.check(model)
    model.set_threshold(0.95)
    assert column(model, GroupRole) == [UNSURE] * 6
    model.set_threshold(0.0)
    assert UNSURE not in column(model, GroupRole)
    assert sorted(column(model, ScoreRole)) == pytest.approx([0.4, 0.4, 0.4, 0.9, 0.9, 0.9])


def test_filter_shows_one_group_and_resorting_keeps_the_selection(qtmodeltester) -> None:
    model = PhotoModel()
    fill(model)
    qtmodeltester.check(model)
    model.set_filter(UNSURE)
    assert model.rowCount() == 3 and set(column(model, GroupRole)) == {UNSURE}
    model.set_filter(None)
    selection = QItemSelectionModel(model)
    target = model.index(0).data(PhotoIdRole)
    selection.select(model.index(0), QItemSelectionModel.SelectionFlag.Select)
    model.set_sort("confidence", grouped=False)
    assert [i.data(PhotoIdRole) for i in selection.selectedIndexes()] == [target]
    assert column(model, ScoreRole) == sorted(column(model, ScoreRole), reverse=True)


def test_new_categories_rescore_photos_by_id(qtmodeltester) -> None:
    model = PhotoModel()
    fill(model, 4)
    qtmodeltester.check(model)
    two = (Category("city"), Category("sea"))
    ids = np.array([13, 12, 11, 10], np.int64)  # any order: matched by id
    model.set_scores(two, ids, np.array([[0.8, 0.2], [0.3, 0.7], [0.9, 0.1], [0.2, 0.8]], np.float32))
    by_id = dict(zip(column(model, PhotoIdRole), column(model, CategoryRole), strict=True))
    assert by_id == {13: "city", 12: "sea", 11: "city", 10: "sea"}
    model.add_photos(np.array([12], np.int64), ["/photos/renamed.jpg"], two, np.array([[0.9, 0.1]], np.float32))
    assert model.rowCount() == 4, "a changed photo is refreshed, not added twice"
    assert model.path(model.row_of_photo(12)) == "/photos/renamed.jpg"


def test_photos_without_categories_have_no_group_or_score(qtmodeltester) -> None:
    model = PhotoModel()
    qtmodeltester.check(model)
    model.add_photos(np.array([1, 2], np.int64), ["/b/2.jpg", "/a/1.jpg"], (), np.zeros((2, 0), np.float32))
    assert column(model, 0) == ["1.jpg", "2.jpg"]  # by path
    assert column(model, CategoryRole) == ["", ""]
    assert [g.label for g in model.groups()] == ["All photos"]


# ---- thumbnails ----------------------------------------------------------------------------------
def jpeg(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG")
    return out.getvalue()


def store_thumbnails(db: Path, sizes: list[tuple[int, int]]) -> list[int]:
    with Cache(db) as cache:
        model_id = cache.model_id("test", 4)
        photos = [NewPhoto(f"/p/{i}.jpg", 1, 1, f"f{i}", w, h, jpeg(w, h, (200, 30, 30)), np.ones(4, np.float32))
                  for i, (w, h) in enumerate(sizes)]
        return cache.write_indexed(model_id, photos, [])


def test_thumbnails_load_off_the_gui_thread_then_come_from_memory(qtbot, tmp_path: Path) -> None:
    db = tmp_path / "photosort.db"
    ids = store_thumbnails(db, [(256, 192), (120, 240)])
    thumbs = ThumbnailCache(db, threading.Lock(), tile_px=64)
    try:
        assert thumbs.pixmap(ids[0]) is None, "a miss paints a placeholder first"
        with qtbot.waitSignal(thumbs.ready, timeout=TIMEOUT_MS):
            thumbs.pixmap(ids[1])
        qtbot.waitUntil(lambda: len(thumbs) == 2, timeout=TIMEOUT_MS)
        wide, tall = thumbs.pixmap(ids[0]), thumbs.pixmap(ids[1])
        assert (wide.width(), wide.height()) == (64, 48), "scaled to the tile in the loader thread"
        assert (tall.width(), tall.height()) == (32, 64)
        assert thumbs.pixmap(999_999) is None
        qtbot.waitUntil(lambda: thumbs.has_no_thumbnail(999_999), timeout=TIMEOUT_MS)
    finally:
        thumbs.shutdown()


def test_on_a_hidpi_screen_a_tile_is_sharpened_from_the_photo_itself(qtbot, tmp_path: Path) -> None:
    """A 160 px tile at 200 % needs 320 pixels; the stored thumbnail has 256. It shows at once, then the tile gets
    its pixels from the photo (a missing photo keeps its thumbnail)."""
    photo = tmp_path / "wide.jpg"
    Image.new("RGB", (1600, 1200), (30, 120, 200)).save(photo, "JPEG")
    db = tmp_path / "cache.db"
    with Cache(db) as cache:
        model_id = cache.model_id("test", 4)
        ids = cache.write_indexed(model_id, [
            NewPhoto(str(photo), 1, 1, "f0", 1600, 1200, jpeg(256, 192, (30, 120, 200)), np.ones(4, np.float32)),
            NewPhoto(str(tmp_path / "gone.jpg"), 1, 1, "f1", 1600, 1200, jpeg(256, 192, (9, 9, 9)), np.ones(4, np.float32)),
        ], [])
    thumbs = ThumbnailCache(db, threading.Lock(), tile_px=160, device_pixel_ratio=2.0)
    try:
        thumbs.prefetch(ids)
        qtbot.waitUntil(lambda: thumbs.pixmap(ids[0]) is not None and thumbs.pixmap(ids[0]).width() == 320,
                        timeout=TIMEOUT_MS)
        sharp = thumbs.pixmap(ids[0])
        assert (sharp.height(), sharp.devicePixelRatio()) == (240, 2.0)
        assert thumbs.pixmap(ids[1]).width() == 256  # no photo to sharpen it from: the stored thumbnail stays
    finally:
        thumbs.shutdown()

    low = ThumbnailCache(db, threading.Lock(), tile_px=160)  # 100 %: the stored thumbnail is enough
    try:
        low.prefetch(ids)
        qtbot.waitUntil(lambda: low.pixmap(ids[0]) is not None, timeout=TIMEOUT_MS)
        assert low.pixmap(ids[0]).width() == 160
    finally:
        low.shutdown()


def test_thumbnail_memory_is_bounded(qtbot, tmp_path: Path) -> None:
    db = tmp_path / "photosort.db"
    ids = store_thumbnails(db, [(64, 64)] * 12)
    one = 64 * 64 * 4
    thumbs = ThumbnailCache(db, threading.Lock(), tile_px=64, max_bytes=5 * one)
    delivered: list[int] = []
    thumbs.ready.connect(delivered.extend)
    try:
        thumbs.prefetch(ids)
        qtbot.waitUntil(lambda: sorted(delivered) == sorted(ids), timeout=TIMEOUT_MS)
        assert len(thumbs) == 5 and thumbs.memory_bytes <= 5 * one
    finally:
        thumbs.shutdown()


# ---- preferences, helpers ------------------------------------------------------------------------
def test_recent_folders_are_most_recent_first_without_duplicates(prefs: Preferences) -> None:
    for i in range(MAX_RECENT + 3):
        prefs.remember_folders([f"/photos/{i}"])
    prefs.remember_folders(["/photos/4"])
    recent = prefs.recent_folders()
    assert recent[0] == "/photos/4" and len(recent) == MAX_RECENT and len(set(recent)) == MAX_RECENT


def test_failures_become_messages_with_an_action() -> None:
    full = Failure.of(sqlite3.OperationalError("database or disk is full"))
    assert full.action == Action.RETRY and "full" in full.message
    model = Failure.of(ModelLoadError("Model folder not found: /x. Choose another model in Settings."))
    assert model.action == Action.SETTINGS and "Settings" in model.message
    assert Failure.of(RuntimeError("boom")).action == Action.REPORT


def test_dropped_photos_stand_for_their_folder(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "a")), QUrl.fromLocalFile(str(tmp_path / "b" / "x.jpg")),
                  QUrl.fromLocalFile(str(tmp_path / "notes.txt")), QUrl("https://example.com/photo.jpg")])
    assert folders_from_mime(mime) == [str(tmp_path / "a"), str(tmp_path / "b")]


def test_progress_text_has_count_rate_and_eta() -> None:
    assert describe_progress(Progress("indexing", 120, 300, 18.5, 9.7)) == \
        "Indexing 120 of 300 · 18.5 photos/s · about 10 s left"
    assert describe_progress(Progress("scanning", 0, 0)) == "Looking for photos…"
    assert format_duration(3725) == "1 h 02 min"


def test_problems_model_lists_each_photo_with_its_folder_and_reason(qtmodeltester) -> None:
    model = ProblemsModel()
    qtmodeltester.check(model)
    model.set_problems([("/photos/trip/b.jpg", "truncated file"), ("/elsewhere/a.png", "not an image"),
                        ("/photos/c.jpg", "empty file (0 bytes)")], ["/photos"])
    rows = [[model.index(r, c).data() for c in range(3)] for r in range(model.rowCount())]
    assert rows == [["a.png", "/elsewhere", "not an image"], ["c.jpg", "photos", "empty file (0 bytes)"],
                    ["b.jpg", "photos/trip", "truncated file"]]


def test_preview_image_is_upright_and_fits(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways; the camera says "rotate 90° clockwise to view"
    Image.new("RGB", (400, 200), (10, 120, 200)).save(path, exif=exif)
    image = load_preview_image(str(path), 100)
    assert (image.width(), image.height()) == (50, 100)


def test_icons_are_found_from_the_package(qapp) -> None:
    assert resource_path("photosort.svg") is not None
    assert not app_icon().isNull()


def test_a_long_session_of_qt_calls_does_not_exhaust_none(qapp) -> None:
    """PySide6 6.12.0 on Python < 3.12 loses a reference to None per void call; photosort.gui guards it."""
    probe = QObject()
    for _ in range(1_000_000):  # without the guard this aborts the interpreter ("deallocating None")
        probe.setObjectName("x")
    assert sys.getrefcount(None) > 1000


def test_the_model_regroups_50000_photos(qtmodeltester) -> None:
    """Grouping, thresholds and filters at library scale give every photo its group (how fast: photosort bench)."""
    n = 50_000
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=n).astype(np.float32)
    model = PhotoModel()
    model.set_scores(CATS, np.zeros(0, np.int64), np.zeros((0, 3), np.float32))
    model.add_photos(np.arange(n, dtype=np.int64), [f"/p/{i % 97}/{i}.jpg" for i in range(n)], CATS, probs)
    for batch in range(20):  # indexing batches arriving one by one
        ids = np.arange(n + 16 * batch, n + 16 * (batch + 1), dtype=np.int64)
        model.add_photos(ids, [f"/q/{i}.jpg" for i in ids], CATS, probs[:16])
    all_probs = np.concatenate([probs, np.tile(probs[:16], (20, 1))])
    for threshold in (0.9, 0.4, 0.6):
        model.set_threshold(threshold)
    best, score = all_probs.argmax(axis=1), all_probs.max(axis=1)
    expected = np.where(score >= 0.6, best, UNSURE)
    counts = np.bincount(expected + 1, minlength=len(CATS) + 1)
    assert [g.count for g in model.groups()] == [n + 320, *counts[1:].tolist(), int(counts[0])]
    model.set_filter(UNSURE)
    assert model.rowCount() == counts[0]
    assert all(expected[model.photo_id(r)] == UNSURE for r in range(0, model.rowCount(), 97))
    model.set_filter(None)
    model.set_sort("confidence")
    assert model.rowCount() == n + 320
    rows = range(0, model.rowCount(), 101)
    assert all(model.tile(r).group == expected[model.photo_id(r)] for r in rows)
    assert sorted({model.photo_id(r) for r in range(model.rowCount())}) == list(range(n + 320))


def test_name_order_is_natural_and_folder_order_groups_by_folder() -> None:
    paths = ["/p/b/IMG_10.jpg", "/p/a/IMG_2.jpg", "/p/b/img_1.jpg", "/p/a10/IMG_3.jpg", "/p/a2/IMG_11.jpg"]
    model = PhotoModel()
    model.add_photos(np.arange(len(paths)), paths, (), np.zeros((len(paths), 0), np.float32))
    names = lambda: [model.path(r) for r in range(model.rowCount())]  # noqa: E731
    assert names() == ["/p/b/img_1.jpg", "/p/a/IMG_2.jpg", "/p/a10/IMG_3.jpg", "/p/b/IMG_10.jpg", "/p/a2/IMG_11.jpg"]
    model.set_sort("folder")
    assert names() == ["/p/a/IMG_2.jpg", "/p/a2/IMG_11.jpg", "/p/a10/IMG_3.jpg", "/p/b/img_1.jpg", "/p/b/IMG_10.jpg"]
