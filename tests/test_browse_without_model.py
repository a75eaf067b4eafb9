"""Photos can be browsed without the model: offline before its first download, and while it downloads.

The window indexes with ``browse_without_model``: photos the model cannot analyse yet
still get their thumbnail and capture facts (so they can be shown, previewed and
sorted by name or date), are never guessed into a group, and are analysed the moment
the model is there. The command line says at once that the model is missing.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from fake_hub import REPO, FakeHub, point_at, serve

from photosort.core import progress as progress_mod
from photosort.core.cache import Cache
from photosort.core.config import Settings
from photosort.core.engine import Engine
from photosort.core.errors import Face, ModelLoadError, ModelNotReadyError, user_message
from photosort.core.library import NOT_ANALYSED_REASON, Sorting
from photosort.core.progress import Progress
from photosort.core.zeroshot import parse_categories

WEIGHTS = "model.safetensors"
WAIT_S = 60  # a hang guard, not a speed budget


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No network and an empty Hugging Face cache: a first run on a train."""
    point_at("http://127.0.0.1:9", tmp_path / "hf", monkeypatch, offline=True)


@pytest.fixture
def hub_settings(tmp_path: Path) -> Settings:
    return Settings(model=REPO, device="cpu", data_dir=tmp_path / "data", mode="fp32")


def photos_with_a_broken_one(make_photos) -> Path:
    root = make_photos(2)
    (root / "broken.jpg").write_bytes(b"not a photo")
    return root


def test_offline_the_photos_become_browsable_and_the_model_problem_is_said(offline, hub_settings, make_photos) -> None:
    root = photos_with_a_broken_one(make_photos)
    engine = Engine(hub_settings)
    shown: list[int] = []
    try:
        with pytest.raises(ModelLoadError) as failure:
            engine.index(root, on_batch=shown.extend, browse_without_model=True)
        assert "not on this computer yet" in str(failure.value)

        unanalysed = engine.unanalysed(root)
        assert len(unanalysed) == 10 and sorted(shown) == sorted(unanalysed.ids.tolist())
        assert all(engine.cache.thumbnail(pid) for pid in unanalysed.ids.tolist())  # the grid can show them
        assert len(engine.cache.dates_for_ids(unanalysed.ids.tolist())) == 10  # and sort them by date
        assert [Path(p).name for p, _ in engine.failures(root)] == ["broken.jpg"]  # and list what it cannot read

        library = engine.open_library([root])
        assert len(library) == 0 and len(library.unanalysed) == 10
        with pytest.raises(ModelLoadError) as sorting:  # nothing is guessed into a group without the model
            library.check_sortable()
        assert user_message(sorting.value, Face.WINDOW).text.endswith("(Settings → Model).")

        shown.clear()
        with pytest.raises(ModelLoadError):  # again: the same word, and nothing decoded twice
            engine.index(root, on_batch=shown.extend, browse_without_model=True)
        assert shown == []
    finally:
        engine.close()


def test_the_command_line_says_at_once_that_the_model_is_missing_and_writes_nothing(offline, hub_settings,
                                                                                    make_photos) -> None:
    root = make_photos(1)
    engine = Engine(hub_settings)
    try:
        with pytest.raises(ModelLoadError):
            engine.index(root)
        with Cache(hub_settings.cache_path) as cache:
            assert cache.photos_under(str(root.resolve())) == {}
    finally:
        engine.close()


def test_once_a_model_is_there_the_browsed_photos_are_analysed_and_sorted(offline, hub_settings, tiny_model: Path,
                                                                          make_photos, tmp_path: Path) -> None:
    root = photos_with_a_broken_one(make_photos)
    first = Engine(hub_settings)
    with pytest.raises(ModelLoadError):
        first.index(root, browse_without_model=True)
    first.close()

    engine = Engine(Settings(model=str(tiny_model), device="cpu", data_dir=hub_settings.data_dir))  # chosen in Settings
    try:
        report = engine.index(root, browse_without_model=True)
        assert (report.indexed, report.thumbnailed, report.known_failures, report.failed) == (10, 0, 1, [])
        library = engine.open_library([root])
        assert len(library) == 10 and len(library.unanalysed) == 0
        plan = library.plan_export(library.sort(Sorting.by_categories(parse_categories("beach, night"))),
                                   tmp_path / "out")
        assert len(plan.moves) == 10 and NOT_ANALYSED_REASON not in {reason for _, reason in plan.skipped}
    finally:
        engine.close()


def test_while_the_model_downloads_the_photos_get_thumbnails_then_vectors(tiny_model: Path, tmp_path: Path,
                                                                          hub_settings, make_photos,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    hub: FakeHub = serve(tiny_model, tmp_path / "hf", monkeypatch)
    monkeypatch.setattr(progress_mod, "PROGRESS_INTERVAL_S", 0.0)
    hub.hold_at[WEIGHTS] = len(hub.files[WEIGHTS]) // 2  # the line stalls half way through the weights
    root = make_photos(2)
    engine = Engine(hub_settings)
    shown: list[int] = []
    seen: list[Progress] = []
    outcome: dict[str, object] = {}

    def index() -> None:  # the engine belongs to this thread, as to the window's worker
        try:
            outcome["report"] = engine.index(root, progress=seen.append, on_batch=shown.extend, browse_without_model=True)
            outcome["left"] = len(engine.unanalysed(root)), len(engine.embeddings(root))
        except BaseException as exc:  # the test thread reports it
            outcome["error"] = exc
        finally:
            engine.close()

    worker = threading.Thread(target=index)
    try:
        worker.start()
        assert hub.held.wait(WAIT_S)
        _wait_for(lambda: len(set(shown)) == 10)  # every photo reached the grid while the weights were stalled
        assert not hub.release.is_set() and worker.is_alive()
        with Cache(hub_settings.cache_path) as reader:  # (the index thread owns the engine's connection)
            assert len(reader.unanalysed_under(str(root.resolve()), None)) == 10
        with pytest.raises(ModelNotReadyError):  # search and the like are told the model is not here yet, at once
            engine.encoder()
        downloading = [p.phase for p in seen]
        assert "downloading" in downloading and "thumbnails" not in downloading  # the download owns the progress

        hub.hold_at.clear()
        hub.release.set()
        worker.join(WAIT_S)
        assert not worker.is_alive() and "error" not in outcome, outcome.get("error")
        report = outcome["report"]
        assert (report.thumbnailed, report.indexed, report.failed) == (10, 10, [])
        assert outcome["left"] == (0, 10)  # none left unanalysed, every one embedded
    finally:
        hub.release.set()
        worker.join(WAIT_S)
        hub.stop()


def test_switching_models_keeps_the_vectors_each_made(settings, tiny_model: Path, tmp_path: Path, make_photos) -> None:
    root = make_photos(2)
    other = shutil.copytree(tiny_model, tmp_path / "another-clip")  # another identity, the same weights
    first = Engine(settings)
    assert first.index(root).indexed == 10
    first.close()
    switched = Engine(Settings(model=str(other), device="cpu", data_dir=settings.data_dir))
    assert switched.index(root).indexed == 10
    switched.close()
    back = Engine(settings)
    try:
        again = back.index(root)
        assert (again.indexed, again.unchanged) == (0, 10)  # switching back costs nothing: no photo embedded again
    finally:
        back.close()


def _wait_for(condition) -> None:
    import time

    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
