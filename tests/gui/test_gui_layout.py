"""The window's date order and the export dialog's folder layout, as a user meets them.

Dates come from EXIF written with Pillow (``DateTimeOriginal``) or, for photos
without it, from the file time; they reach the grid from the worker thread
with the photos. The layout field checks the template as it is typed and says
what is wrong under it, never in a modal dialog.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from photo_factory import draw_photo
from PIL import Image
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QMessageBox

from photosort.core.capture import DATE_TIME_ORIGINAL, EXIF_IFD
from photosort.core.config import Settings
from photosort.core.engine import Engine
from photosort.core.indexer import PipelineOptions
from photosort.gui.main_window import MainWindow
from photosort.gui.preferences import Preferences

TIMEOUT_MS = 60_000  # a hang guard, not a speed budget
SMALL_BATCHES = PipelineOptions(batch_size=4, decode_threads=2)
NOON = 12 * 3600


def save(path: Path, seed: int, taken: str | None = None, file_time: float | None = None) -> None:
    exif = Image.Exif()
    if taken:
        exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] = taken
    draw_photo("beach", (48, 36), seed=seed).save(path, "JPEG", exif=exif.tobytes())
    if file_time is not None:
        os.utime(path, (file_time, file_time))


@pytest.fixture
def dated_folder(tmp_path: Path) -> Path:
    """Four photos whose names run against their dates: two with EXIF, two known only by their file time."""
    folder = tmp_path / "photos"
    folder.mkdir()
    save(folder / "z.jpg", 1, taken="2018:05:01 10:00:00")
    save(folder / "a.jpg", 2, file_time=1_560_000_000 + NOON)  # June 2019
    save(folder / "m.jpg", 3, taken="2021:02:03 04:05:06")
    save(folder / "b.jpg", 4, file_time=1_590_000_000 + NOON)  # May 2020
    return folder


def open_folder(qtbot, window: MainWindow, folder: Path) -> None:
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        window.open_folders([str(folder)])


def names_in_grid(window: MainWindow) -> list[str]:
    return [window.model.tile(row).name for row in range(window.model.rowCount())]


@pytest.fixture(autouse=True)
def no_modal_dialogs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anything here that would open a message box fails the test instead of hanging it."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("a modal dialog was opened")

    for name in ("critical", "warning", "information", "question"):
        monkeypatch.setattr(QMessageBox, name, refuse)


def test_the_grid_sorts_by_date_taken_capture_time_else_file_time(qtbot, make_window, dated_folder: Path) -> None:
    window = make_window()
    open_folder(qtbot, window, dated_folder)
    qtbot.waitUntil(lambda: window.model.rowCount() == 4, timeout=TIMEOUT_MS)
    assert names_in_grid(window) == ["a.jpg", "b.jpg", "m.jpg", "z.jpg"]

    [action] = [a for a in window.sort_actions.actions() if a.data() == "date"]
    assert action.text().replace("&", "") == "Date Taken"
    action.trigger()

    assert names_in_grid(window) == ["z.jpg", "a.jpg", "b.jpg", "m.jpg"], "2018 (EXIF), 2019, 2020 (files), 2021"
    assert window.sort_combo.currentData() == "date" and window.prefs.sort_key() == "date"
    window.sort_combo.setCurrentIndex(window.sort_combo.findData("name"))
    assert names_in_grid(window) == ["a.jpg", "b.jpg", "m.jpg", "z.jpg"]


def test_a_reopened_window_sorts_by_date_again(qtbot, make_window, dated_folder: Path, prefs: Preferences) -> None:
    prefs.set_sort_key("date")
    window = make_window()
    open_folder(qtbot, window, dated_folder)
    qtbot.waitUntil(lambda: names_in_grid(window) == ["z.jpg", "a.jpg", "b.jpg", "m.jpg"], timeout=TIMEOUT_MS)


def test_dates_read_after_the_photos_were_shown_reorder_the_grid(qtbot, make_window, dated_folder: Path,
                                                                  settings: Settings, prefs: Preferences) -> None:
    """A cache from before capture dates were kept: the grid shows its photos at once (by file time), and the
    dates the next indexing reads reach it afterwards."""
    engine = Engine(settings)
    engine.index(str(dated_folder))
    engine.close()
    with closing(sqlite3.connect(settings.cache_path)) as conn, conn:
        conn.execute("UPDATE photos SET taken = NULL, camera = NULL, facts_read = 0")
    prefs.set_sort_key("date")
    window = make_window()
    open_folder(qtbot, window, dated_folder)
    qtbot.waitUntil(lambda: names_in_grid(window) == ["z.jpg", "a.jpg", "b.jpg", "m.jpg"], timeout=TIMEOUT_MS)


# ---- the export dialog's layout --------------------------------------------------------------------
@pytest.fixture
def export_dialog(qtbot, make_window, dated_folder: Path, tmp_path: Path):
    window = make_window()
    open_folder(qtbot, window, dated_folder)
    with qtbot.waitSignal(window.categoriesApplied, timeout=TIMEOUT_MS):
        window.panel.editor.setPlainText("beach")  # one category: every photo is a beach at any threshold
    window.open_export_dialog()
    dialog = window.export_dialog
    dialog.destination_edit.setText(str(tmp_path / "sorted"))
    qtbot.waitUntil(lambda: dialog.plan() is not None, timeout=TIMEOUT_MS)
    return window, dialog


def set_layout(qtbot, dialog, template: str) -> None:
    with qtbot.waitSignal(dialog.previewShown, timeout=TIMEOUT_MS):
        dialog.layout_combo.setEditText(template)


def test_the_layout_field_offers_presets_and_previews_where_photos_go(qtbot, export_dialog, tmp_path: Path) -> None:
    window, dialog = export_dialog
    assert dialog.layout_template() == "{category}" and dialog.preview_counts() == {"beach": 4}
    presets = [dialog.layout_combo.itemText(i) for i in range(dialog.layout_combo.count())]
    assert presets == ["Category", "Category / Year", "Category / Year / Month", "Year / Month / Category"]

    with qtbot.waitSignal(dialog.previewShown, timeout=TIMEOUT_MS):
        dialog.layout_combo.activated.emit(dialog.layout_combo.findText("Category / Year"))  # as a click on it
    assert dialog.layout_template() == "{category}/{year}"
    assert dialog.preview_counts() == {"beach/2018": 1, "beach/2019": 1, "beach/2020": 1, "beach/2021": 1}
    preview = dialog.layout_preview.text().splitlines()
    assert len(preview) == 4 and preview[-1] == "… and 1 photo more"
    assert all(" → beach/20" in line for line in preview[:3])
    assert not (tmp_path / "sorted").exists(), "a preview writes nothing"

    with qtbot.waitSignal(dialog.summaryShown, timeout=TIMEOUT_MS):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    written = sorted(p.relative_to(tmp_path / "sorted").as_posix() for p in (tmp_path / "sorted").rglob("*.jpg"))
    assert written == ["beach/2018/z.jpg", "beach/2019/a.jpg", "beach/2020/b.jpg", "beach/2021/m.jpg"]
    assert "beach/2018: 1 photo" in dialog.folders_label.text()
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert window.prefs.export_layout() == "{category}/{year}", "remembered for next time"


def test_a_bad_layout_is_said_under_the_field_and_nothing_can_be_exported(qtbot, export_dialog) -> None:
    window, dialog = export_dialog
    set_layout(qtbot, dialog, "{category}/{yaer}")
    assert dialog.layout_error.isVisible()
    assert "Unknown placeholder {yaer}" in dialog.layout_error.text() and "{year}" in dialog.layout_error.text()
    assert not dialog.export_button.isEnabled() and dialog.preview_counts() == {}

    set_layout(qtbot, dialog, "{year}/{month}/{category}")
    assert not dialog.layout_error.isVisible() and dialog.export_button.isEnabled()
    assert set(dialog.preview_counts()) == {"2018/05/beach", "2019/06/beach", "2020/05/beach", "2021/02/beach"}

    set_layout(qtbot, dialog, "{category}//")
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert window.prefs.export_layout() == "{category}", "a layout that does not work is not remembered"


def test_a_saved_layout_that_no_longer_parses_gives_the_default(tmp_path: Path) -> None:
    prefs = Preferences(QSettings(str(tmp_path / "p.ini"), QSettings.Format.IniFormat))
    prefs.store.setValue("export/layout", "{nope}")
    assert prefs.export_layout() == "{category}"
