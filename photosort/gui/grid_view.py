"""The thumbnail grid: a QListView in a wrapping, uniform-size layout and a delegate that paints tiles.

Uniform item sizes keep layout arithmetic (no per-item size queries), so a
50,000-photo library lays out in tens of milliseconds and only visible tiles
are ever painted. Each tile shows the thumbnail, its category with the
confidence, and the file name; colours come from the palette so the grid
follows the system's light or dark appearance.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from .photo_model import NOT_ANALYSED, PhotoModel, Tile, group_colour

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
    """A wrapping grid of photo tiles; Space, Enter or a double-click asks for a preview."""

    previewRequested = Signal(QModelIndex)

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
        self.delegate.tile_px = px
        self._fit_columns()
        self.verticalScrollBar().setSingleStep(max(20, px // 4))

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
        super().paintEvent(event)
        model = self.model()
        if self._empty_text and (model is None or model.rowCount() == 0):
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self._empty_text)
            painter.end()
