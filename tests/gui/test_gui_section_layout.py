"""Folder-header layout arithmetic: every tile has one place, and every place answers with its tile."""

from __future__ import annotations

import numpy as np

from photosort.gui.section_layout import FolderRuns, SectionLayout


def layout_of(counts: list[int], columns: int = 5) -> SectionLayout:
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    runs = FolderRuns(starts, tuple(f"/photos/{k}" for k in range(len(counts))), int(sum(counts)))
    return SectionLayout(runs, columns, cell_width=100, cell_height=120, header_height=30)


def test_every_tile_has_its_own_cell_and_a_point_in_it_finds_it() -> None:
    rng = np.random.default_rng(3)
    layout = layout_of(rng.integers(1, 40, 60).tolist())
    cells = {(c.x, c.y) for c in map(layout.cell, range(layout.runs.rows))}
    assert len(cells) == layout.runs.rows, "no two tiles share a place"
    for row in range(layout.runs.rows):
        cell = layout.cell(row)
        assert layout.row_at(cell.x + 50, cell.y + 60) == row
        assert layout.row_at(cell.x, cell.y) == row and layout.row_at(cell.x + 99, cell.y + 119) == row
    assert layout.height == sum(30 + 120 * -(-n // 5) for n in layout.runs.counts)


def test_a_band_lists_exactly_the_tiles_it_touches() -> None:
    layout = layout_of([7, 2, 11, 1, 5])
    for top in range(-40, layout.height + 40, 17):
        bottom = top + 95
        expected = [r for r in range(layout.runs.rows)
                    if layout.cell(r).y <= bottom and layout.cell(r).y + 119 >= top]
        assert list(layout.rows_between(top, bottom)) == expected, (top, bottom)


def test_headers_and_gaps_are_not_tiles() -> None:
    layout = layout_of([7, 2])
    assert layout.row_at(10, 5) is None and layout.header_at(5) == 0
    assert layout.row_at(2 * 100 + 10, 30 + 120 + 10) is None, "past the end of the beach's short line"
    assert layout.row_at(5 * 100 + 10, 40) is None, "right of the last column"
    second_header = 30 + 2 * 120
    assert layout.header_at(second_header + 3) == 1 and layout.row_at(10, second_header + 3) is None


def test_in_200000_photos_in_500_folders_a_point_finds_its_tile() -> None:
    rng = np.random.default_rng(11)
    layout = layout_of(rng.integers(1, 800, 500).tolist(), columns=7)  # about 200,000 photos
    for row in rng.integers(0, layout.runs.rows, 500):
        cell = layout.cell(int(row))
        assert layout.row_at(cell.x + 1, cell.y + 1) == row
