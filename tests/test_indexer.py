"""Indexing: incremental, failure-tolerant, cancellable, and upright for rotated phone photos."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from photo_factory import draw_photo
from PIL import Image

from photosort.core.engine import Engine
from photosort.core.indexer import PipelineOptions
from photosort.core.progress import CancelToken


def test_first_run_indexes_everything_and_second_run_nothing(engine: Engine, make_photos) -> None:
    root = make_photos(2)
    first = engine.index(root)
    assert (first.indexed, first.unchanged, first.failed) == (10, 0, [])
    assert first.to_json()["indexed"] == 10
    again = Engine(engine.settings)
    try:
        second = again.index(root)
        assert (second.indexed, second.unchanged) == (0, 10)
        assert second.device == ""  # nothing to embed: the model was not even loaded
    finally:
        again.close()


def test_changed_photo_is_reembedded_and_vanished_one_dropped(engine: Engine, make_photos) -> None:
    root = make_photos(2)
    engine.index(root)
    changed = root / "beach" / "beach_000.jpg"
    draw_photo("night", seed=9).save(changed)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    (root / "forest" / "forest_001.jpg").unlink()
    report = engine.index(root)
    assert (report.indexed, report.unchanged, report.removed) == (1, 8, 1)
    assert len(engine.embeddings(root)) == 9


def test_renamed_photo_keeps_its_vector_and_labels(engine: Engine, make_photos) -> None:
    root = make_photos(2)
    engine.index(root)
    old = root / "beach" / "beach_000.jpg"
    photo_id = engine.cache.photo_id_for_path(os.path.realpath(old))
    engine.classifiers.create("trips", ["beach", "forest"], use_prior=False)
    engine.open_library([root]).set_labels("trips", {photo_id: "beach"})
    labels = engine.classifiers.labels("trips")
    new = root / "renamed.jpg"
    old.rename(new)
    report = engine.index(root)
    assert (report.renamed, report.indexed, report.removed) == (1, 0, 0)
    assert engine.cache.photo_id_for_path(os.path.realpath(new)) == photo_id
    assert engine.classifiers.labels("trips") == labels
    library = engine.open_library([root])
    row = library.photos.index_of()[photo_id]
    assert library.photos.paths[row] == os.path.realpath(new)
    assert library.labels("trips")[row] == 0  # still 'beach', at its new name


def test_unreadable_photos_are_reported_remembered_and_not_retried(engine: Engine, make_photos) -> None:
    root = make_photos(1)
    (root / "broken.jpg").write_bytes(b"not a jpeg at all")
    truncated = root / "truncated.jpg"
    full = (root / "beach" / "beach_000.jpg").read_bytes()
    truncated.write_bytes(full[: len(full) // 3])
    report = engine.index(root)
    failed = dict(report.failed)
    assert set(failed) == {os.path.realpath(root / "broken.jpg"), os.path.realpath(truncated)}
    assert all(reason and "\n" not in reason for reason in failed.values())
    assert report.indexed == 5
    again = engine.index(root)
    assert again.failed == [] and again.known_failures == 2
    assert len(engine.failures(root)) == 2


def test_exif_rotated_photo_is_embedded_upright(engine: Engine, tmp_path: Path) -> None:
    root = tmp_path / "rot"
    root.mkdir()
    upright = draw_photo("sunset", size=(64, 96), seed=3)
    upright.save(root / "upright.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; viewers turn it 90° clockwise
    upright.transpose(Image.Transpose.ROTATE_90).save(root / "phone.jpg", quality=95, exif=exif)
    upright.transpose(Image.Transpose.ROTATE_90).save(root / "sideways.jpg", quality=95)
    engine.index(root)
    e = engine.embeddings(root)
    v = dict(zip([Path(p).name for p in e.paths], e.vectors, strict=True))
    assert float(v["phone.jpg"] @ v["upright.jpg"]) > float(v["sideways.jpg"] @ v["upright.jpg"])
    assert float(v["phone.jpg"] @ v["upright.jpg"]) > 0.98


def test_cancel_keeps_finished_batches_and_next_run_completes(settings, make_photos) -> None:
    root = make_photos(4)  # 20 photos, batches of 4
    engine = Engine(settings, PipelineOptions(batch_size=4, decode_threads=2))
    batches: list[list[int]] = []
    cancel = CancelToken()

    def on_batch(ids: list[int]) -> None:
        batches.append(ids)
        if len(batches) == 2:
            cancel.cancel()  # as the Cancel button does, from any thread

    report = engine.index(root, cancel=cancel, on_batch=on_batch)
    assert report.cancelled and report.indexed == 8
    assert len(engine.embeddings(root)) == 8
    assert cancel.cancelled
    rest = engine.index(root)
    assert (rest.indexed, rest.unchanged) == (12, 8)
    assert len(set(engine.embeddings(root).paths)) == 20
    engine.close()


def test_a_run_cancelled_before_it_starts_writes_nothing(engine: Engine, make_photos) -> None:
    root = make_photos(2)
    cancel = CancelToken()
    cancel.cancel()
    report = engine.index(root, cancel=cancel)
    assert report.cancelled and report.indexed == 0
    assert len(engine.embeddings(root)) == 0
    assert engine.index(root).indexed == 10


def test_progress_reports_are_throttled_and_end_complete(engine: Engine, make_photos) -> None:
    root = make_photos(4)
    seen = []
    engine.index(root, progress=seen.append)
    indexing = [p for p in seen if p.phase == "indexing"]
    assert indexing[-1].done == indexing[-1].total == 20
    assert len(indexing) <= 10


def test_bomb_is_refused_before_decoding(engine: Engine, tmp_path: Path) -> None:
    root = tmp_path / "bomb"
    root.mkdir()
    Image.new("RGB", (12000, 10000)).save(root / "huge.png", compress_level=1)
    engine.options = PipelineOptions(max_pixels=50_000_000)
    report = engine.index(root)
    assert len(report.failed) == 1 and "too large" in report.failed[0][1]


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "CMYK", "I;16", "LA", "1"])
def test_odd_pixel_modes_are_indexed(engine: Engine, tmp_path: Path, mode: str) -> None:
    root = tmp_path / mode.replace(";", "")
    root.mkdir()
    img = draw_photo("beach").convert("RGB")
    img = img.convert("L").convert(mode) if mode == "I;16" else img.convert(mode)
    img.save(root / ("x.tif" if mode in ("CMYK", "I;16") else "x.png"))
    report = engine.index(root)
    assert report.indexed == 1, report.failed
    assert np.isfinite(engine.embeddings(root).vectors).all()


def test_photos_deleted_while_indexing_get_a_clear_message(settings, make_photos) -> None:
    root = make_photos(4)
    victims = sorted(root.rglob("*.jpg"))[-6:]
    engine = Engine(settings, PipelineOptions(batch_size=2, decode_threads=1, decode_ahead_batches=1))

    def delete_after_first_batch(ids: list[int]) -> None:
        for path in victims:
            path.unlink(missing_ok=True)

    report = engine.index(root, on_batch=delete_after_first_batch)
    assert not report.cancelled
    assert report.indexed + len(report.failed) == 20
    assert report.failed and all("vanished" in reason or "No such file" in reason for _, reason in report.failed)
    again = engine.index(root)
    assert again.total == 14 and again.failed == [] and again.known_failures == 0
    engine.close()


def test_a_file_that_hangs_the_decoder_is_skipped_and_the_run_ends(settings, make_photos, monkeypatch) -> None:
    import threading

    from photosort.core import indexer

    root = make_photos(2)
    stuck = threading.Event()
    real_decode = indexer.decode_photo

    def decode_or_hang(path: str, *args):
        if path.endswith("night_000.jpg"):
            stuck.wait(20)
        return real_decode(path, *args)

    monkeypatch.setattr(indexer, "decode_photo", decode_or_hang)
    engine = Engine(settings, PipelineOptions(batch_size=4, decode_threads=2, decode_timeout_s=0.5))
    report = engine.index(root)
    stuck.set()
    assert report.indexed == 9
    assert len(report.failed) == 1 and "took longer than" in report.failed[0][1]
    engine.close()
