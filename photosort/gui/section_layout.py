"""Where tiles go when the grid shows folder headers: each folder starts a new row under its own header.

Qt's list view lays out one uniform flow and cannot break a row for a header,
so the grid does this arithmetic itself while headers are shown. It is
numpy over the folders (a few hundred), never a Python loop over the photos:
finding the tile at a point or the rectangle of a row is a binary search,
so a 200,000-photo library scrolls and hit-tests as fast as without headers.
Rows (the model's) stay photos: headers are drawn in gaps, not inserted as
items, so selection, labelling and thumbnails never see them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FolderRuns:
    """Where each folder's run of rows starts, in the grid's current order, and the folder it is."""

    starts: np.ndarray  # first row of each run, ascending, starting at 0
    folders: tuple[str, ...]  # the folder of each run, as a person reads it
    rows: int  # rows in all
    group_names: tuple[str, ...] = ()  # grouped by category, all groups shown: each run's group ("": not said)
    groups: tuple[int, ...] = ()  # and that group (category index, or Unsure / not analysed), for its colour

    @property
    def counts(self) -> np.ndarray:
        return np.diff(np.append(self.starts, self.rows))


@dataclass(frozen=True)
class Cell:
    """A tile's place in content coordinates (the whole grid, not the scrolled viewport)."""

    x: int
    y: int
    column: int
    line: int  # the visual row within the run


class SectionLayout:
    """Tiles in runs, each run under a header; cells of one size, ``columns`` to a line."""

    def __init__(self, runs: FolderRuns, columns: int, cell_width: int, cell_height: int, header_height: int) -> None:
        self.runs = runs
        self.columns = max(1, columns)
        self.cell_width, self.cell_height, self.header_height = cell_width, cell_height, header_height
        self.lines = -(-runs.counts // self.columns)  # visual rows of each run
        heights = header_height + self.lines * cell_height
        self.tops = np.concatenate([[0], np.cumsum(heights)[:-1]]).astype(np.int64)  # each header's top
        self.height = int(heights.sum())

    def run_of(self, row: int) -> int:
        return int(np.searchsorted(self.runs.starts, row, side="right") - 1)

    def cell(self, row: int) -> Cell:
        run = self.run_of(row)
        k = row - int(self.runs.starts[run])
        line, column = divmod(k, self.columns)
        return Cell(column * self.cell_width, int(self.tops[run]) + self.header_height + line * self.cell_height,
                    column, line)

    def header_at(self, y: int) -> int | None:
        """The run whose header is at content height ``y``, or None."""
        run = self._run_at(y)
        if run is None:
            return None
        return run if y < self.tops[run] + self.header_height else None

    def row_at(self, x: int, y: int) -> int | None:
        """The row whose cell holds the content point (x, y); None over a header, a gap or past the end."""
        run = self._run_at(y)
        if run is None or x < 0 or x >= self.columns * self.cell_width:
            return None
        inside = y - int(self.tops[run]) - self.header_height
        if inside < 0:
            return None
        k = (inside // self.cell_height) * self.columns + x // self.cell_width
        return int(self.runs.starts[run]) + k if k < self.runs.counts[run] else None

    def rows_between(self, top: int, bottom: int) -> range:
        """Rows whose cells reach into the content band top..bottom (inclusive), in order."""
        lines = self.lines_between(top, bottom)
        if not lines:
            return range(0)
        (first_run, first_line), (last_run, last_line) = lines[0], lines[-1]
        stop = self.line_start(last_run, last_line) + self.line_length(last_run, last_line)
        return range(self.line_start(first_run, first_line), stop)

    def lines_between(self, top: int, bottom: int) -> list[tuple[int, int]]:
        """The (run, line) of every visual row of tiles reaching into the content band top..bottom."""
        first, last = self._run_at(max(top, 0)), self._run_at(min(bottom, self.height - 1))
        if first is None or last is None:
            return []
        out = []
        for run in range(first, last + 1):
            base = int(self.tops[run]) + self.header_height
            low = max(0, (top - base) // self.cell_height)
            high = min(int(self.lines[run]) - 1, (bottom - base) // self.cell_height)
            out += [(run, line) for line in range(low, high + 1)]
        return out

    def runs_between(self, top: int, bottom: int) -> range:
        """The runs (headers and tiles) reaching into the content band top..bottom."""
        if not len(self.tops):
            return range(0)
        first = self._run_at(max(0, min(top, self.height - 1)))
        last = self._run_at(max(0, min(bottom, self.height - 1)))
        return range(first, last + 1) if first is not None and last is not None else range(0)

    def pinned_header(self, offset: int) -> tuple[int, int] | None:
        """Scrolled to ``offset``: the run at the top whose own header has gone up out of view, and where its
        header stays pinned (its top in the viewport: 0, or above it while the next run's header pushes it out)."""
        run = self._run_at(offset) if offset > 0 else None
        if run is None or self.tops[run] == offset:
            return None  # at the very top, past the end, or its own header exactly at the top
        top = 0
        if run + 1 < len(self.tops):
            top = min(0, int(self.tops[run + 1]) - offset - self.header_height)
        return run, top

    def line_start(self, run: int, line: int) -> int:
        """The first row of a visual line of a run (lines clamp to the run's)."""
        line = max(0, min(line, int(self.lines[run]) - 1))
        return int(self.runs.starts[run]) + line * self.columns

    def line_length(self, run: int, line: int) -> int:
        return int(min(self.columns, self.runs.counts[run] - line * self.columns))

    def _run_at(self, y: int) -> int | None:
        if y < 0 or y >= self.height or not len(self.tops):
            return None
        return int(np.searchsorted(self.tops, y, side="right") - 1)
