"""Closing the window while a folder is being indexed: after the current batch, and nothing is lost or doubled."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import Qt

from photosort.core.cache import Cache
from photosort.core.config import Settings
from photosort.core.engine import Engine
from photosort.core.indexer import PipelineOptions
from photosort.core.scan import resolve_root

TIMEOUT_MS = 60_000  # a hang guard, not a speed budget: a busy machine may take its time
SMALL_BATCHES = PipelineOptions(batch_size=4, decode_threads=2)


def indexed_photos(settings: Settings, folder: Path) -> list[int]:
    """Ids of the folder's photos that have a vector in the cache."""
    engine = Engine(settings)
    try:
        return [int(i) for i in engine.embeddings(folder).ids]
    finally:
        engine.close()


def test_closing_mid_index_stops_after_the_current_batch_and_the_next_open_does_only_the_rest(
        qtbot, monkeypatch, make_window, make_photos, settings: Settings, caplog, capfd) -> None:
    caplog.set_level(logging.WARNING)
    folder = make_photos(8)  # 40 photos: 10 batches
    window = make_window()
    holding, release, released = threading.Event(), threading.Event(), []

    def hold_first_batch(batch) -> None:  # the worker thread, right after the first batch was committed
        if len(batch.ids) and not holding.is_set():
            holding.set()
            released.append(release.wait(600))  # a hang guard: set once close() waits

    window.worker.worker.photosAdded.connect(hold_first_batch, Qt.ConnectionType.DirectConnection)
    window.open_folders([str(folder)])
    qtbot.waitUntil(holding.is_set, timeout=TIMEOUT_MS)
    wait_for_worker = window.worker.thread.wait

    def release_then_wait(*args):  # close() has asked the worker to stop and now waits for it
        release.set()
        return wait_for_worker(*args)

    monkeypatch.setattr(window.worker.thread, "wait", release_then_wait)
    window.close()
    assert released == [True], "the worker was held until close() waited for it"
    assert not window.isVisible() and not window.worker.thread.isRunning()
    assert not window.thumbnails.running

    with Cache(settings.cache_path) as cache:
        assert cache.integrity_ok()
    kept = indexed_photos(settings, folder)
    assert len(kept) == 4, "the committed batch is kept; the one in the model is dropped"

    again = make_window()
    with qtbot.waitSignal(again.indexingDone, timeout=TIMEOUT_MS) as done:
        again.open_folders([str(folder)])
    [report] = done.args[0].reports
    assert (report.unchanged, report.indexed) == (4, 36), "only the rest is indexed"
    assert again.model.rowCount() == 40
    ids = indexed_photos(settings, folder)
    assert len(ids) == len(set(ids)) == 40 and set(kept) <= set(ids)
    with Cache(settings.cache_path) as cache:
        assert len(cache.photos_under(resolve_root(folder))) == 40, "no duplicate rows"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Traceback" not in capfd.readouterr().err
