"""The window on a first run: the model downloads in the worker with bytes, rate and time left, Cancel stops it.

The model comes from the fake hub on 127.0.0.1 (tests/fake_hub.py), which stalls
the weights half way until the test releases them, so the test sees the window
while it downloads, without timing anything.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fake_hub import REPO, serve
from PySide6.QtCore import Qt

from photosort.core.progress import Progress
from photosort.gui.main_window import describe_progress

TIMEOUT_MS = 60_000  # a hang guard, not a speed budget: a busy machine may take its time
WEIGHTS = "model.safetensors"


@pytest.fixture
def online(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    hub = serve(tiny_model, tmp_path / "hf", monkeypatch)
    yield hub
    hub.stop()


def test_the_status_bar_says_bytes_rate_and_time_left_while_downloading() -> None:
    text = describe_progress(Progress("downloading", 123_400_000, 605_000_000, 2_500_000.0, 192.6))
    assert text == "Downloading the model: 123 MB of 605 MB · 2.5 MB/s · about 3 min 13 s left"
    assert describe_progress(Progress("downloading", 605_000_000, 605_000_000, 2_500_000.0, 0.0)) == \
        "Model downloaded; loading it…"


def test_the_window_shows_the_download_can_cancel_it_and_the_next_open_resumes(qtbot, make_window, make_photos,
                                                                               settings, online) -> None:
    photos = make_photos(1)
    online.hold_at[WEIGHTS] = len(online.files[WEIGHTS]) // 2
    window = make_window(settings.with_changes(model=REPO))
    window.open_folders([str(photos)])

    count = len(list(photos.rglob("*.jpg")))
    qtbot.waitUntil(lambda: online.held.is_set() and window.progress_bar.value() > 500
                    and window.model.photo_count() == count, timeout=TIMEOUT_MS)
    text = window.progress_label.text()
    assert re.fullmatch(r"Downloading the model: [\d.]+ KB of [\d.]+ KB · [\d.]+ [KM]B/s · about .+ left", text), text
    assert window.cancel_button.isVisible() and window.cancel_button.isEnabled()
    assert 0 < window.progress_bar.value() < window.progress_bar.maximum() == 1000
    # Meanwhile the photos can be browsed: all in the grid, none guessed into a group before the model saw it.
    assert window.model.unanalysed_count() == count
    assert [g.label for g in window.model.groups()] == ["All photos", "Not analysed yet"]
    assert f"{count} not analysed yet" in window.status_label.text()

    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):  # the stalled transfer does not hold it up
        qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    assert not window.busy
    assert "Download stopped" in window.statusBar().currentMessage()
    assert not online.release.is_set()

    online.hold_at.clear()
    online.release.set()
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        window.open_folders([str(photos)])
    assert window.model.photo_count() == count and window.model.unanalysed_count() == 0  # every one analysed now
    assert online.gets(WEIGHTS)[-1].range is not None  # continued, not started again
