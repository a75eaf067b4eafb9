"""The thumbnail grid: a QListView in a wrapping, uniform-size layout and a delegate that paints tiles.

Uniform item sizes keep layout arithmetic (no per-item size queries), so a
50,000-photo library lays out in tens of milliseconds and only visible tiles
are ever painted. Each tile shows the thumbnail, its category with the
confidence, and the file name; colours come from the palette so the grid
follows the system's light or dark appearance.
"""

from __future__ import annotations

import os

from PySide6.QtCore import (
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QRectF,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QCursor,
    QFont,
    QFontMetrics,
    QHelpEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QRegion,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolTip,
    QWidget,
)

from ..core.wording import plural
from .photo_model import NOT_ANALYSED, PhotoModel, Tile, group_colour
from .section_layout import SectionLayout

TILE_SIZES = (112, 160, 224)
MIN_TILE_SHARE = 0.85  # how far a thumbnail may shrink below the zoom's size to fit one more column
DEFAULT_TILE = 160
_MARGIN = 6  # between the cell edge and the tile's rounded background
_PAD = 6  # inside the tile, around the thumbnail


def _text_line_height(font: QFont) -> int:
    return QFontMetrics(font).height()


def small_font(font: QFont) -> QFont:
    small = QFont(font)
    small.setPointSizeF(max(7.0, font.pointSizeF() * 0.88))
    return small


class TileDelegate(QStyledItemDelegate):
    """Paints one photo tile: thumbnail (or placeholder), category chip with confidence, file name."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tile_px = DEFAULT_TILE
        self.box_ratio = 1.0  # thumbnail box height / width: 3/4 for a mostly landscape library
        self.cell_width = 0  # the grid cell's width as the view fitted it to its rows (0: not fitted yet)
        self.show_categories = False

    @property
    def fitted_tile(self) -> int:
        """The thumbnail's width in a fitted cell: the zoom's size, or a little less where that fills a row better."""
        room = self.cell_width - 2 * (_MARGIN + _PAD)
        return min(self.tile_px, room) if self.cell_width else self.tile_px

    @property
    def box_height(self) -> int:
        return round(self.fitted_tile * self.box_ratio)

    def cell_size(self, font: QFont) -> QSize:
        """The cell a tile at the zoom's size needs (before fitting)."""
        return QSize(self.tile_px + 2 * (_MARGIN + _PAD), self._cell_height(font, self.tile_px))

    def fitted_cell(self, font: QFont) -> QSize:
        """The cell as fitted to the view's width: the whole grid cell, so the tile is painted centred in it."""
        natural = self.cell_size(font)
        return QSize(max(self.cell_width, 1), self._cell_height(font, self.fitted_tile)) if self.cell_width else natural

    def _cell_height(self, font: QFont, tile: int) -> int:
        text = _text_line_height(font) + 6
        if self.show_categories:
            text += _text_line_height(small_font(font))
        return round(tile * self.box_ratio) + 2 * (_MARGIN + _PAD) + text

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return self.fitted_cell(option.font)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette: QPalette = option.palette
        width = self.fitted_tile + 2 * (_MARGIN + _PAD)
        cell = QRect(option.rect.x() + max(0, option.rect.width() - width) // 2, option.rect.y(),
                     min(width, option.rect.width()), option.rect.height())  # centred in a widened grid cell
        tile = QRectF(cell.adjusted(_MARGIN, _MARGIN, -_MARGIN, -_MARGIN))
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        self._paint_background(painter, option, tile, selected)
        thumb_box = QRect(int(tile.x()) + _PAD, int(tile.y()) + _PAD, self.fitted_tile, self.box_height)
        model = index.model()
        if not isinstance(model, PhotoModel):
            painter.restore()
            return
        # Read the model directly: index.data() returning None leaks a reference in PySide6 6.12.
        pixmap = model.thumbnail(index.row())
        if pixmap is not None and not pixmap.isNull():
            self._paint_thumbnail(painter, thumb_box, pixmap)
        else:
            self._paint_placeholder(painter, thumb_box, palette)
        text_top = thumb_box.bottom() + 5
        text_rect = QRect(int(tile.x()) + _PAD, text_top, int(tile.width()) - 2 * _PAD, int(tile.bottom()) - text_top)
        self._paint_labels(painter, option, model.tile(index.row()), text_rect, selected)
        painter.restore()

    @staticmethod
    def _paint_background(painter: QPainter, option: QStyleOptionViewItem, tile: QRectF, selected: bool) -> None:
        palette = option.palette
        path = QPainterPath()
        path.addRoundedRect(tile, 8, 8)
        if selected:
            fill = QColor(palette.color(QPalette.ColorRole.Highlight))
            fill.setAlpha(70)
            painter.fillPath(path, fill)
            painter.setPen(palette.color(QPalette.ColorRole.Highlight))
            painter.drawPath(path)
        elif option.state & QStyle.StateFlag.State_MouseOver:
            fill = QColor(palette.color(QPalette.ColorRole.Highlight))
            fill.setAlpha(28)
            painter.fillPath(path, fill)
        if option.state & QStyle.StateFlag.State_HasFocus and not selected:
            painter.setPen(palette.color(QPalette.ColorRole.Mid))
            painter.drawPath(path)

    @staticmethod
    def _paint_thumbnail(painter: QPainter, box: QRect, pixmap: QPixmap) -> None:
        size = pixmap.deviceIndependentSize().scaled(box.width(), box.height(), Qt.AspectRatioMode.KeepAspectRatio)
        x = box.x() + (box.width() - size.width()) / 2
        y = box.y() + box.height() - size.height()  # on the label's baseline, like photos on a shelf
        target = QRectF(x, y, size.width(), size.height())
        clip = QPainterPath()
        clip.addRoundedRect(target, 4, 4)
        painter.save()
        painter.setClipPath(clip)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawPixmap(target, pixmap, QRectF(pixmap.rect()))
        painter.restore()

    @staticmethod
    def _paint_placeholder(painter: QPainter, box: QRect, palette: QPalette) -> None:
        height = min(box.height(), box.width() * 3 / 4)  # a 4:3 photo's place, on the shelf like the photos
        inner = QRectF(box).adjusted(0, box.height() - height, 0, 0)
        fill = QColor(palette.color(QPalette.ColorRole.Text))
        fill.setAlpha(22)
        path = QPainterPath()
        path.addRoundedRect(inner, 4, 4)
        painter.fillPath(path, fill)

    def _paint_labels(self, painter: QPainter, option: QStyleOptionViewItem, tile: Tile, rect: QRect,
                      selected: bool) -> None:
        palette = option.palette
        text_colour = palette.color(QPalette.ColorRole.Text)
        dim = QColor(palette.color(QPalette.ColorRole.PlaceholderText))
        name = tile.name if tile.match is None else f"{tile.match:.2f} · {tile.name}"  # a search: how well it matches
        line = _text_line_height(option.font)
        small = small_font(option.font)
        if not self.show_categories:
            painter.setFont(option.font)
            painter.setPen(text_colour)
            elided = QFontMetrics(option.font).elidedText(name, Qt.TextElideMode.ElideMiddle, rect.width())
            painter.drawText(QRect(rect.x(), rect.y(), rect.width(), line), Qt.AlignmentFlag.AlignHCenter, elided)
            return
        self._paint_chip(painter, option, tile, QRect(rect.x(), rect.y(), rect.width(), line), self.tile_px)
        painter.setFont(small)
        painter.setPen(dim if not selected else text_colour)
        elided = QFontMetrics(small).elidedText(name, Qt.TextElideMode.ElideMiddle, rect.width())
        painter.drawText(QRect(rect.x(), rect.y() + line + 1, rect.width(), _text_line_height(small)),
                         Qt.AlignmentFlag.AlignHCenter, elided)

    @staticmethod
    def _paint_chip(painter: QPainter, option: QStyleOptionViewItem, tile: Tile, rect: QRect, tile_px: int) -> None:
        """The label as a solid chip with a check mark, or the prediction as an outlined chip with its confidence.

        The two must be told apart at a glance: a label is the user's decision,
        a prediction only the classifier's guess.
        """
        font = QFont(small_font(option.font) if tile_px < DEFAULT_TILE else option.font)  # small tiles: room for names
        font.setWeight(QFont.Weight.DemiBold)
        metrics = QFontMetrics(font)
        labelled = tile.label is not None
        waiting = tile.group == NOT_ANALYSED  # shown before the model has looked at it: no guess, no percentage
        colour = group_colour(tile.group)
        text = f"\u2713 {tile.label}" if labelled else (tile.category if tile.category is not None else "Unsure")
        text = "Not analysed" if waiting else text
        percent = "" if labelled or waiting else f" {tile.score:.0%}"
        pad = 6 if tile_px < DEFAULT_TILE else 7
        room = rect.width() - 2 * pad - metrics.horizontalAdvance(percent)
        text = metrics.elidedText(text, Qt.TextElideMode.ElideRight, max(room, 10))
        width = metrics.horizontalAdvance(text + percent) + 2 * pad
        chip = QRectF(rect.x() + (rect.width() - width) / 2, rect.y() + 0.5, width, rect.height() - 1)
        path = QPainterPath()
        path.addRoundedRect(chip, chip.height() / 2, chip.height() / 2)
        if labelled:
            painter.fillPath(path, colour)
            text_colour = QColor("#1a1a1a") if colour.lightnessF() > 0.62 else QColor("#ffffff")
        else:
            painter.setPen(QPen(colour, 1.3, Qt.PenStyle.DashLine if waiting else Qt.PenStyle.SolidLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(path)
            text_colour = option.palette.color(QPalette.ColorRole.Text)
        painter.setFont(font)
        painter.setPen(text_colour)
        text_x = int(chip.x() + pad)
        painter.drawText(QRect(text_x, rect.y(), rect.right() - text_x + 1, rect.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        if percent:
            painter.setPen(QColor(option.palette.color(QPalette.ColorRole.PlaceholderText)))
            percent_x = text_x + metrics.horizontalAdvance(text)
            painter.drawText(QRect(percent_x, rect.y(), rect.right() - percent_x + 1, rect.height()),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, percent)


class PhotoGridView(QListView):
    """A wrapping grid of photo tiles; Space, Enter or a double-click asks for a preview.

    With folder headers on and the photos sorted by folder, each folder starts a
    new line under a header naming it: the view then places, hit-tests, scrolls,
    selects and paints tiles with :class:`SectionLayout` instead of the list
    view's own flow (which cannot break a line), and clicking a header selects
    that folder's photos. Otherwise it is Qt's list view, untouched.
    """

    previewRequested = Signal(QModelIndex)
    # Class defaults: Qt calls the overrides below from inside QListView's constructor, before __init__ runs on.
    _folder_headers = False
    _sections: SectionLayout | None = None
    _sections_key: tuple = ()
    _header_pressed = False  # the left button went down on a folder header and is still down
    _header_bold: QFont | None = None  # the header's font, made once per font change (asked on every hit-test)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.ListMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.SinglePass)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Always shown: fitting columns to the width would otherwise show and hide it in a loop when the
        # photos just fill the view (narrower view -> more rows -> scroll bar -> ...), repainting forever.
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.setDragDropMode(QAbstractItemView.DragDropMode.NoDragDrop)
        self.setAcceptDrops(False)  # folder drops go to the main window
        self.setMouseTracking(True)
        self.setFrameShape(QListView.Shape.NoFrame)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._empty_text = ""
        self.delegate = TileDelegate(self)
        self.setItemDelegate(self.delegate)
        self.set_tile_size(DEFAULT_TILE)
        self.doubleClicked.connect(self.previewRequested)

    @property
    def tile_px(self) -> int:
        return self.delegate.tile_px

    def set_tile_size(self, px: int) -> None:
        """Thumbnails of this size; the photo at the top of the view stays at the top."""
        shown = self.visible_rows()
        self.delegate.tile_px = px
        self._fit_columns()
        self.verticalScrollBar().setSingleStep(max(20, px // 4))
        if len(shown) and self.model() is not None:
            self.doItemsLayout()
            self.scrollTo(self.model().index(shown[0], 0), QAbstractItemView.ScrollHint.PositionAtTop)

    def set_box_ratio(self, ratio: float) -> None:
        """Thumbnail boxes of this height / width (the photos' majority shape), re-laid out at once."""
        if ratio != self.delegate.box_ratio:
            self.delegate.box_ratio = ratio
            self._fit_columns()
            self.viewport().update()

    def set_show_categories(self, show: bool) -> None:
        if show != self.delegate.show_categories:
            self.delegate.show_categories = show
            self._fit_columns()
            self.viewport().update()

    def _fit_columns(self) -> None:
        """Fit the cells to the width: as many columns as tiles of the zoom's size nearly fill, each cell an equal
        share of the width, so there is no ragged gap on the right. A tile shrinks by up to 15 % where one more
        column then fits (2 columns with wide gaps become 3), and is centred in a cell wider than it."""
        natural = self.delegate.cell_size(self.font()).width()
        frame = natural - self.delegate.tile_px  # margins and padding around the thumbnail
        room = self.viewport().width() - 1  # Qt wraps a row whose cells fill the viewport exactly: keep a pixel spare
        smallest = MIN_TILE_SHARE * self.delegate.tile_px
        columns = max(1, round(room / natural))
        while columns > 1 and room // columns - frame < smallest:
            columns -= 1
        self.delegate.cell_width = room // columns if room // columns - frame >= smallest else natural
        fitted = self.delegate.fitted_cell(self.font())
        if fitted != self.gridSize():
            self.setGridSize(fitted)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_columns()

    def set_empty_text(self, text: str) -> None:
        """What the empty grid says (e.g. "Looking for photos…"); painted only when there are no rows."""
        self._empty_text = text
        self.viewport().update()

    def visible_rows(self) -> range:
        """Rows whose tiles are (at least partly) on screen, for loading their thumbnails first."""
        model = self.model()
        if model is None or model.rowCount() == 0:
            return range(0)
        layout = self.sections()
        if layout is not None:
            return layout.rows_between(self.verticalOffset(), self.verticalOffset() + self.viewport().height() - 1)
        rect = self.viewport().rect()
        grid = self.gridSize()
        first = self.indexAt(QPoint(grid.width() // 2, 1))
        last_row_start = self.indexAt(QPoint(grid.width() // 2, rect.height() - 1))
        columns = max(1, rect.width() // max(1, grid.width()))
        start = first.row() if first.isValid() else 0
        stop = last_row_start.row() + columns - 1 if last_row_start.isValid() else model.rowCount() - 1
        return range(start, min(stop, model.rowCount() - 1) + 1)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        preview_keys = (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if event.key() in preview_keys and event.modifiers() in (Qt.KeyboardModifier.NoModifier,
                                                                  Qt.KeyboardModifier.KeypadModifier):
            if self.currentIndex().isValid():
                self.previewRequested.emit(self.currentIndex())
            event.accept()
            return
        super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        layout = self.sections()
        if layout is not None:
            self._paint_sections(layout, event)
            return
        super().paintEvent(event)
        model = self.model()
        if self._empty_text and (model is None or model.rowCount() == 0):
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self._empty_text)
            painter.end()

    # ---- folder headers ------------------------------------------------------------------------
    def set_folder_headers(self, shown: bool) -> None:
        """Show a header above each folder's photos whenever they are sorted by folder."""
        if shown != self._folder_headers:
            self._folder_headers = shown
            self.updateGeometries()
            self.viewport().update()

    @property
    def folder_headers(self) -> bool:
        return self._folder_headers

    def sections(self) -> SectionLayout | None:
        """The folder-header layout in force now, or None (the list view's own layout)."""
        model = self.model()
        if not self._folder_headers or not isinstance(model, PhotoModel):
            return None
        runs = model.folder_runs()
        if runs is None or runs.rows == 0 or runs.rows != model.rowCount():
            return None
        grid = self.gridSize()
        columns = max(1, (self.viewport().width() - 1) // max(1, grid.width()))
        header = self._header_height()
        key = (id(runs), columns, grid.width(), grid.height(), header)
        if key != self._sections_key:  # the layout holds ``runs``, so its id cannot be reused meanwhile
            height = self._sections.height if self._sections is not None else None
            self._sections = SectionLayout(runs, columns, grid.width(), grid.height(), header)
            self._sections_key = key
            if self._sections.height != height:  # the scroll range follows (not from inside a layout pass)
                QTimer.singleShot(0, self, self.updateGeometries)
        return self._sections

    def _header_height(self) -> int:
        return QFontMetrics(self._header_font()).height() + 18

    def _header_font(self) -> QFont:
        if self._header_bold is None:
            self._header_bold = QFont(self.font())
            self._header_bold.setWeight(QFont.Weight.DemiBold)
        return self._header_bold

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.FontChange:
            self._header_bold = None
        super().changeEvent(event)

    def _content_rect(self, layout: SectionLayout, row: int) -> QRect:
        cell = layout.cell(row)
        return QRect(cell.x, cell.y, layout.cell_width, layout.cell_height)

    def visualRect(self, index: QModelIndex | QPersistentModelIndex) -> QRect:
        layout = self.sections()
        if layout is None or not index.isValid():
            return super().visualRect(index)
        return self._content_rect(layout, index.row()).translated(0, -self.verticalOffset())

    def indexAt(self, point: QPoint) -> QModelIndex:
        layout = self.sections()
        if layout is None:
            return super().indexAt(point)
        if self._pinned_header_at(layout, point.y()) is not None:
            return QModelIndex()  # under the pinned header: what is drawn there is the header
        row = layout.row_at(point.x(), point.y() + self.verticalOffset())
        model = self.model()
        return model.index(row, 0) if row is not None and model is not None else QModelIndex()

    def _pinned_header_at(self, layout: SectionLayout, y: int) -> int | None:
        """The folder whose pinned header is at viewport height ``y``, or None."""
        pinned = layout.pinned_header(self.verticalOffset())
        if pinned is None:
            return None
        run, top = pinned
        return run if top <= y < top + layout.header_height else None

    def _header_under(self, layout: SectionLayout, y: int) -> int | None:
        """The folder whose header (pinned or in place) is at viewport height ``y``."""
        pinned = self._pinned_header_at(layout, y)
        return pinned if pinned is not None else layout.header_at(y + self.verticalOffset())

    def verticalOffset(self) -> int:
        return self.verticalScrollBar().value() if self.sections() is not None else super().verticalOffset()

    def horizontalOffset(self) -> int:
        return 0 if self.sections() is not None else super().horizontalOffset()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        if self.sections() is not None:
            self.viewport().update()  # the pinned header stays put: the scrolled pixels alone would move it

    def updateGeometries(self) -> None:
        super().updateGeometries()
        layout = self.sections()
        if layout is not None:
            bar = self.verticalScrollBar()
            bar.setRange(0, max(0, layout.height - self.viewport().height()))
            bar.setPageStep(self.viewport().height())
            self.horizontalScrollBar().setRange(0, 0)

    def scrollTo(self, index: QModelIndex | QPersistentModelIndex,
                 hint: QAbstractItemView.ScrollHint = QAbstractItemView.ScrollHint.EnsureVisible) -> None:
        layout = self.sections()
        if layout is None or not index.isValid():
            super().scrollTo(index, hint)
            return
        cell = layout.cell(index.row())
        top = cell.y - layout.header_height  # room above it for its header, in place or pinned
        bottom = cell.y + layout.cell_height
        height = self.viewport().height()
        bar = self.verticalScrollBar()
        hints = QAbstractItemView.ScrollHint
        if hint == hints.PositionAtTop:
            bar.setValue(top)
        elif hint == hints.PositionAtBottom:
            bar.setValue(bottom - height)
        elif hint == hints.PositionAtCenter:
            bar.setValue((top + bottom - height) // 2)
        elif top < bar.value() or (bottom > bar.value() + height and bottom - top > height):
            bar.setValue(top)  # above, or taller than the view: its top (and header) first
        elif bottom > bar.value() + height:
            bar.setValue(bottom - height)

    def moveCursor(self, action: QAbstractItemView.CursorAction,
                   modifiers: Qt.KeyboardModifier) -> QModelIndex:
        layout = self.sections()
        model = self.model()
        if layout is None or model is None:
            return super().moveCursor(action, modifiers)
        current = self.currentIndex()
        if not current.isValid():
            return model.index(0, 0)
        row = self._moved_row(layout, current.row(), action)
        return model.index(max(0, min(row, layout.runs.rows - 1)), 0)

    def _moved_row(self, layout: SectionLayout, row: int, action: QAbstractItemView.CursorAction) -> int:
        moves = QAbstractItemView.CursorAction
        if action in (moves.MoveLeft, moves.MovePrevious):
            return row - 1
        if action in (moves.MoveRight, moves.MoveNext):
            return row + 1
        if action == moves.MoveHome:
            return 0
        if action == moves.MoveEnd:
            return layout.runs.rows - 1
        steps = max(1, self.viewport().height() // layout.cell_height)
        if action in (moves.MoveUp, moves.MoveDown, moves.MovePageUp, moves.MovePageDown):
            up = action in (moves.MoveUp, moves.MovePageUp)
            for _ in range(steps if action in (moves.MovePageUp, moves.MovePageDown) else 1):
                row = self._line_above(layout, row) if up else self._line_below(layout, row)
        return row

    @staticmethod
    def _line_above(layout: SectionLayout, row: int) -> int:
        """The tile above, in the same column (or the last of a shorter line), crossing into the folder above."""
        cell, run = layout.cell(row), layout.run_of(row)
        if cell.line > 0:
            return layout.line_start(run, cell.line - 1) + cell.column
        if run == 0:
            return row
        last = int(layout.lines[run - 1]) - 1
        return layout.line_start(run - 1, last) + min(cell.column, layout.line_length(run - 1, last) - 1)

    @staticmethod
    def _line_below(layout: SectionLayout, row: int) -> int:
        cell, run = layout.cell(row), layout.run_of(row)
        if cell.line < layout.lines[run] - 1:
            return layout.line_start(run, cell.line + 1) + min(cell.column, layout.line_length(run, cell.line + 1) - 1)
        if run == len(layout.lines) - 1:
            return row
        return layout.line_start(run + 1, 0) + min(cell.column, layout.line_length(run + 1, 0) - 1)

    def setSelection(self, rect: QRect, command: QItemSelectionModel.SelectionFlag) -> None:
        layout = self.sections()
        model, selection_model = self.model(), self.selectionModel()
        if layout is None or model is None or selection_model is None:
            super().setSelection(rect, command)
            return
        if self.state() != QAbstractItemView.State.DragSelectingState:
            self._select_run_of_photos(layout, rect, command)  # a click or a key: every photo from one to the other
            return
        band = rect.normalized().translated(0, self.verticalOffset())
        first_column = max(0, band.left() // layout.cell_width)
        last_column = min(layout.columns - 1, band.right() // layout.cell_width)
        selection = QItemSelection()
        for run, line in layout.lines_between(band.top(), band.bottom()):
            start = layout.line_start(run, line)
            stop = min(last_column, layout.line_length(run, line) - 1)
            if first_column <= stop:
                selection.select(model.index(start + first_column, 0), model.index(start + stop, 0))
        selection_model.select(selection, command)

    def _select_run_of_photos(self, layout: SectionLayout, rect: QRect,
                              command: QItemSelectionModel.SelectionFlag) -> None:
        """Shift+click or Shift+arrow: the photos in order from the one at one corner (the anchor) to the one at
        the other, as the list view does; a rubber band alone selects what it covers."""
        offset = self.verticalOffset()
        first = layout.row_at(rect.left(), rect.top() + offset)
        last = layout.row_at(rect.right(), rect.bottom() + offset)
        model, selection = self.model(), QItemSelection()
        if first is not None and last is not None:
            selection.select(model.index(min(first, last), 0), model.index(max(first, last), 0))
        self.selectionModel().select(selection, command)

    def visualRegionForSelection(self, selection: QItemSelection) -> QRegion:
        layout = self.sections()
        if layout is None:
            return super().visualRegionForSelection(selection)
        region = QRegion()
        width = layout.columns * layout.cell_width
        for selected in selection:
            top = layout.cell(selected.top()).y - self.verticalOffset()
            bottom = layout.cell(selected.bottom()).y + layout.cell_height - self.verticalOffset()
            region += QRect(0, top, width, bottom - top)
        return region

    def _select_folder(self, run: int, add: bool) -> None:
        """A click on a folder's header selects its photos (to label or look at them together); with Ctrl or
        Shift they join the selection. The view stays where it is; the current photo becomes the folder's first
        one on screen, so the arrow keys go on from what the user sees."""
        layout, model, selection_model = self.sections(), self.model(), self.selectionModel()
        if layout is None or model is None or selection_model is None:
            return
        first = int(layout.runs.starts[run])
        last = first + int(layout.runs.counts[run]) - 1
        below_header = self.verticalOffset() + layout.header_height
        shown = [r for r in self.visible_rows() if first <= r <= last and layout.cell(r).y >= below_header]
        flags = QItemSelectionModel.SelectionFlag
        scrolled = self.verticalScrollBar().value()
        selection_model.setCurrentIndex(model.index(shown[0] if shown else first, 0), flags.NoUpdate)
        selection_model.select(QItemSelection(model.index(first, 0), model.index(last, 0)),
                               flags.Select if add else flags.ClearAndSelect)
        self.verticalScrollBar().setValue(scrolled)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        layout = self.sections()
        if layout is not None and event.button() == Qt.MouseButton.LeftButton:
            run = self._header_under(layout, event.position().toPoint().y())
            if run is not None:
                adding = event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
                self._select_folder(run, bool(adding))
                self._header_pressed = True  # a drag from here must not extend from an older press
                event.accept()
                return
        self._header_pressed = False
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._header_pressed and event.buttons() & Qt.MouseButton.LeftButton:
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._header_pressed:
            self._header_pressed = False
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def viewportEvent(self, event: QEvent) -> bool:
        layout = self.sections()
        if layout is not None and event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            run = self._header_under(layout, event.pos().y())
            if run is not None:
                QToolTip.showText(event.globalPos(), f"{layout.runs.folders[run]}\n"
                                  f"{plural(int(layout.runs.counts[run]), 'photo')} · click to select them", self)
                return True
        return super().viewportEvent(event)

    def _paint_sections(self, layout: SectionLayout, event: QPaintEvent) -> None:
        """Visible tiles through the delegate, as the list view would, and the headers of visible folders."""
        model = self.model()
        offset = self.verticalOffset()
        area = event.rect()
        painter = QPainter(self.viewport())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        base = QStyleOptionViewItem()
        self.initViewItemOption(base)
        hovered = self.indexAt(self.viewport().mapFromGlobal(QCursor.pos())) if self.viewport().underMouse() \
            else QModelIndex()
        current = self.currentIndex()
        selection = self.selectionModel()
        states = QStyle.StateFlag
        for row in layout.rows_between(area.top() + offset, area.bottom() + offset):
            index = model.index(row, 0)
            option = QStyleOptionViewItem(base)
            option.rect = self._content_rect(layout, row).translated(0, -offset)
            if selection is not None and selection.isSelected(index):
                option.state |= states.State_Selected
            if index == hovered:
                option.state |= states.State_MouseOver
            if index == current and self.hasFocus():
                option.state |= states.State_HasFocus
            self.delegate.paint(painter, option, index)
        for run in layout.runs_between(area.top() + offset, area.bottom() + offset):
            self._paint_header(painter, layout, run, int(layout.tops[run]) - offset)
        pinned = layout.pinned_header(offset)
        if pinned is not None:  # the folder at the top keeps its name in view, over the tiles scrolling under it
            run, top = pinned
            painter.fillRect(QRect(0, top, self.viewport().width(), layout.header_height),
                             self.palette().color(QPalette.ColorRole.Base))
            self._paint_header(painter, layout, run, top)
        painter.end()

    def _paint_header(self, painter: QPainter, layout: SectionLayout, run: int, top: int) -> None:
        """The folder's name, then where it is and how many photos it holds, over a hairline; grouped by category
        with every group shown, a dot of the group's colour and its name come first."""
        palette = self.palette()
        runs = layout.runs
        width = layout.columns * layout.cell_width
        parent, name = os.path.split(runs.folders[run].rstrip("/\\"))
        name = name or runs.folders[run]
        detail = " · ".join(part for part in (runs.group_names[run] if runs.group_names else "", parent,
                                              plural(int(runs.counts[run]), "photo")) if part)
        bold = self._header_font()
        text = QRect(_MARGIN + 2, top + 8, width - 2 * (_MARGIN + 2), QFontMetrics(bold).height())
        if runs.groups:
            dot = QRectF(text.x(), text.center().y() - 4, 9, 9)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(group_colour(runs.groups[run]))
            painter.drawEllipse(dot)
            text.adjust(15, 0, 0, 0)
        name = QFontMetrics(bold).elidedText(name, Qt.TextElideMode.ElideMiddle, text.width() // 2)
        painter.setFont(bold)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(text, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
        indent = QFontMetrics(bold).horizontalAdvance(name) + 10
        small = small_font(self.font())
        painter.setFont(small)
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        rest = text.adjusted(indent, 0, 0, 0)
        painter.drawText(rest, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         QFontMetrics(small).elidedText(detail, Qt.TextElideMode.ElideLeft, rest.width()))
        line = QColor(palette.color(QPalette.ColorRole.Text))
        line.setAlpha(40)
        painter.setPen(line)
        y = top + layout.header_height - 5
        painter.drawLine(_MARGIN, y, width - _MARGIN, y)

