"""The window without the model: offline before its first download, the photos can still be browsed.

They appear with their thumbnails, sort by name and date, open in the preview and
list what could not be read; none is guessed into a group, the message bar says
why in the window's own terms (Settings → Model) and offers Settings. Choosing a
model there analyses them, without decoding twice what was browsed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_hub import REPO, point_at
from PIL import Image
from PySide6.QtCore import Qt

from photosort.core.errors import Action
from photosort.gui.photo_model import NOT_ANALYSED

TIMEOUT_MS = 60_000  # a hang guard, not a speed budget: a busy machine may take its time


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    point_at("http://127.0.0.1:9", tmp_path / "hf", monkeypatch, offline=True)


def camera_roll(folder: Path) -> Path:
    """Photos whose names sort differently as text and as people read them, taken in another order."""
    folder.mkdir(parents=True)
    taken = {"IMG_10.jpg": "2021:05:01 10:00:00", "IMG_2.jpg": "2023:01:01 09:00:00", "IMG_1.jpg": "2022:07:04 12:00:00"}
    for i, (name, when) in enumerate(taken.items()):
        image = Image.new("RGB", (320, 240), (40 * i, 120, 200 - 40 * i))
        exif = Image.Exif()
        exif[0x8769] = {0x9003: when}  # DateTimeOriginal in the Exif IFD
        image.save(folder / name, exif=exif)
    (folder / "empty.jpg").write_bytes(b"")
    return folder


def test_offline_the_photos_are_browsable_and_the_bar_says_how_to_get_the_model(qtbot, make_window, settings, offline,
                                                                                tmp_path: Path) -> None:
    folder = camera_roll(tmp_path / "roll")
    window = make_window(settings.with_changes(model=REPO))
    with qtbot.waitSignal(window.errorShown, timeout=TIMEOUT_MS) as shown:
        window.open_folders([str(folder)])

    text = window.message_bar.label.text()
    assert "not on this computer yet" in text and "Settings → Model" in text and "--model" not in text
    assert shown.args[0].action == Action.SETTINGS and window.message_bar.action_button.text() == "Settings…"
    assert window.model.photo_count() == 3 and window.model.unanalysed_count() == 3
    assert "3 not analysed yet" in window.status_label.text()
    assert {window.model.tile(r).group for r in range(3)} == {NOT_ANALYSED}  # none guessed into a group

    window.panel.set_text("beach\nforest")  # typed categories wait for the model; nothing becomes Unsure meanwhile
    qtbot.waitUntil(lambda: len(window.model.categories) == 2, timeout=TIMEOUT_MS)
    assert [(g.label, g.count) for g in window.model.groups()][-2:] == [("Unsure", 0), ("Not analysed yet", 3)]

    window.set_sort("name")
    assert [window.model.tile(r).name for r in range(3)] == ["IMG_1.jpg", "IMG_2.jpg", "IMG_10.jpg"]
    window.set_sort("date")
    qtbot.waitUntil(lambda: [window.model.tile(r).name for r in range(3)] == ["IMG_10.jpg", "IMG_1.jpg", "IMG_2.jpg"],
                    timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.thumbnails.pixmap(window.model.photo_id(0)) is not None, timeout=TIMEOUT_MS)

    window.view.setCurrentIndex(window.model.index(0))
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Space)
    preview = window.preview
    assert preview is not None
    qtbot.waitUntil(lambda: preview.image is not None, timeout=TIMEOUT_MS)
    assert (preview.image.width(), preview.image.height()) == (320, 240)
    preview.close()

    assert window.problems_model.rowCount() == 1
    assert window.problems_dialog.table.model().index(0, 0).data() == "empty.jpg"


def test_choosing_a_model_in_settings_analyses_the_browsed_photos(qtbot, make_window, settings, offline,
                                                                  tiny_model: Path, tmp_path: Path) -> None:
    folder = camera_roll(tmp_path / "roll")
    window = make_window(settings.with_changes(model=REPO))
    with qtbot.waitSignal(window.errorShown, timeout=TIMEOUT_MS):
        window.open_folders([str(folder)])
    window.panel.set_text("beach\nforest")

    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS) as done:
        window.apply_engine_choice(str(tiny_model), "cpu", "auto")
    assert done.args[0].indexed == 3 and sum(r.thumbnailed for r in done.args[0].reports) == 0
    qtbot.waitUntil(lambda: window.model.unanalysed_count() == 0, timeout=TIMEOUT_MS)
    groups = {g.label: g.count for g in window.model.groups()}
    assert "Not analysed yet" not in groups and groups["beach"] + groups["forest"] + groups["Unsure"] == 3
    assert "not analysed" not in window.status_label.text()
