"""The main window as a user drives it: drop a folder, watch it index, type categories, preview, settings.

Everything runs through the real worker thread with the tiny random CLIP, so
the categories a photo lands in are arbitrary; the tests check what a user
would notice (the grid fills, groups match the typed categories, the slider
moves photos to Unsure, errors show in the window) rather than which photo
is a beach.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QSettings, QSize, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox, QToolButton

from photosort.core.config import Settings, read_saved_choices
from photosort.core.engine import Engine
from photosort.core.indexer import PipelineOptions
from photosort.core.userdata import UserStore
from photosort.gui.main_window import MainWindow
from photosort.gui.photo_model import UNSURE, CategoryRole, GroupRole
from photosort.gui.preferences import Preferences
from photosort.gui.shortcuts_dialog import shortcut_sections

TIMEOUT_MS = 60_000  # a hang guard, not a speed budget: a busy machine may take its time
SMALL_BATCHES = PipelineOptions(batch_size=4, decode_threads=2)


def drop(window: MainWindow, *paths: Path) -> bool:
    """Drag ``paths`` over the window and drop them, as a file manager would; True if the drag was accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    centre = window.rect().center()  # QPoint: QDragEnterEvent takes no QPointF before PySide6 6.12
    enter = QDragEnterEvent(centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    if not enter.isAccepted():
        return False
    dropped = QDropEvent(centre, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, dropped)
    return True


def open_and_wait(qtbot, window: MainWindow, folder: Path):
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS) as finished:
        window.open_folders([str(folder)])
    return finished.args[0]


def type_categories(qtbot, window: MainWindow, text: str) -> None:
    with qtbot.waitSignal(window.categoriesApplied, timeout=TIMEOUT_MS):
        window.panel.editor.setPlainText(text)  # the panel's debounce timer sends it


def groups(window: MainWindow) -> dict[str, int]:
    return {g.label: g.count for g in window.model.groups()}


# ---- launch --------------------------------------------------------------------------------------
def test_first_launch_shows_the_empty_state_and_the_usual_menus(make_window) -> None:
    window = make_window()
    assert window.stack.currentWidget() is window.empty_state
    assert window.empty_state.title.text() == "Drop a photo folder here"
    assert window.empty_state.open_button.isVisible()
    assert window.open_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Open)
    assert window.settings_action.shortcut() == QKeySequence("Ctrl+,")
    assert not window.windowIcon().isNull()
    assert window.status_label.text() == "No folder open"


def test_the_app_module_does_not_import_torch() -> None:
    code = "import sys, photosort.gui.app; sys.exit(1 if {'torch', 'transformers'} & set(sys.modules) else 0)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr


# ---- folders and indexing ------------------------------------------------------------------------
def test_dropping_a_folder_indexes_it_and_fills_the_grid(qtbot, qtmodeltester, make_window, make_photos) -> None:
    folder = make_photos(3)  # 15 photos
    window = make_window()
    qtmodeltester.check(window.model)
    batches: list[int] = []
    window.worker.worker.photosAdded.connect(lambda b: batches.append(len(b.ids)))
    progress: list = []
    window.worker.tasks.progress.connect(lambda _task, p: progress.append(p))
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        assert drop(window, folder)
        assert window.busy and window.progress_bar.isVisible() and window.cancel_button.isVisible()
    assert window.model.rowCount() == 15
    assert window.stack.currentWidget() is window.grid_page
    assert [n for n in batches if n] == [4, 4, 4, 3], "photos appear batch by batch as they are indexed"
    assert any(p.phase == "indexing" and p.total == 15 for p in progress)
    assert not window.busy and not window.progress_bar.isVisible()
    assert window.status_label.text().startswith("15 photos")
    qtbot.waitUntil(lambda: len(window.thumbnails) > 0, timeout=TIMEOUT_MS)
    assert str(folder) in window.prefs.recent_folders()


def test_dropping_a_photo_opens_its_folder_and_other_files_are_refused(qtbot, make_window, make_photos,
                                                                      tmp_path: Path) -> None:
    folder = make_photos(1, kinds=("beach",))
    window = make_window()
    note = tmp_path / "notes.txt"
    note.write_text("hello")
    assert not drop(window, note)
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        assert drop(window, folder / "beach" / "beach_000.jpg")
    assert window.model.rowCount() == 1


def test_cancel_stops_after_the_current_batch_and_keeps_it(qtbot, make_window, make_photos) -> None:
    folder = make_photos(8)  # 40 photos, 10 batches
    window = make_window()
    worker = window.worker.worker

    def cancel_on_first_batch(batch) -> None:  # runs in the worker thread, right after a batch is committed
        if len(batch.ids):
            window.worker.cancel()

    worker.photosAdded.connect(cancel_on_first_batch, Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS) as done:
        window.open_folders([str(folder)])
    worker.photosAdded.disconnect(cancel_on_first_batch)
    assert done.args[0].cancelled and done.args[0].indexed == 4
    assert window.model.rowCount() == 4 and not window.busy
    assert "kept" in window.statusBar().currentMessage()
    report = open_and_wait(qtbot, window, folder).reports[0]
    assert (report.unchanged, report.indexed) == (4, 36), "the next run only does the rest"
    assert window.model.rowCount() == 40


def test_add_folder_shows_both_folders_together(qtbot, make_window, make_photos, tmp_path: Path) -> None:
    first = make_photos(1, kinds=("beach", "night"))
    second = make_photos(1, kinds=("forest",), folder=tmp_path / "more")
    window = make_window()
    open_and_wait(qtbot, window, first)
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        window.open_folders([str(second)], replace=False)
    assert window.model.rowCount() == 3
    assert window.windowTitle() == "photos, more — photosort"


def test_the_cancel_button_stops_indexing(qtbot, make_window, make_photos) -> None:
    folder = make_photos(8)
    window = make_window()
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS) as done:
        window.open_folders([str(folder)])
        qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
        assert window.progress_label.text() == "Stopping…"
    assert done.args[0].cancelled
    assert not window.busy and not window.cancel_button.isVisible()
    assert window.model.rowCount() < 40


def test_an_indexed_folder_opens_from_the_cache_and_only_changes_are_indexed(qtbot, make_window,
                                                                           make_photos) -> None:
    folder = make_photos(3)
    window = make_window()
    open_and_wait(qtbot, window, folder)
    first_batch: list[int] = []
    window.worker.worker.photosAdded.connect(lambda b: first_batch.append(len(b.ids)) if not first_batch else None)
    again = open_and_wait(qtbot, window, folder).reports[0]
    assert (again.indexed, again.unchanged) == (0, 15)
    assert first_batch == [15], "every cached photo arrives at once, before indexing"
    changed = folder / "beach" / "beach_000.jpg"
    Image.new("RGB", (50, 40), (1, 2, 3)).save(changed)
    assert open_and_wait(qtbot, window, folder).reports[0].indexed == 1
    assert window.model.rowCount() == 15


# ---- categories ------------------------------------------------------------------------------------
def test_typing_categories_groups_the_grid_live(qtbot, qtmodeltester, make_window, make_photos) -> None:
    folder = make_photos(3)
    window = make_window()
    open_and_wait(qtbot, window, folder)
    qtmodeltester.check(window.model)
    type_categories(qtbot, window, "beach\nforest\nnight")
    assert [c.name for c in window.model.categories] == ["beach", "forest", "night"]
    assert list(groups(window)) == ["All photos", "beach", "forest", "night", "Unsure"]
    assert sum(groups(window).values()) == 2 * 15
    assert window.panel.groups.count() == 5
    ranks = [3 if g == UNSURE else g for g in (window.model.index(r).data(GroupRole) for r in range(15))]
    assert ranks == sorted(ranks), "the grid is grouped by category, Unsure last"
    type_categories(qtbot, window, "city, pets = a photo of a cat or a dog")
    assert list(groups(window)) == ["All photos", "city", "pets", "Unsure"]
    qtbot.waitUntil(lambda: stored_categories(window) == "city, pets = a photo of a cat or a dog", timeout=TIMEOUT_MS)


def stored_categories(window) -> str | None:
    """The typed categories as the user's library (library.db) holds them."""
    with UserStore(window.settings.library_path) as store:
        return store.category_set()


def test_categories_typed_before_indexing_sort_each_new_batch(qtbot, make_window, make_photos) -> None:
    window = make_window()
    type_categories(qtbot, window, "beach, forest")
    scored: list[tuple] = []
    window.worker.worker.photosAdded.connect(lambda b: scored.append((b.categories, b.probabilities.shape)))
    open_and_wait(qtbot, window, make_photos(2))
    indexing = [s for s in scored if s[1][0]]
    assert indexing and all(len(cats) == 2 and shape[1] == 2 for cats, shape in indexing)
    assert all(window.model.index(r).data(CategoryRole) in ("beach", "forest", "") for r in range(10))


def test_the_unsure_slider_moves_photos_in_and_out_of_unsure(qtbot, make_window, make_photos) -> None:
    window = make_window()
    open_and_wait(qtbot, window, make_photos(2))
    type_categories(qtbot, window, "beach, forest")
    window.panel.slider.setValue(100)
    qtbot.waitUntil(lambda: groups(window)["Unsure"] == 10, timeout=TIMEOUT_MS)
    window.panel.slider.setValue(0)
    qtbot.waitUntil(lambda: groups(window)["Unsure"] == 0, timeout=TIMEOUT_MS)
    assert window.prefs.threshold() == 0.0


def test_clicking_a_group_shows_only_its_photos(qtbot, make_window, make_photos) -> None:
    window = make_window()
    open_and_wait(qtbot, window, make_photos(2))
    type_categories(qtbot, window, "beach, forest")
    window.panel.slider.setValue(100)
    qtbot.waitUntil(lambda: groups(window)["Unsure"] == 10, timeout=TIMEOUT_MS)
    window.panel.select_group(UNSURE)
    assert window.model.rowCount() == 10 and window.group_title.text().startswith("Unsure")
    window.panel.select_group(0)
    assert window.model.rowCount() == 0
    window.panel.select_group(None)
    assert window.model.rowCount() == 10


def test_categories_threshold_and_grouping_come_back_on_the_next_launch(qtbot, make_window, prefs: Preferences) -> None:
    window = make_window()
    type_categories(qtbot, window, "beach\nnight")
    window.panel.slider.setValue(70)
    qtbot.waitUntil(lambda: prefs.threshold() == pytest.approx(0.7), timeout=TIMEOUT_MS)
    window.group_action.trigger()  # View ▸ Group by Category off
    window.close()
    again = make_window(preferences=Preferences(QSettings(prefs.store.fileName(), QSettings.Format.IniFormat)))
    qtbot.waitUntil(lambda: again.panel.text() == "beach\nnight", timeout=TIMEOUT_MS)
    assert again.panel.slider.value() == 70
    assert not again.group_action.isChecked() and not again.model.grouped
    qtbot.waitUntil(lambda: [c.name for c in again.model.categories] == ["beach", "night"], timeout=TIMEOUT_MS)


# ---- problems and errors -----------------------------------------------------------------------------
def test_a_broken_file_is_listed_with_its_reason(qtbot, make_window, make_photos) -> None:
    folder = make_photos(1)
    (folder / "x.jpg").write_bytes(b"not a jpeg")
    window = make_window()
    open_and_wait(qtbot, window, folder)
    assert window.model.rowCount() == 5
    assert window.problems_button.isVisible() and window.problems_button.text() == "1 unreadable"
    [(path, reason)] = window.problems_model.problems()
    assert path.endswith("x.jpg") and "not a readable image" in reason
    qtbot.mouseClick(window.problems_button, Qt.MouseButton.LeftButton)
    assert window.problems_dialog.isVisible()
    assert window.problems_dialog.table.model().index(0, 0).data() == "x.jpg"


def test_a_model_that_cannot_load_shows_a_message_not_a_crash(qtbot, make_window, make_photos, settings,
                                                              tmp_path: Path) -> None:
    window = make_window(settings.with_changes(model=str(tmp_path / "no-such-model")))
    with qtbot.waitSignal(window.errorShown, timeout=TIMEOUT_MS):
        window.open_folders([str(make_photos(1))])
    assert window.message_bar.isVisible()
    assert "Model folder not found" in window.message_bar.label.text()
    assert window.message_bar.action_button.text() == "Settings…"
    assert not window.busy
    qtbot.mouseClick(window.message_bar.action_button, Qt.MouseButton.LeftButton)
    assert window.settings_dialog is not None and window.settings_dialog.isVisible()
    window.settings_dialog.reject()


def test_an_unknown_model_id_offline_says_how_to_fix_it(qtbot, make_window, make_photos, settings) -> None:
    window = make_window(settings.with_changes(model="no-such-org/no-such-clip"))
    with qtbot.waitSignal(window.errorShown, timeout=TIMEOUT_MS):
        window.open_folders([str(make_photos(1))])
    text = window.message_bar.label.text()
    assert "cannot be downloaded now" in text and "Settings → Model" in text
    assert window.message_bar.action_button.text() == "Settings…"


def test_a_missing_folder_shows_a_message(qtbot, make_window, tmp_path: Path) -> None:
    window = make_window()
    with qtbot.waitSignal(window.errorShown, timeout=TIMEOUT_MS):
        window.open_folders([str(tmp_path / "gone")])
    assert "Folder not found" in window.message_bar.label.text()
    assert window.message_bar.action_button.text() == "Open Folder…"


def test_unexpected_errors_are_shown_in_a_dialog_and_logged(qtbot, monkeypatch, tmp_path: Path, caplog) -> None:
    import threading

    from photosort.gui.app import install_excepthook

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    reporter = install_excepthook(tmp_path / "photosort.log")
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        sys.excepthook(RuntimeError, exc, exc.__traceback__)
    qtbot.waitUntil(lambda: len(reporter.shown) == 1, timeout=TIMEOUT_MS)
    box = reporter.shown[0]
    assert "RuntimeError: boom" in box.text() and str(tmp_path / "photosort.log") in box.text()
    assert "unexpected error" in caplog.text
    box.close()


# ---- preview, settings, memory ---------------------------------------------------------------------
def test_space_opens_an_upright_preview_and_arrows_step_through(qtbot, make_window, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (160, 80), (200, 40, 40)).save(folder / "a_rotated.jpg", exif=exif)
    Image.new("RGB", (160, 80), (40, 200, 40)).save(folder / "b_plain.jpg")
    window = make_window()
    open_and_wait(qtbot, window, folder)
    window.view.setFocus()
    window.view.setCurrentIndex(window.model.index(0))
    qtbot.keyClick(window.view, Qt.Key.Key_Space)
    preview = window.preview
    assert preview is not None
    qtbot.waitUntil(lambda: preview.image is not None, timeout=TIMEOUT_MS)
    assert preview.windowTitle() == "a_rotated.jpg"
    assert preview.image.height() > preview.image.width(), "EXIF orientation applied"
    with qtbot.waitSignal(preview.imageShown, timeout=TIMEOUT_MS):
        qtbot.keyClick(preview, Qt.Key.Key_Right)
    assert preview.windowTitle() == "b_plain.jpg" and preview.image.width() > preview.image.height()
    preview.close()


def test_double_click_opens_the_preview(qtbot, make_window, make_photos) -> None:
    window = make_window()
    open_and_wait(qtbot, window, make_photos(1))
    centre = window.view.visualRect(window.model.index(2)).center()
    qtbot.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseDClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert window.preview is not None and window.preview.row == 2


def test_mouse_and_keyboard_select_several_photos(qtbot, make_window, make_photos) -> None:
    window = make_window()
    open_and_wait(qtbot, window, make_photos(2))
    view = window.view
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(window.model.index(0)).center())
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     view.visualRect(window.model.index(3)).center())
    qtbot.keyClick(view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert sorted(i.row() for i in view.selectionModel().selectedIndexes()) == [0, 3, 4]
    assert "3 selected" in window.status_label.text()
    qtbot.keyClick(view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert len(view.selectionModel().selectedIndexes()) == 10


def test_settings_are_saved_and_restart_the_engine(qtbot, make_window, make_photos, prefs: Preferences,
                                                   tiny_model: Path, tmp_path: Path) -> None:
    window = make_window()
    folder = make_photos(1)
    open_and_wait(qtbot, window, folder)
    copy = shutil.copytree(tiny_model, tmp_path / "other-model")
    window.open_settings()
    dialog = window.settings_dialog
    assert dialog.cache_label.text() == str(window.settings.cache_path)
    dialog.model_edit.setText(str(copy))
    dialog.precision_combo.setCurrentIndex(dialog.precision_combo.findData("fp32"))
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS) as finished:
        dialog.accept()
    assert read_saved_choices(window.settings.folder) == {"model": str(copy), "device": "cpu", "precision": "fp32"}
    assert Settings.resolve(data_dir=window.settings.folder).model == str(copy), "the CLI uses the same choice"
    assert window.settings.model == str(copy) and window.settings.mode == "fp32"
    assert finished.args[0].reports[0].model == str(copy)
    assert window.model.rowCount() == 5


def test_clear_cache_asks_first_and_keeps_photos(qtbot, monkeypatch, make_window, make_photos) -> None:
    window = make_window()
    folder = make_photos(1)
    open_and_wait(qtbot, window, folder)
    cache_dir = window.settings.cache_path.parent
    (cache_dir / "journals").mkdir()
    window.open_settings()
    dialog = window.settings_dialog
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Cancel)
    qtbot.mouseClick(dialog.clear_button, Qt.MouseButton.LeftButton)
    assert (cache_dir / "cache.db").exists()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(window.worker.worker.cacheCleared, timeout=TIMEOUT_MS) as cleared:
        qtbot.mouseClick(dialog.clear_button, Qt.MouseButton.LeftButton)
    assert {Path(p).name for p in cleared.args[0]} >= {"cache.db"}
    assert (cache_dir / "library.db").exists(), "the user's own data is not the cache"
    assert (cache_dir / "journals").is_dir() and len(list(folder.rglob("*.jpg"))) == 5
    qtbot.waitUntil(lambda: not window.busy and window.model.rowCount() == 5, timeout=TIMEOUT_MS)
    dialog.reject()


def test_geometry_and_recent_folders_are_remembered(qtbot, make_window, make_photos, prefs: Preferences) -> None:
    window = make_window()
    folder = make_photos(1)
    open_and_wait(qtbot, window, folder)
    size = window.minimumSizeHint().expandedTo(window.minimumSize()) + QSize(10, 10)  # within the 800 x 600 screen
    window.resize(size)
    window.close()
    again = make_window(preferences=Preferences(QSettings(prefs.store.fileName(), QSettings.Format.IniFormat)))
    assert again.size() == size
    assert [b.toolTip() for b in again.empty_state.recent_buttons] == [str(folder)]
    with qtbot.waitSignal(again.indexingDone, timeout=TIMEOUT_MS):
        qtbot.mouseClick(again.empty_state.recent_buttons[0], Qt.MouseButton.LeftButton)
    assert again.model.rowCount() == 5


def test_zooming_changes_the_tile_size(qtbot, make_window) -> None:
    window = make_window()
    with qtbot.waitActive(window):
        window.activateWindow()
    before = window.view.tile_px
    qtbot.keyClick(window.view, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert window.view.tile_px > before and window.view.gridSize().height() > window.view.delegate.tile_px
    qtbot.keyClick(window.view, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window.view, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert window.view.tile_px < before


def test_photosort_gui_folder_opens_the_window_and_indexes_it(qtbot, monkeypatch, make_photos, settings) -> None:
    """The command a user types: ``photosort gui FOLDER`` (through the real CLI and run_app)."""
    import logging
    import signal
    import threading

    from PySide6.QtCore import QTimer

    from photosort.cli import main

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # keep pytest's Ctrl-C handler
    ours = logging.getLogger("photosort")
    monkeypatch.setattr(ours, "handlers", list(ours.handlers))  # run_app adds a log file in the tmp cache
    monkeypatch.setattr(ours, "level", ours.level)
    folder = make_photos(2)
    seen: dict[str, object] = {}
    real_init = MainWindow.__init__

    def init_and_watch(window: MainWindow, *args, **kwargs) -> None:  # the window run_app creates
        real_init(window, *args, **kwargs)
        give_up = QTimer(window)  # not an ordering: only so that a broken app fails instead of hanging the run
        give_up.setSingleShot(True)

        def close(reason: str) -> None:
            give_up.stop()
            seen.update(reason=reason, title=window.windowTitle(), rows=window.model.rowCount(), busy=window.busy)
            window.close()

        window.indexingDone.connect(lambda _result: close("indexed"))  # the folder run_app opened is indexed
        give_up.timeout.connect(lambda: close("gave up"))
        give_up.start(120_000)

    monkeypatch.setattr(MainWindow, "__init__", init_and_watch)
    code = main(["gui", str(folder), "--model", str(settings.model), "--device", "cpu",
                 "--cache-dir", str(settings.cache_path.parent)])
    assert code == 0
    assert seen["reason"] == "indexed", "the window never reported the folder indexed"
    assert seen["rows"] == 10 and seen["busy"] is False
    assert seen["title"] == "photos — photosort"
    assert (settings.cache_path.parent / "photosort.log").exists()


# ---- finding photos -------------------------------------------------------------------------------
def test_search_ranks_the_grid_like_the_cli_and_clearing_goes_back(qtbot, make_window, make_photos) -> None:
    folder = make_photos(4)  # 20 photos
    window = make_window()
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        window.open_folders([str(folder)])
    before = [window.model.photo_id(r) for r in range(window.model.rowCount())]
    with qtbot.waitSignal(window.searchShown, timeout=TIMEOUT_MS) as shown:
        window.search_edit.setText("a sandy beach")
        qtbot.keyClick(window.search_edit, Qt.Key.Key_Return)
    engine = Engine(window.settings)
    try:
        expected = engine.open_library([folder]).text_hits("a sandy beach", 200)
    finally:
        engine.close()
    tiles = [window.model.tile(r) for r in range(window.model.rowCount())]
    assert [(t.photo_id, round(t.match, 5)) for t in tiles] == [(pid, round(m, 5)) for pid, m in expected]
    assert window.group_title.text().startswith("Search “a sandy beach”") and shown.args[0].title == "“a sandy beach”"
    window.search_edit.clear()
    assert [window.model.photo_id(r) for r in range(window.model.rowCount())] == before, "back to the view before"
    assert all(window.model.tile(r).match is None for r in range(window.model.rowCount()))


def test_find_similar_from_the_context_menu_leaves_the_photo_itself_out(qtbot, make_window, make_photos) -> None:
    folder = make_photos(4)
    window = make_window()
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        window.open_folders([str(folder)])
    window.view.setCurrentIndex(window.model.index(3))
    photo = window.model.photo_id(3)
    menu = window.context_menu()
    assert {"Find &Similar", "Show in File &Manager", "&Open With Default App", "&Copy Path"} <= {
        a.text() for a in menu.actions()}
    with qtbot.waitSignal(window.searchShown, timeout=TIMEOUT_MS):
        next(a for a in menu.actions() if a.text() == "Find &Similar").trigger()
    shown = [window.model.photo_id(r) for r in range(window.model.rowCount())]
    assert len(shown) == 19 and photo not in shown and window.search_edit.text().startswith("Like ")
    window.view.setCurrentIndex(window.model.index(0))
    next(a for a in window.context_menu().actions() if a.text() == "&Copy Path").trigger()
    assert QGuiApplication.clipboard().text() == window.model.path(window.view.currentIndex().row())
    qtbot.keyClick(window.search_edit, Qt.Key.Key_Escape)
    assert window.model.rowCount() == 20 and not window.model.search_mode

    # From the grid too: the field offers ✕ for what it shows, and Escape in the grid goes back.
    window.view.setCurrentIndex(window.model.index(3))
    with qtbot.waitSignal(window.searchShown, timeout=TIMEOUT_MS):
        window.find_similar()
    [clear] = window.search_edit.findChildren(QToolButton)  # QLineEdit's ✕
    assert clear.isVisible()
    window.view.setFocus()
    qtbot.keyClick(window.view, Qt.Key.Key_Escape)
    assert window.model.rowCount() == 20 and not window.model.search_mode and window.search_edit.text() == ""


def test_an_empty_group_says_what_it_holds_and_how_photos_get_there(qtbot, make_window, make_photos) -> None:
    window = make_window()
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        window.open_folders([str(make_photos(1))])
    with qtbot.waitSignal(window.categoriesApplied, timeout=TIMEOUT_MS):
        window.panel.set_text("beach\nforest\nnight\nsunset\ndocument\ngiraffes")
    window.panel.set_threshold(0.0)  # nothing unsure
    empty = [g for g in window.model.groups() if g.count == 0]
    assert empty, "with a category nothing resembles, and no threshold, some group is empty"
    for group in empty:
        window.panel.select_group(group.key)
        qtbot.waitUntil(lambda k=group.key: window.model.filter == k)
        assert window.model.rowCount() == 0
        text = window.view._empty_text
        assert (text.startswith("No unsure photos") if group.label == "Unsure" else f"“{group.label}”" in text), text


def test_the_shortcut_sheet_lists_the_menus_and_the_grid_keys(qtbot, make_window) -> None:
    window = make_window()
    dialog = window.show_shortcuts()
    sheet = dict(row for _section, rows in shortcut_sections(window, [*window.classifiers.label_actions,
                                                                      window.regroup_action]) for row in rows)
    assert sheet["Open Folder"] == QKeySequence(QKeySequence.StandardKey.Open).toString(
        QKeySequence.SequenceFormat.NativeText)
    assert sheet["Label as class 1"] == "1" and sheet["Regroup Now"] == "R" and "Find" in sheet
    assert dialog.tree.topLevelItemCount() > len(sheet)  # rows plus section headers
    dialog.close()


def test_photos_added_or_removed_behind_its_back_appear_and_disappear(qtbot, make_window, make_photos) -> None:
    folder = make_photos(2)  # 10 photos
    window = make_window()
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        window.open_folders([str(folder)])
    qtbot.waitUntil(lambda: str(folder.resolve()) in window.watcher.folders(), timeout=TIMEOUT_MS)
    new = folder / "beach" / "from_the_phone.jpg"
    Image.new("RGB", (64, 48), (200, 180, 40)).save(new)  # another program adds a photo
    qtbot.waitUntil(lambda: window.model.photo_count() == 11 and not window.busy, timeout=TIMEOUT_MS)
    assert str(new.resolve()) in {window.model.path(r) for r in range(window.model.rowCount())}
    gone = next((folder / "night").glob("*.jpg"))
    gone.unlink()  # ... and deletes one
    qtbot.waitUntil(lambda: window.model.photo_count() == 10 and not window.busy, timeout=TIMEOUT_MS)
    assert str(gone.resolve()) not in {window.model.path(r) for r in range(window.model.rowCount())}
    edited = next((folder / "forest").glob("*.jpg"))
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS) as rescanned:
        Image.new("RGB", (64, 48), (10, 10, 10)).save(edited)  # ... and an editor saves over one, same name
    assert rescanned.args[0].indexed == 1 and window.model.photo_count() == 10


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="these file systems refuse names that are not UTF-8")
def test_a_photo_whose_name_is_not_utf8_shows_readably_and_stays_openable(qtbot, make_window, make_photos) -> None:
    folder = make_photos(1)
    odd = os.path.join(os.fsencode(folder), b"caf\xe9.jpg")
    Image.new("RGB", (64, 48), (30, 90, 200)).save(odd, "JPEG")
    window = make_window()
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        window.open_folders([str(folder)])
    [row] = [r for r in range(window.model.rowCount()) if window.model.tile(r).name == "caf\\xe9.jpg"]
    assert os.fsencode(window.model.path(row)) == os.path.realpath(odd), "the exact bytes, for opening and export"
    assert "caf\\xe9.jpg" in window.model.index(row).data(Qt.ItemDataRole.ToolTipRole)


def test_a_classifier_made_with_the_command_line_appears_in_the_open_window(qtbot, make_window, settings) -> None:
    window = make_window()
    qtbot.waitUntil(lambda: window.worker.worker._library_version is not None, timeout=TIMEOUT_MS)  # it has looked once
    command = Engine(settings)  # what `photosort train` does beside the window, in another connection
    try:
        command.classifiers.create("From the terminal", ["beach", "forest"])
    finally:
        command.close()
    qtbot.waitUntil(lambda: "From the terminal" in [s.name for s in window.classifiers.summaries()], timeout=TIMEOUT_MS)


def test_the_categories_field_says_when_one_is_typed_twice_or_too_few_are_typed(qtbot, make_window) -> None:
    window = make_window()
    panel = window.panel
    height = panel.hint.height()
    panel.set_text("beach")
    assert "With one category ('beach'), every photo goes to it at 100 %" in panel.hint.text()
    panel.set_text("pets = a cat\nforest\nPets = a dog")
    assert "'pets' is typed twice" in panel.hint.text()
    panel.set_text("beach\nforest")
    assert "re-sort as you type" in panel.hint.text() and panel.hint.height() == height  # nothing below moved
