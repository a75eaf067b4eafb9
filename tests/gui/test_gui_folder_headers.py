"""Folder headers: sorted by folder, each folder starts a new line under its name.

Checked on the real view with a model of photos in three folders: where tiles
are, what a click or a key reaches, what a drag selects, and that labelling
never moves a header or a tile.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QSettings, Qt

from photosort.core.zeroshot import Category
from photosort.gui.grid_view import PhotoGridView
from photosort.gui.photo_model import PhotoModel
from photosort.gui.preferences import Preferences

pytestmark = pytest.mark.gui

FOLDERS = {"/photos/2019 Beach": 7, "/photos/2020 Snow": 2, "/photos/2021 Garden": 11}
CATEGORIES = (Category("beach"), Category("snow"))


def add_photos(model: PhotoModel) -> None:
    paths = [f"{folder}/IMG_{k}.JPG" for folder, n in FOLDERS.items() for k in range(n)]
    ids = np.arange(len(paths), dtype=np.int64)
    rng = np.random.default_rng(7)
    probabilities = rng.dirichlet((1, 1), len(paths)).astype(np.float32)
    model.add_photos(ids, paths, CATEGORIES, probabilities)


@pytest.fixture
def grid(qtbot) -> tuple[PhotoGridView, PhotoModel]:
    model = PhotoModel()
    view = PhotoGridView()
    view.setModel(model)
    view.set_folder_headers(True)
    model.set_sort("folder", grouped=False)
    add_photos(model)
    qtbot.addWidget(view)
    view.resize(4 * view.delegate.cell_size(view.font()).width() + 40, 500)
    view.show()
    qtbot.waitExposed(view)
    return view, model


def folder_of(model: PhotoModel, row: int) -> str:
    return model.path(row).rsplit("/", 1)[0]


def test_each_folder_starts_a_new_line_under_its_header(grid) -> None:
    view, model = grid
    layout = view.sections()
    assert layout is not None and layout.columns == 4
    assert layout.runs.folders == tuple(FOLDERS)
    rects = [view.visualRect(model.index(r)) for r in range(model.rowCount())]
    for row in range(1, model.rowCount()):
        if folder_of(model, row) != folder_of(model, row - 1):
            assert rects[row].x() == 0, "a folder's first photo starts a line"
            assert rects[row].top() >= rects[row - 1].bottom() + layout.header_height, "room for its header"
    snow = [r for r in range(model.rowCount()) if "Snow" in folder_of(model, r)]
    header_y = rects[snow[0]].top() - layout.header_height // 2
    assert not view.indexAt(QPoint(10, header_y)).isValid(), "a header is not a photo"
    for row, rect in enumerate(rects):  # what is drawn where is what a click there reaches
        assert view.indexAt(rect.center()).row() == row


def test_a_click_on_a_header_selects_that_folders_photos(qtbot, grid) -> None:
    view, model = grid
    snow = [r for r in range(model.rowCount()) if "Snow" in folder_of(model, r)]
    header = QPoint(30, view.visualRect(model.index(snow[0])).top() - view.sections().header_height // 2)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=header)
    assert sorted(i.row() for i in view.selectionModel().selectedIndexes()) == snow


def test_arrow_keys_cross_from_one_folder_to_the_next_in_the_same_column(qtbot, grid) -> None:
    view, model = grid
    view.setFocus()
    beach_last_line_second = 4 + 1  # the beach's 7 photos: a line of 4, then 3
    view.setCurrentIndex(model.index(beach_last_line_second))
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert "Snow" in folder_of(model, view.currentIndex().row())
    assert view.currentIndex().row() == 7 + 1, "the snow's second photo, below the beach's"
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert view.currentIndex().row() == 9 + 1, "the snow has one line of 2: on to the garden's"
    qtbot.keyClick(view, Qt.Key.Key_Up)
    qtbot.keyClick(view, Qt.Key.Key_Up)
    assert view.currentIndex().row() == beach_last_line_second


def test_a_drag_across_a_header_selects_the_tiles_it_covers(qtbot, grid) -> None:
    view, model = grid
    start = view.visualRect(model.index(4)).center()  # the beach's second line, first column
    end = view.visualRect(model.index(8)).center()  # the snow's second photo
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(view.viewport(), end)
    qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=end)
    assert sorted(i.row() for i in view.selectionModel().selectedIndexes()) == [4, 5, 7, 8]


def test_labelling_moves_neither_tiles_nor_headers(grid) -> None:
    view, model = grid
    before = [view.visualRect(model.index(r)) for r in range(model.rowCount())]
    model.set_labels({int(model.photo_id(r)): 1 for r in range(0, model.rowCount(), 3)})
    model.set_scores(CATEGORIES, np.arange(model.photo_count()), np.full((model.photo_count(), 2), 0.5, np.float32),
                     keep_positions=True)
    assert [view.visualRect(model.index(r)) for r in range(model.rowCount())] == before


def test_headers_show_only_when_sorted_by_folder_and_wanted(grid) -> None:
    view, model = grid
    assert view.sections() is not None
    model.set_sort("name")
    assert view.sections() is None, "by name, one folder's photos are scattered: no headers"
    model.set_sort("folder")
    view.set_folder_headers(False)
    assert view.sections() is None
    view.doItemsLayout()
    assert view.visualRect(model.index(7)).x() > 0, "without headers the snow follows the beach on its line"


def test_scrolling_to_a_folders_first_photo_shows_its_header(qtbot, grid) -> None:
    view, model = grid
    view.resize(view.width(), 200)
    qtbot.waitUntil(lambda: view.height() == 200)
    garden = 9
    view.scrollTo(model.index(garden), PhotoGridView.ScrollHint.PositionAtTop)
    assert view.visualRect(model.index(garden)).top() == view.sections().header_height
    assert view.visible_rows()[0] == garden


def test_the_window_offers_headers_when_sorted_by_folder_and_remembers_turning_them_off(make_window, prefs) -> None:
    window = make_window()
    window.set_sort("name")
    assert window.headers_action.isChecked() and not window.headers_action.isEnabled()
    window.set_sort("folder")
    assert window.headers_action.isEnabled()
    window.headers_action.trigger()  # View ▸ Folder Headers off
    assert not window.view.folder_headers
    window.close()
    again = make_window(preferences=Preferences(QSettings(prefs.store.fileName(), QSettings.Format.IniFormat)))
    assert not again.headers_action.isChecked() and not again.view.folder_headers
    assert again.headers_action.isEnabled() and again.model.sort_key == "folder"


def test_the_folder_at_the_top_keeps_its_header_pinned_and_it_answers_like_one(qtbot, grid) -> None:
    view, model = grid
    view.resize(view.width(), 200)
    qtbot.waitUntil(lambda: view.height() == 200)
    layout = view.sections()
    garden = 9
    second_line = view.visualRect(model.index(garden + 4))
    view.verticalScrollBar().setValue(view.verticalOffset() + second_line.top() - 5)  # the garden's header is gone
    pinned = QPoint(30, 5)
    assert not view.indexAt(pinned).isValid(), "the pinned header covers the tiles under it"
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pinned)
    assert sorted(i.row() for i in view.selectionModel().selectedIndexes()) == list(range(garden, garden + 11))
    view.setCurrentIndex(model.index(garden + 4))
    view.scrollTo(model.index(garden + 4))
    assert view.visualRect(model.index(garden + 4)).top() >= layout.header_height, "a tile is not hidden under it"


def test_grouped_by_category_a_folder_is_headed_once_per_group_and_labels_move_no_header(grid) -> None:
    view, model = grid
    model.set_scores(CATEGORIES, np.arange(model.photo_count()),
                     np.array([[0.9, 0.1] if k % 2 else [0.1, 0.9] for k in range(model.photo_count())], np.float32))
    model.set_sort("folder", grouped=True)
    runs = view.sections().runs
    assert runs.group_names[:3] == ("beach",) * 3 and runs.group_names[3:] == ("snow",) * 3
    assert runs.folders == tuple(FOLDERS) * 2, "each folder under beach, then each under snow"
    before = [view.visualRect(model.index(r)) for r in range(model.rowCount())]
    model.set_labels({model.photo_id(0): 1, model.photo_id(1): 1})  # two beach photos labelled snow
    assert view.sections().runs is runs or view.sections().runs.starts.tolist() == runs.starts.tolist()
    assert [view.visualRect(model.index(r)) for r in range(model.rowCount())] == before, "nothing moves"
    model.regroup()
    moved = view.sections().runs
    assert sum(moved.counts[:3]) == sum(runs.counts[:3]) - 2, "after Regroup they are headed under snow"


def selected_rows(view: PhotoGridView) -> list[int]:
    return sorted(i.row() for i in view.selectionModel().selectedIndexes())


def test_shift_selects_every_photo_from_the_anchor_in_order_across_folders(qtbot, grid) -> None:
    view, model = grid
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(model.index(2)).center())
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                     view.visualRect(model.index(13)).center())
    assert selected_rows(view) == list(range(2, 14)), "Shift+click: a run of photos, not a rectangle"
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(model.index(5)).center())
    qtbot.keyClick(view, Qt.Key.Key_End, Qt.KeyboardModifier.ShiftModifier)
    assert selected_rows(view) == list(range(5, model.rowCount())), "Shift+End: from the anchor to the last"


def test_a_drag_that_starts_on_a_header_selects_only_that_folder(qtbot, grid) -> None:
    view, model = grid
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(model.index(1)).center())
    header = QPoint(30, view.visualRect(model.index(9)).top() - view.sections().header_height // 2)
    qtbot.mousePress(view.viewport(), Qt.MouseButton.LeftButton, pos=header)
    qtbot.mouseMove(view.viewport(), view.visualRect(model.index(14)).center())
    qtbot.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(model.index(14)).center())
    assert selected_rows(view) == list(range(9, 20)), "the garden's photos, nothing from the earlier click"


def test_a_click_on_the_pinned_header_selects_the_folder_and_scrolls_nowhere(qtbot, grid) -> None:
    view, model = grid
    view.resize(view.width(), 200)
    qtbot.waitUntil(lambda: view.height() == 200)
    view.verticalScrollBar().setValue(view.verticalOffset() + view.visualRect(model.index(13)).top() - 5)
    scrolled = view.verticalScrollBar().value()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, QPoint(30, 5))
    assert view.verticalScrollBar().value() == scrolled
    assert selected_rows(view) == list(range(9, 20))
    assert view.currentIndex().row() in view.visible_rows(), "the arrow keys go on from a photo on screen"


def test_zooming_keeps_the_photo_at_the_top_of_the_view_there(qtbot, grid) -> None:
    view, model = grid
    view.resize(view.width(), 300)
    qtbot.waitUntil(lambda: view.height() == 300)
    view.scrollTo(model.index(13), PhotoGridView.ScrollHint.PositionAtTop)
    top = view.visible_rows()[0]
    view.set_tile_size(112)
    assert view.visible_rows()[0] == top
    view.set_folder_headers(False)
    view.scrollTo(model.index(13), PhotoGridView.ScrollHint.PositionAtTop)
    top = view.visible_rows()[0]
    view.set_tile_size(224)
    assert view.visible_rows()[0] <= top < view.visible_rows()[-1], "without headers too"
