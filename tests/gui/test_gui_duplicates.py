"""View ▸ Duplicates: groups side by side with the keeper marked, keys keep and reject, trash, the export checkbox."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from duplicate_photos import blurred, resized_copy, save, scene
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from photosort.core.indexer import PipelineOptions
from photosort.core.rejects import Decision
from photosort.gui.main_window import MainWindow
from photosort.gui.shortcuts_dialog import shortcut_sections

TIMEOUT_MS = 60_000  # a hang guard, not a speed budget
SMALL_BATCHES = PipelineOptions(batch_size=8, decode_threads=2)
T0 = dt.datetime(2024, 5, 1, 10, 0, 0)


@pytest.fixture(scope="module")
def dup_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six unrelated scenes an hour apart, a resized copy of P01 and a blurred copy of P02."""
    root = tmp_path_factory.mktemp("dups")
    for i in range(6):
        save(scene(i), root / f"P{i:02d}.jpg", T0 + dt.timedelta(hours=i))
    save(resized_copy(scene(1)), root / "P01_small.jpg", T0 + dt.timedelta(hours=1), quality=80)
    save(blurred(scene(2)), root / "P02_blurred.jpg", T0 + dt.timedelta(hours=2))
    return root


@pytest.fixture
def photos(dup_photos: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(dup_photos, tmp_path / "photos"))


def names(group) -> list[str]:
    return [Path(p).name for p in group.paths]


def open_duplicates(qtbot, window: MainWindow, root: Path) -> None:
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        window.open_folders([str(root)])
    with qtbot.waitSignal(window.duplicates.view.shown, timeout=TIMEOUT_MS):
        window.duplicates_action.trigger()
    assert window.stack.currentWidget() is window.duplicates.view


def decisions_of(window: MainWindow) -> dict[str, Decision | None]:
    """Every grouped photo's decision as the view shows it (after the worker confirmed it)."""
    return {Path(p.path).name: p.decision for g in window.duplicates.view.groups for p in g.photos}


def stored_decisions(settings, root: Path) -> dict[str, str]:
    """What the core has recorded, asked in a fresh engine (the window's is closed first)."""
    from photosort.core.engine import Engine
    from photosort.core.rejects import decisions

    engine = Engine(settings)
    try:
        library = engine.open_library([str(root)])
        return {Path(library.path_of(pid)).name: d.value for pid, d in decisions(library).items()}
    finally:
        engine.close()


def test_groups_show_their_keeper_and_keys_keep_and_reject(qtbot, make_window, settings, photos: Path) -> None:
    window: MainWindow = make_window()
    open_duplicates(qtbot, window, photos)
    view = window.duplicates.view
    assert [names(g) for g in view.groups] == [["P01.jpg", "P01_small.jpg"], ["P02.jpg", "P02_blurred.jpg"]]
    assert view.counter.text() == "Group 1 of 2"
    assert view.keeper_label.text().startswith("Keep P01.jpg: largest (")
    qtbot.keyClick(view.canvas, Qt.Key.Key_Down)
    assert view.counter.text() == "Group 2 of 2" and view.keeper_label.text().startswith("Keep P02.jpg: sharpest")

    qtbot.keyClick(view.canvas, Qt.Key.Key_Right)  # P02_blurred
    with qtbot.waitSignal(view.shown, timeout=TIMEOUT_MS):
        qtbot.keyClick(view.canvas, Qt.Key.Key_X)
    assert decisions_of(window)["P02_blurred.jpg"] == Decision.REJECT and view.rejected == 1
    with qtbot.waitSignal(view.shown, timeout=TIMEOUT_MS):
        qtbot.keyClick(view.canvas, Qt.Key.Key_K)  # changed my mind: keep the blurred one; it becomes the keeper
    assert decisions_of(window)["P02_blurred.jpg"] == Decision.KEEP
    assert view.current_group().keep_path.endswith("P02_blurred.jpg")
    assert view.keeper_label.text() == "Keep P02_blurred.jpg: you chose to keep it"
    assert decisions_of(window)["P02.jpg"] is None  # the others stay undecided

    qtbot.keyClick(view.canvas, Qt.Key.Key_Up)
    with qtbot.waitSignal(view.shown, timeout=TIMEOUT_MS):
        qtbot.keyClick(view.canvas, Qt.Key.Key_X, Qt.KeyboardModifier.ShiftModifier)  # all but the keeper
    assert decisions_of(window)["P01_small.jpg"] == Decision.REJECT and decisions_of(window)["P01.jpg"] is None
    assert view.counter.text() == "Group 2 of 2"  # and on to the next group

    sheet = dict(shortcut_sections(window, [], [("In the Duplicates view", view.key_actions)]))
    assert ("Reject All but the Keeper", "Shift+X") in sheet["In the Duplicates view"]
    assert ("Duplicates", "Ctrl+D") in sheet["View"]
    qtbot.keyClick(view.canvas, Qt.Key.Key_Escape)
    assert window.stack.currentWidget() is window.grid_page and not window.duplicates_action.isChecked()
    window.close()
    assert stored_decisions(settings, photos) == {"P01_small.jpg": "reject", "P02_blurred.jpg": "keep"}


def test_move_rejected_to_trash_asks_and_goes_through_send2trash(qtbot, monkeypatch, make_window, photos: Path,
                                                                 tmp_path: Path) -> None:
    import send2trash

    bin_ = tmp_path / "trash"
    bin_.mkdir()
    handed: list[str] = []
    monkeypatch.setattr(send2trash, "send2trash", lambda p: handed.append(p) or shutil.move(p, bin_ / Path(p).name))
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda _parent, _title, text, *a: asked.append(text) or QMessageBox.StandardButton.Yes)
    window: MainWindow = make_window()
    open_duplicates(qtbot, window, photos)
    view = window.duplicates.view
    for _group in view.groups:
        with qtbot.waitSignal(view.shown, timeout=TIMEOUT_MS):
            qtbot.keyClick(view.canvas, Qt.Key.Key_X, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: view.rejected == 2, timeout=TIMEOUT_MS)
    assert view.trash_button.isEnabled()

    with qtbot.waitSignal(window.duplicates.trashDone, timeout=TIMEOUT_MS) as done:
        view.trash_button.click()
    assert "Move the 2 photos you rejected to the system's trash?" in asked[0] and "restore" in asked[0]
    assert sorted(Path(p).name for p in handed) == ["P01_small.jpg", "P02_blurred.jpg"]
    assert sorted(p.name for p in bin_.iterdir()) == ["P01_small.jpg", "P02_blurred.jpg"]
    assert done.args[0].startswith("Moved 2 rejected photos to the trash")
    assert window.message_bar.text() == done.args[0]
    qtbot.waitUntil(lambda: window.model.photo_count() == 6, timeout=TIMEOUT_MS)  # the grid lost them
    qtbot.waitUntil(lambda: not view.groups and "No near-duplicates" in view.message.text(), timeout=TIMEOUT_MS)


def test_export_leaves_rejected_photos_out_unless_checked(qtbot, make_window, photos: Path, tmp_path: Path) -> None:
    window: MainWindow = make_window()
    open_duplicates(qtbot, window, photos)
    view = window.duplicates.view
    with qtbot.waitSignal(view.shown, timeout=TIMEOUT_MS):
        qtbot.keyClick(view.canvas, Qt.Key.Key_X, Qt.KeyboardModifier.ShiftModifier)  # rejects P01_small
    window.show_grid()
    with qtbot.waitSignal(window.categoriesApplied, timeout=TIMEOUT_MS):
        window.panel.set_text("scenes\nsky")
    window.open_export_dialog()
    dialog = window.export_dialog
    assert not dialog.include_rejected_check.isChecked()
    with qtbot.waitSignal(dialog.previewShown, timeout=TIMEOUT_MS):
        dialog.destination_edit.setText(str(tmp_path / "out"))
    sources = {m.source.name for m in dialog.plan().moves}
    assert "P01_small.jpg" not in sources and len(sources) == 7
    assert any(p.name == "P01_small.jpg" and why == "rejected as a duplicate" for p, why in dialog.plan().skipped)
    with qtbot.waitSignal(dialog.previewShown, timeout=TIMEOUT_MS):
        dialog.include_rejected_check.setChecked(True)
    assert "P01_small.jpg" in {m.source.name for m in dialog.plan().moves}
    dialog.reject()
