"""View ▸ Duplicates: one group of near-duplicates (or a burst) at a time, side by side, to keep or reject.

The window's face of ``photosort duplicates``. The groups, their suggested
keepers and the reasons are the core's (:mod:`photosort.core.duplicates`,
:mod:`photosort.core.keeper`), found by the worker; this widget only shows
them and says what the user chose. It shows one group at a time, so the photos
are large enough to compare (240-320 px, fitting the width, wrapping when a
burst is long), with the keeper marked and each photo's decision: a kept photo
has a green frame, a rejected one is dimmed with a red cross.

Keys (also on Help ▸ Keyboard Shortcuts): K keep, X reject, U undecided again,
Shift+X reject all but the keeper (then the next group), Left/Right between
photos, Up/Down between groups, Escape back to the grid. K and X only decide
the photo selected: the others of the group stay undecided until rejected.
Rejecting only records the choice: rejected photos are left out of exports,
and only "Move Rejected to Trash…" moves them, to the system's trash.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QKeySequence, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.duplicates import BURST_GAP_S, DEFAULT_SENSITIVITY, DuplicateGroup, GroupKind, GroupPhoto
from ..core.paths import printable
from ..core.rejects import Decision
from ..core.wording import byte_size, plural
from .thumbnail_cache import ThumbnailCache
from .worker import DuplicateReview

log = logging.getLogger(__name__)

TILE_MIN, TILE_MAX = 240, 320  # a photo's side on screen: large enough to compare
GAP = 18
CAPTION_LINES = 3  # name; dimensions and size; the decision
SLIDER_STEPS = 100
KEEP_COLOUR = QColor("#2e9d58")
REJECT_COLOUR = QColor("#d64545")
KEYS_HINT = ("K keep · X reject · Shift+X reject all but the keeper · U undecided · ←/→ photo · ↑/↓ group · "
             "Esc back to the grid")
EXPLAINED = (f"This view finds the same picture kept more than once (a resized or re-encoded copy, a lightly edited "
             f"one, identical files) and bursts: similar shots taken within {BURST_GAP_S:g} seconds by one camera. "
             "Move the sensitivity to the right to find more.")


def kind_text(group: DuplicateGroup) -> str:
    return "Duplicates" if group.kind == GroupKind.DUPLICATE else "Burst"


def keeper_text(group: DuplicateGroup) -> str:
    """``Keep IMG_12.JPG: largest (624×468 vs 156×117)``, or why no photo can be kept."""
    if group.keep_path is None:
        return f"No photo to keep: {printable(group.reason)}"
    return f"Keep {printable(os.path.basename(group.keep_path))}: {printable(group.reason)}"


def decision_text(photo: GroupPhoto) -> str:
    return {Decision.KEEP: "Kept", Decision.REJECT: "Rejected"}.get(photo.decision, "Undecided")


def measures_text(photo: GroupPhoto) -> str:
    m = photo.measures
    if not m.readable:
        return "cannot be read now"
    return f"{m.width}×{m.height} · {byte_size(m.bytes)}"


class GroupCanvas(QWidget):
    """The photos of one group, side by side and wrapping, painted in one widget (click one to select it)."""

    photoClicked = Signal(int)  # index in the group

    def __init__(self, thumbnails: ThumbnailCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._thumbnails = thumbnails
        self._group: DuplicateGroup | None = None
        self._current = 0
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        thumbnails.ready.connect(self._on_thumbnails)

    def set_group(self, group: DuplicateGroup | None, current: int) -> None:
        self._group, self._current = group, current
        self._fit_height()
        self.update()

    # ---- geometry ------------------------------------------------------------------------------
    def _caption_height(self) -> int:
        return self.fontMetrics().lineSpacing() * CAPTION_LINES + 8

    def _columns_and_tile(self, width: int) -> tuple[int, int]:
        n = len(self._group.photos) if self._group is not None else 1
        columns = max(1, min(n, (width - GAP) // (TILE_MIN + GAP)))
        tile = max(TILE_MIN // 2, min(TILE_MAX, (width - GAP * (columns + 1)) // columns))
        return columns, tile

    def tile_rects(self) -> list[QRect]:
        """Where each photo (with its caption) is painted, in group order."""
        if self._group is None:
            return []
        columns, tile = self._columns_and_tile(self.width())
        used = columns * tile + (columns - 1) * GAP
        left = max(GAP, (self.width() - used) // 2)
        height = tile + self._caption_height()
        return [QRect(left + (i % columns) * (tile + GAP), GAP + (i // columns) * (height + GAP), tile, height)
                for i in range(len(self._group.photos))]

    def _fit_height(self) -> None:
        rects = self.tile_rects()
        self.setMinimumHeight(rects[-1].bottom() + GAP if rects else 0)

    def sizeHint(self) -> QSize:
        return QSize(3 * (TILE_MAX + GAP) + GAP, TILE_MAX + self._caption_height() + 2 * GAP)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_height()

    # ---- events ----------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        for i, rect in enumerate(self.tile_rects()):
            if rect.contains(event.position().toPoint()):
                self.photoClicked.emit(i)
                return
        super().mousePressEvent(event)

    def _on_thumbnails(self, ids: list[int]) -> None:
        if self._group is not None and set(ids) & set(self._group.ids):
            self.update()

    # ---- painting --------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        if self._group is None:
            return
        painter = QPainter(self)
        try:  # a painter left active by an exception takes the process down
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            for i, (photo, rect) in enumerate(zip(self._group.photos, self.tile_rects(), strict=True)):
                self._paint_photo(painter, photo, rect, current=i == self._current,
                                  keeper=photo.id == self._group.keep)
        finally:
            painter.end()

    def _paint_photo(self, painter: QPainter, photo: GroupPhoto, rect: QRect, current: bool, keeper: bool) -> None:
        palette = self.palette()
        square = QRect(rect.left(), rect.top(), rect.width(), rect.width())
        painter.fillRect(square, palette.color(QPalette.ColorRole.AlternateBase))
        rejected = photo.decision == Decision.REJECT
        pixmap = self._thumbnails.pixmap(photo.id)
        if pixmap is not None:
            size = pixmap.deviceIndependentSize().scaled(square.size().toSizeF(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRectF(0, 0, size.width(), size.height())
            target.moveCenter(QRectF(square).center())
            painter.setOpacity(0.3 if rejected else 1.0)
            painter.drawPixmap(target, pixmap, QRectF(pixmap.rect()))
            painter.setOpacity(1.0)
        else:
            text = "No preview" if self._thumbnails.has_no_thumbnail(photo.id) else "Loading…"
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(square, Qt.AlignmentFlag.AlignCenter, text)
        if rejected:
            self._paint_cross(painter, square)
        frame = {Decision.KEEP: KEEP_COLOUR, Decision.REJECT: REJECT_COLOUR}.get(photo.decision)
        if frame is not None:
            painter.setPen(QPen(frame, 3))
            painter.drawRect(square.adjusted(1, 1, -2, -2))
        if current:
            painter.setPen(QPen(palette.color(QPalette.ColorRole.Highlight), 4))
            painter.drawRoundedRect(QRectF(square).adjusted(-5, -5, 5, 5), 6, 6)
        if keeper:
            self._paint_badge(painter, square, "KEEP", KEEP_COLOUR)
        self._paint_caption(painter, photo, QRect(rect.left(), square.bottom() + 6, rect.width(),
                                                  rect.height() - square.height() - 6))

    def _paint_cross(self, painter: QPainter, square: QRect) -> None:
        side = max(28, square.width() // 6)
        box = QRect(square.right() - side - 8, square.top() + 8, side, side)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(REJECT_COLOUR)
        painter.drawEllipse(box)
        pen = QPen(QColor("white"), max(3, side // 9))
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        inset = side * 0.3
        painter.drawLine(QRectF(box).topLeft() + _offset(inset, inset), QRectF(box).bottomRight() - _offset(inset, inset))
        painter.drawLine(QRectF(box).topRight() + _offset(-inset, inset), QRectF(box).bottomLeft() + _offset(inset, -inset))
        painter.setBrush(Qt.BrushStyle.NoBrush)

    def _paint_badge(self, painter: QPainter, square: QRect, text: str, colour: QColor) -> None:
        font = QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        box = QRect(square.left() + 8, square.top() + 8, metrics.horizontalAdvance(text) + 16, metrics.height() + 6)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawRoundedRect(QRectF(box), 4, 4)
        painter.setPen(QColor("white"))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setFont(self.font())

    def _paint_caption(self, painter: QPainter, photo: GroupPhoto, rect: QRect) -> None:
        palette = self.palette()
        metrics = self.fontMetrics()
        line = metrics.lineSpacing()
        name = metrics.elidedText(printable(os.path.basename(photo.path)), Qt.TextElideMode.ElideMiddle, rect.width())
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(QRect(rect.left(), rect.top(), rect.width(), line), Qt.AlignmentFlag.AlignLeft, name)
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(QRect(rect.left(), rect.top() + line, rect.width(), line), Qt.AlignmentFlag.AlignLeft,
                         measures_text(photo))
        colour = {Decision.KEEP: KEEP_COLOUR, Decision.REJECT: REJECT_COLOUR}.get(
            photo.decision, palette.color(QPalette.ColorRole.PlaceholderText))
        painter.setPen(colour)
        painter.drawText(QRect(rect.left(), rect.top() + 2 * line, rect.width(), line), Qt.AlignmentFlag.AlignLeft,
                         decision_text(photo))


def _offset(x: float, y: float) -> QPointF:
    return QPointF(x, y)


class DuplicatesView(QWidget):
    """The Duplicates page: controls, the group on screen, and why the page is empty when it is."""

    reviewWanted = Signal(float, bool)  # sensitivity, bursts: the user changed a setting (the controller debounces)
    decided = Signal(object)  # {photo id: Decision or None}
    rejectOthersWanted = Signal(tuple)  # the ids of the group whose photos but the keeper are to be rejected
    trashRequested = Signal()
    backRequested = Signal()
    shown = Signal()  # a review (or an update of it) is on screen

    def __init__(self, thumbnails: ThumbnailCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._groups: list[DuplicateGroup] = []
        self._review: DuplicateReview | None = None
        self._group = 0
        self._photo = 0
        self._rejected = 0
        self.canvas = GroupCanvas(thumbnails)
        self.canvas.photoClicked.connect(self._on_photo_clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(self._build_header())
        layout.addLayout(self._build_group_line())
        self.body = QStackedWidget()
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setWidget(self.canvas)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setMargin(40)
        self.body.addWidget(self.scroll)
        self.body.addWidget(self.message)
        layout.addWidget(self.body, 1)
        self.hint = QLabel(KEYS_HINT)
        self.hint.setWordWrap(True)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.hint.setContentsMargins(6, 0, 6, 4)
        layout.addWidget(self.hint)
        self._build_actions()
        self.set_message("Looking for near-duplicates and bursts…")

    # ---- building ----------------------------------------------------------------------------------
    def _build_header(self) -> QHBoxLayout:
        header = QHBoxLayout()
        header.setContentsMargins(6, 2, 2, 2)
        title = QLabel("Duplicates")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setBold(True)
        title.setFont(font)
        header.addWidget(title)
        header.addSpacing(12)
        self.counter = QLabel()
        header.addWidget(self.counter)
        header.addStretch(1)
        self.rejected_label = QLabel()
        header.addWidget(self.rejected_label)
        self.trash_button = QPushButton("Move Rejected to Trash…")
        self.trash_button.setToolTip("Move the photos you rejected to the system's trash, from where they can be "
                                     "restored; photosort never deletes a photo itself")
        self.trash_button.clicked.connect(self.trashRequested)
        header.addWidget(self.trash_button)
        self.back_button = QPushButton("Back to Grid")
        self.back_button.setToolTip("Back to the photo grid (Esc)")
        self.back_button.clicked.connect(self.backRequested)
        header.addWidget(self.back_button)
        return header

    def _build_group_line(self) -> QHBoxLayout:
        """What the group is and which photo to keep, then the settings that find the groups."""
        line = QHBoxLayout()
        line.setContentsMargins(6, 0, 2, 0)
        self.kind_label = QLabel()
        font = self.kind_label.font()
        font.setBold(True)
        self.kind_label.setFont(font)
        line.addWidget(self.kind_label)
        self.keeper_label = QLabel()
        self.keeper_label.setStyleSheet(f"color: {KEEP_COLOUR.name()};")
        self.keeper_label.setTextFormat(Qt.TextFormat.PlainText)
        self.keeper_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # long reasons
        line.addWidget(self.keeper_label, 1)
        line.addWidget(QLabel("Sensitivity:"))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setValue(round(DEFAULT_SENSITIVITY * SLIDER_STEPS))
        self.slider.setFixedWidth(150)
        self.slider.setToolTip("Higher finds more near-duplicates; lower only the most certain "
                               f"(default {DEFAULT_SENSITIVITY:g})")
        self.slider.valueChanged.connect(self._on_setting)
        line.addWidget(self.slider)
        self.sensitivity_label = QLabel()
        self.sensitivity_label.setMinimumWidth(32)
        line.addWidget(self.sensitivity_label)
        self.bursts_check = QCheckBox("Bursts")
        self.bursts_check.setChecked(True)
        self.bursts_check.setToolTip(f"Also group similar shots taken within {BURST_GAP_S:g} seconds by one camera")
        self.bursts_check.toggled.connect(self._on_setting)
        line.addWidget(self.bursts_check)
        self._show_sensitivity()
        return line

    def _build_actions(self) -> None:
        """The view's keys, as actions (so the shortcut sheet lists them).

        The arrows work while the photos have the focus (on the slider they move
        it); the letters and Escape anywhere in the view.
        """
        self.keep_action = self._action("&Keep This Photo", "K", lambda: self._decide(Decision.KEEP))
        self.reject_action = self._action("Re&ject This Photo", "X", lambda: self._decide(Decision.REJECT))
        self.reject_others_action = self._action("Reject All but the Keeper", "Shift+X", self.reject_others)
        self.clear_action = self._action("&Undecided", "U", lambda: self._decide(None))
        self.previous_photo_action = self._action("Previous Photo", "Left", lambda: self.move_photo(-1), self.canvas)
        self.next_photo_action = self._action("Next Photo", "Right", lambda: self.move_photo(+1), self.canvas)
        self.previous_group_action = self._action("Previous Group", "Up", lambda: self.move_group(-1), self.canvas)
        self.next_group_action = self._action("Next Group", "Down", lambda: self.move_group(+1), self.canvas)
        self.back_action = self._action("Back to the Grid", "Escape", self.backRequested.emit)

    def _action(self, text: str, key: str, slot, widget: QWidget | None = None) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(key))
        action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut if widget is not None
                                  else Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(slot)
        (widget or self).addAction(action)
        return action

    @property
    def key_actions(self) -> list[QAction]:
        return [self.keep_action, self.reject_action, self.reject_others_action, self.clear_action,
                self.previous_photo_action, self.next_photo_action, self.previous_group_action,
                self.next_group_action, self.back_action]

    # ---- settings -----------------------------------------------------------------------------------
    def sensitivity(self) -> float:
        return self.slider.value() / SLIDER_STEPS

    def bursts(self) -> bool:
        return self.bursts_check.isChecked()

    def _show_sensitivity(self) -> None:
        self.sensitivity_label.setText(f"{self.sensitivity():.2f}")

    def _on_setting(self) -> None:
        self._show_sensitivity()
        self.reviewWanted.emit(self.sensitivity(), self.bursts())

    # ---- what is shown --------------------------------------------------------------------------------
    def set_message(self, text: str) -> None:
        """Instead of the photos: what is going on, or why there is nothing."""
        self.message.setText(text)
        self.body.setCurrentWidget(self.message)
        self.counter.setText("")
        self.kind_label.setText("")
        self.keeper_label.setText("")
        self._set_keys_enabled(False)

    def show_review(self, review: DuplicateReview) -> None:
        """Show the groups found; an update of the same review keeps the group and photo on screen."""
        same = self._review is not None and review.review == self._review.review
        previous = self._current_group()
        self._review, self._groups = review, list(review.groups)
        if not same:
            self._group, self._photo = 0, 0
        elif previous is not None:
            self._group = next((i for i, g in enumerate(self._groups) if set(g.ids) & set(previous.ids)),
                               min(self._group, max(0, len(self._groups) - 1)))
        self.set_rejected(review.rejected)
        self._refresh()
        self.shown.emit()

    def set_rejected(self, count: int) -> None:
        self._rejected = count
        self.rejected_label.setText(f"{plural(count, 'photo')} rejected" if count else "")
        self.trash_button.setEnabled(count > 0)

    @property
    def rejected(self) -> int:
        return self._rejected

    def _refresh(self) -> None:
        group = self._current_group()
        if group is None:
            self.canvas.set_group(None, 0)
            self.set_message("No near-duplicates or bursts found in these folders at this sensitivity.\n\n"
                             + EXPLAINED)
            return
        self._photo = max(0, min(self._photo, len(group.photos) - 1))
        self.body.setCurrentWidget(self.scroll)
        self.counter.setText(f"Group {self._group + 1:,} of {len(self._groups):,}")
        self.kind_label.setText(f"{kind_text(group)} · {plural(len(group.photos), 'photo')}")
        self.keeper_label.setText(keeper_text(group))
        self.canvas.set_group(group, self._photo)
        self._set_keys_enabled(True)
        rects = self.canvas.tile_rects()
        if rects:
            self.scroll.ensureVisible(rects[self._photo].center().x(), rects[self._photo].center().y(),
                                      0, rects[self._photo].height() // 2 + GAP)

    def _set_keys_enabled(self, enabled: bool) -> None:
        for action in self.key_actions:
            if action is not self.back_action:
                action.setEnabled(enabled)

    def _current_group(self) -> DuplicateGroup | None:
        return self._groups[self._group] if 0 <= self._group < len(self._groups) else None

    def current_group(self) -> DuplicateGroup | None:
        return self._current_group()

    def current_photo(self) -> GroupPhoto | None:
        group = self._current_group()
        return group.photos[self._photo] if group is not None and self._photo < len(group.photos) else None

    @property
    def groups(self) -> list[DuplicateGroup]:
        return list(self._groups)

    def focus_photos(self) -> None:
        self.canvas.setFocus(Qt.FocusReason.OtherFocusReason)

    # ---- moving and deciding -------------------------------------------------------------------------
    def move_photo(self, step: int) -> None:
        group = self._current_group()
        if group is not None:
            self._photo = max(0, min(len(group.photos) - 1, self._photo + step))
            self._refresh()

    def move_group(self, step: int) -> None:
        if self._groups:
            self._group = max(0, min(len(self._groups) - 1, self._group + step))
            self._photo = 0
            self._refresh()

    def select(self, group: int, photo: int = 0) -> None:
        self._group, self._photo = group, photo
        self._refresh()

    def _on_photo_clicked(self, index: int) -> None:
        self._photo = index
        self._refresh()

    def _decide(self, decision: Decision | None) -> None:
        """Record the selected photo's decision; shown at once, confirmed (with the keeper again) by the worker."""
        photo = self.current_photo()
        if photo is None or photo.decision == decision:
            return
        self._replace_photo(replace(photo, decision=decision))
        self.decided.emit({photo.id: decision})

    def reject_others(self) -> None:
        """Reject every photo of the group but its keeper (the core's rule), then go on to the next group."""
        group = self._current_group()
        if group is None or group.keep is None:
            return
        self.rejectOthersWanted.emit(group.ids)
        if self._group + 1 < len(self._groups):
            self.move_group(+1)

    def _replace_photo(self, photo: GroupPhoto) -> None:
        group = self._groups[self._group]
        photos = tuple(photo if p.id == photo.id else p for p in group.photos)
        self._groups[self._group] = replace(group, photos=photos)
        self._refresh()

