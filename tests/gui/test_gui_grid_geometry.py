"""The grid fills its width at every size, and its thumbnail boxes take the shape of the photos.

Checked on the real view (QListView in a wrapping layout) with a model of photos,
without the worker: the geometry is what a user sees as blank columns or blank bands.
"""

from __future__ import annotations

import numpy as np
import pytest

from photosort.gui.grid_view import MIN_TILE_SHARE, PhotoGridView
from photosort.gui.photo_model import PhotoModel


def photos(model: PhotoModel, n: int, shape: tuple[int, int]) -> None:
    ids = np.arange(n, dtype=np.int64)
    model.add_photos(ids, [f"/photos/IMG_{i}.JPG" for i in range(n)], (), np.zeros((n, 0), np.float32),
                     shapes=dict.fromkeys(ids.tolist(), shape))


@pytest.fixture
def grid(qtbot) -> tuple[PhotoGridView, PhotoModel]:
    model = PhotoModel()
    view = PhotoGridView()
    view.setModel(model)
    model.boxRatioChanged.connect(view.set_box_ratio)
    qtbot.addWidget(view)
    view.show()
    return view, model


def columns_shown(view: PhotoGridView, model: PhotoModel) -> int:
    view.doItemsLayout()
    return len({view.visualRect(model.index(r)).x() for r in range(model.rowCount())})


def test_every_width_is_filled_with_as_many_columns_as_fit(qtbot, grid) -> None:
    view, model = grid
    photos(model, 60, (4000, 3000))
    natural = view.delegate.cell_size(view.font()).width()
    for width in range(2 * natural - 20, 7 * natural, 11):  # exact multiples of a cell included
        view.resize(width, 500)
        qtbot.waitUntil(lambda w=width: view.width() == w)
        room = view.viewport().width()
        columns = columns_shown(view, model)
        cell = view.gridSize().width()
        assert room - columns * cell < columns + 1, f"{width} px: no blank band on the right"
        tile = view.delegate.fitted_tile
        frame = natural - view.tile_px
        assert cell - (tile + frame) < natural / 2, f"{width} px: no wide gaps between the columns"
        assert MIN_TILE_SHARE * view.tile_px <= tile <= view.tile_px, f"{width} px: tiles near the zoom's size"
        centre = view.visualRect(model.index(0)).center().x()
        assert view.visualRect(model.index(0)).width() == cell and abs(centre - cell / 2) <= 1, "tiles centred"


def test_a_landscape_library_gets_landscape_boxes_and_a_portrait_one_square_boxes(qtbot, grid) -> None:
    view, model = grid
    photos(model, 10, (6000, 4000))
    assert model.box_ratio == 0.75
    landscape_cell = view.gridSize().height()
    assert view.delegate.box_height == round(0.75 * view.delegate.fitted_tile)

    portrait = PhotoModel()
    view.setModel(portrait)
    portrait.boxRatioChanged.connect(view.set_box_ratio)
    photos(portrait, 10, (3000, 4000))
    view.set_box_ratio(portrait.box_ratio)
    tile = view.delegate.fitted_tile
    assert portrait.box_ratio == 1.0 and view.gridSize().height() - landscape_cell == tile - round(0.75 * tile)
