"""The large preview on its own: where you are, 100 % and fit, label keys, what the caption says, the grid kept in step.

The dialog is opened on a :class:`PhotoModel` filled directly (no worker, no model), with JPEGs written by Pillow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QItemSelectionModel, QPoint, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QListView, QWidget

from photosort.core.zeroshot import Category
from photosort.gui.photo_model import NOT_ANALYSED, PhotoModel, Tile
from photosort.gui.preview import ACTUAL, FIT, PreviewDialog, describe_tile

TIMEOUT_MS = 60_000  # a hang guard, not a speed budget: a busy machine may take its time
CLASSES = (Category("beach"), Category("city"), Category("hiking"))
COLOURS = ((200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40))

OpenPreview = Callable[..., PreviewDialog]


def write_photos(folder: Path, sizes: Sequence[tuple[int, int]]) -> list[str]:
    """JPEGs named p0.jpg, p1.jpg, ... (the model's name order), one plain colour each."""
    folder.mkdir(exist_ok=True)
    paths = []
    for k, size in enumerate(sizes):
        path = folder / f"p{k}.jpg"
        Image.new("RGB", size, COLOURS[k % len(COLOURS)]).save(path, quality=90)
        paths.append(str(path))
    return paths


def make_model(paths: list[str], best: Sequence[int] | None = None, labels: dict[int, int] | None = None,
               analysed: Sequence[bool] | None = None) -> PhotoModel:
    """Photo ids 0..n-1 in path order, each predicted as ``best[i]`` with 80 % (none given: all beach)."""
    n = len(paths)
    probs = np.full((n, len(CLASSES)), 0.1, np.float32)
    probs[np.arange(n), list(best) if best is not None else [0] * n] = 0.8
    model = PhotoModel()
    model.set_scores(CLASSES, np.zeros(0, np.int64), np.zeros((0, len(CLASSES)), np.float32), labels=labels or {})
    model.add_photos(np.arange(n, dtype=np.int64), paths, CLASSES, probs,
                     analysed=None if analysed is None else np.array(analysed, bool))
    model.set_sort("name", grouped=False)
    return model


@pytest.fixture
def open_preview(qtbot) -> OpenPreview:
    """open_preview(model, row, actions=()): the dialog shown, active and holding the focus, its photo loaded."""

    def make(model: PhotoModel, row: int, actions: Sequence[QAction] = ()) -> PreviewDialog:
        dialog = PreviewDialog(model, row, actions=actions)
        qtbot.addWidget(dialog)
        dialog.resize(600, 450)  # smaller than the 1600 px photo at 100 %, at a device pixel ratio of 2 too
        with qtbot.waitExposed(dialog):
            dialog.show()
        dialog.activateWindow()
        qtbot.waitUntil(lambda: QApplication.focusWidget() is dialog, timeout=TIMEOUT_MS)
        qtbot.waitUntil(lambda: dialog.image is not None or dialog.area.label.text() != "Loading…", timeout=TIMEOUT_MS)
        return dialog

    return make


def step(qtbot, dialog: PreviewDialog, key: Qt.Key) -> int:
    """Press an arrow (or Home, End); the row the preview says it moved to."""
    with qtbot.waitSignal(dialog.rowShown, timeout=TIMEOUT_MS) as shown:
        qtbot.keyClick(dialog, key)
    qtbot.waitUntil(lambda: dialog.image is not None, timeout=TIMEOUT_MS)
    return shown.args[0]


def test_the_caption_says_where_the_photo_is_among_the_rows_shown(qtbot, open_preview: OpenPreview,
                                                                   tmp_path: Path) -> None:
    model = make_model(write_photos(tmp_path / "photos", [(64, 48)] * 4), best=[0, 1, 0, 2])
    dialog = open_preview(model, 1)
    assert dialog.caption.text().startswith("2 of 4  ·  p1.jpg")
    assert dialog.windowTitle() == "p1.jpg"
    assert step(qtbot, dialog, Qt.Key.Key_Right) == 2 and dialog.caption.text().startswith("3 of 4")
    assert step(qtbot, dialog, Qt.Key.Key_End) == 3 and dialog.caption.text().startswith("4 of 4  ·  p3.jpg")
    with qtbot.assertNotEmitted(dialog.rowShown):
        qtbot.keyClick(dialog, Qt.Key.Key_Right)  # the last photo: nowhere further to go
    assert step(qtbot, dialog, Qt.Key.Key_Left) == 2

    model.set_filter(0)  # the grid shows the beach photos only: p0 and p2
    assert dialog.caption.text().startswith("2 of 2  ·  p2.jpg"), "the position among the rows the grid shows now"
    assert dialog.row == 1
    model.set_filter(1)
    assert dialog.caption.text().startswith("not in the grid now (1 shown)  ·  p2.jpg")


def test_a_label_shows_as_the_users_label_and_the_caption_follows_labels(qtbot, open_preview: OpenPreview,
                                                                         tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "photos", [(64, 48)] * 3)
    model = make_model(paths, best=[0, 1, 2], labels={2: 0}, analysed=[True, True, False])
    dialog = open_preview(model, 0)
    assert dialog.caption.text() == "1 of 3  ·  p0.jpg  ·  beach · 80%", "unlabelled: the prediction and its confidence"
    model.set_labels({0: 1})  # a label key in the window
    assert dialog.caption.text() == "1 of 3  ·  p0.jpg  ·  ✓ city (your label)"
    assert "%" not in dialog.caption.text() and "beach" not in dialog.caption.text()
    model.set_labels({0: None})  # undone
    assert dialog.caption.text().endswith("beach · 80%")
    step(qtbot, dialog, Qt.Key.Key_End)
    assert dialog.caption.text().endswith("p2.jpg  ·  ✓ beach (your label)"), "a label wins, even before analysis"
    model.set_labels({2: None})
    assert dialog.caption.text().endswith("p2.jpg  ·  Not analysed yet")


def test_describe_tile_in_every_state() -> None:
    assert describe_tile(Tile(1, "a.jpg", "beach", 0, 0.93, label="city"), True) == "✓ city (your label)"
    assert describe_tile(Tile(1, "a.jpg", "beach", 0, 0.93), True) == "beach · 93%"
    assert describe_tile(Tile(1, "a.jpg", None, -1, 0.83), True) == "Unsure · 83%"
    assert describe_tile(Tile(1, "a.jpg", None, NOT_ANALYSED, 0.0), True) == "Not analysed yet"
    assert describe_tile(Tile(1, "a.jpg", None, -1, 0.0), False) == "", "no categories: nothing to say"


def test_z_ctrl_digits_and_a_double_click_switch_between_fit_and_100_percent(qtbot, open_preview: OpenPreview,
                                                                             tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "photos", [(1600, 1200), (1200, 1600)])
    dialog = open_preview(make_model(paths), 0)
    area, label = dialog.area, dialog.area.label
    dpr = dialog.devicePixelRatioF()
    assert dialog.zoom == FIT and dialog.full_image is None, "fitted: the screen-sized image, no full decode"
    assert max(dialog.image.width(), dialog.image.height()) < 1600
    fitted = label.pixmap().deviceIndependentSize()
    assert fitted.width() <= area.viewport().width() and fitted.height() <= area.viewport().height()
    assert area.horizontalScrollBar().maximum() == 0 and area.verticalScrollBar().maximum() == 0

    qtbot.keyClick(dialog, Qt.Key.Key_Z)
    assert dialog.zoom == ACTUAL and dialog.actual_button.isChecked()
    qtbot.waitUntil(lambda: dialog.full_image is not None, timeout=TIMEOUT_MS)
    assert (dialog.full_image.width(), dialog.full_image.height()) == (1600, 1200), "the original's pixels"
    assert (label.width(), label.height()) == (math.ceil(1600 / dpr), math.ceil(1200 / dpr))
    assert label.pixmap().devicePixelRatio() == dpr, "one photo pixel per device pixel"
    assert area.horizontalScrollBar().maximum() == label.width() - area.viewport().width() > 0, "it scrolls"
    bars = (area.horizontalScrollBar(), area.verticalScrollBar())
    qtbot.waitUntil(lambda: all(abs(bar.value() - bar.maximum() / 2) <= 1 for bar in bars), timeout=TIMEOUT_MS)

    qtbot.keyClick(dialog, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert dialog.zoom == FIT and dialog.fit_button.isChecked()
    assert label.size() == area.viewport().size() and area.horizontalScrollBar().maximum() == 0
    qtbot.keyClick(dialog, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert dialog.zoom == ACTUAL and label.width() == math.ceil(1600 / dpr), "the full image is kept for the photo"
    qtbot.waitUntil(lambda: all(abs(bar.value() - bar.maximum() / 2) <= 1 for bar in bars), timeout=TIMEOUT_MS)
    before = (bars[0].value(), bars[1].value())
    grab = label.mapFromGlobal(area.viewport().mapToGlobal(area.viewport().rect().center()))
    qtbot.mousePress(label, Qt.MouseButton.LeftButton, pos=grab)
    qtbot.mouseMove(label, grab + QPoint(-100, -50))
    qtbot.mouseRelease(label, Qt.MouseButton.LeftButton, pos=grab + QPoint(-100, -50))
    assert (bars[0].value(), bars[1].value()) == (before[0] + 100, before[1] + 50), "dragging pans the photo"

    qtbot.mouseDClick(label, Qt.MouseButton.LeftButton, pos=QPoint(10, 10))
    assert dialog.zoom == FIT, "a double-click on the photo toggles"
    shown = label.pixmap().deviceIndependentSize()  # fitted and centred: double-click its bottom right corner
    corner = QPoint(int((label.width() + shown.width()) / 2) - 2, int((label.height() + shown.height()) / 2) - 2)
    qtbot.mouseDClick(label, Qt.MouseButton.LeftButton, pos=corner)
    assert dialog.zoom == ACTUAL

    def at_the_corner() -> bool:  # the spot clicked stays under the pointer
        return all(bar.maximum() > 0 and 0 <= bar.maximum() - bar.value() <= 5 for bar in bars)

    qtbot.waitUntil(at_the_corner, timeout=TIMEOUT_MS)

    step(qtbot, dialog, Qt.Key.Key_Right)  # at 100 %, the next photo comes at 100 % too
    qtbot.waitUntil(lambda: dialog.full_image is not None, timeout=TIMEOUT_MS)
    assert dialog.zoom == ACTUAL and (label.width(), label.height()) == (math.ceil(1200 / dpr), math.ceil(1600 / dpr))
    qtbot.mouseClick(dialog.fit_button, Qt.MouseButton.LeftButton)
    assert dialog.zoom == FIT and QApplication.focusWidget() is dialog, "the buttons leave the keys to the dialog"


def test_a_small_photo_needs_no_second_decode_and_100_percent_is_upright(qtbot, open_preview: OpenPreview,
                                                                          tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways; the camera says "rotate 90° clockwise to view"
    path = tmp_path / "rotated.jpg"
    Image.new("RGB", (160, 80), (200, 40, 40)).save(path, exif=exif)
    dialog = open_preview(make_model([str(path)]), 0)
    assert (dialog.image.width(), dialog.image.height()) == (80, 160), "EXIF orientation applied"
    dialog.set_zoom(ACTUAL)
    assert dialog.full_image is dialog.image, "the screen-sized image already holds every pixel"
    assert dialog.area.label.pixmap().deviceIndependentSize().toSize().height() == math.ceil(160 / dialog.devicePixelRatioF())


def test_the_windows_label_keys_fire_in_the_preview_and_zoom_keys_do_not_clash(qtbot, open_preview: OpenPreview,
                                                                               tmp_path: Path) -> None:
    grid = QWidget()  # stands for the window's grid, which owns the label actions (keys of that widget only)
    qtbot.addWidget(grid)
    label_one = QAction("Label as class 1", grid)
    label_one.setShortcut(QKeySequence("1"))
    unlabel = QAction("Remove Label", grid)
    unlabel.setShortcuts([QKeySequence("0"), QKeySequence(Qt.Key.Key_Backspace)])
    for action in (label_one, unlabel):
        action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        grid.addAction(action)
    dialog = open_preview(make_model(write_photos(tmp_path / "photos", [(64, 48)] * 2)), 0, [label_one, unlabel])

    with qtbot.waitSignal(label_one.triggered, timeout=TIMEOUT_MS):
        qtbot.keyClick(dialog, Qt.Key.Key_1)
    with qtbot.waitSignal(unlabel.triggered, timeout=TIMEOUT_MS):
        qtbot.keyClick(dialog, Qt.Key.Key_Backspace)
    with qtbot.waitSignal(unlabel.triggered, timeout=TIMEOUT_MS):
        qtbot.keyClick(dialog, Qt.Key.Key_0)
    assert dialog.zoom == FIT, "bare digits are label keys, never zoom keys"
    with qtbot.assertNotEmitted(label_one.triggered):
        qtbot.keyClick(dialog, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert dialog.zoom == ACTUAL

    dialog.set_actions([])
    with qtbot.assertNotEmitted(label_one.triggered):
        qtbot.keyClick(dialog, Qt.Key.Key_1)


def test_the_grid_and_the_preview_stay_on_one_photo_so_a_label_key_labels_the_photo_shown(
        qtbot, open_preview: OpenPreview, tmp_path: Path) -> None:
    model = make_model(write_photos(tmp_path / "photos", [(64, 48)] * 4), best=[1, 1, 1, 1])
    view = QListView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
    selection = view.selectionModel()

    def label_selection_as_beach() -> None:
        """What the window's label key does: label the selected photos, then select the next (auto-advance)."""
        model.set_labels({model.photo_id(i.row()): 0 for i in selection.selectedIndexes()})
        below = model.index(view.currentIndex().row() + 1)
        if below.isValid():
            selection.setCurrentIndex(below, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    label_one = QAction("Label as class 1", view)
    label_one.setShortcut(QKeySequence("1"))
    label_one.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
    label_one.triggered.connect(label_selection_as_beach)
    view.addAction(label_one)
    selection.select(model.index(3), QItemSelectionModel.SelectionFlag.Select)  # another photo selected before
    dialog = open_preview(model, 1, [label_one])
    dialog.follow_view(view)
    assert view.currentIndex().row() == 1 and [i.row() for i in selection.selectedIndexes()] == [1]

    assert step(qtbot, dialog, Qt.Key.Key_Right) == 2
    assert view.currentIndex().row() == 2 and [i.row() for i in selection.selectedIndexes()] == [2]
    with qtbot.waitSignal(dialog.rowShown, timeout=TIMEOUT_MS) as moved:
        qtbot.keyClick(dialog, Qt.Key.Key_1)
    assert model.labels() == {2: 0}, "the photo shown was labelled, not the one selected before the preview"
    assert moved.args == [3] and dialog.caption.text().startswith("4 of 4"), "the preview follows the grid on"
    step(qtbot, dialog, Qt.Key.Key_Left)
    assert dialog.caption.text() == "3 of 4  ·  p2.jpg  ·  ✓ beach (your label)"

    with qtbot.waitSignal(dialog.rowShown, timeout=TIMEOUT_MS) as followed:
        view.setCurrentIndex(model.index(0))  # a click in the grid
    assert followed.args == [0] and dialog.row == 0


def test_a_photo_that_cannot_be_read_says_why_and_escape_closes(qtbot, open_preview: OpenPreview,
                                                               tmp_path: Path) -> None:
    paths = write_photos(tmp_path / "photos", [(64, 48)])
    broken = tmp_path / "photos" / "p1.jpg"
    broken.write_bytes(b"not a jpeg" * 20)
    dialog = open_preview(make_model([*paths, str(broken)]), 1)
    assert "cannot show p1.jpg" in dialog.area.label.text() and dialog.image is None
    dialog.set_zoom(ACTUAL)
    qtbot.waitUntil(lambda: "cannot show p1.jpg" in dialog.area.label.text(), timeout=TIMEOUT_MS)
    assert step(qtbot, dialog, Qt.Key.Key_Left) == 0
    with qtbot.waitSignal(dialog.finished, timeout=TIMEOUT_MS):
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert not dialog.isVisible()
