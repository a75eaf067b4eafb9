"""The side panel: the classifier in use, typed categories (or the classifier's label buttons),
the unsure slider, and the groups with their counts.

Typing is debounced (the worker embeds new category text, which may load the
model the first time), the slider is coalesced to a few updates per second
(re-grouping 50,000 photos is cheap but not free), and the group list doubles
as the filter: clicking a group shows only its photos.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QSlider,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.sorting import DEFAULT_THRESHOLD
from ..core.zeroshot import Category, parse_categories
from .classifier_panel import ClassifierBar, HeadPanel
from .photo_model import Group, group_colour

ALL_PHOTOS = -2  # item data for "All photos" (never None: PySide6 6.12 leaks None read back from item data)
TYPING_DEBOUNCE_MS = 400
SLIDER_COALESCE_MS = 60
PLACEHOLDER = "One category per line, e.g.\nbeach\nforest\npets = a photo of a cat or a dog"


def _dot_icon(colour: QColor | None, size: int = 12) -> QIcon:
    pixmap = QPixmap(QSize(size * 2, size * 2))
    pixmap.setDevicePixelRatio(2.0)
    pixmap.fill(Qt.GlobalColor.transparent)
    if colour is not None:
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawEllipse(2, 2, size - 4, size - 4)
        painter.end()
    return QIcon(pixmap)


def secondary(label: QLabel) -> QLabel:
    """Dim a label with the palette's placeholder colour, so it follows light and dark themes."""
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label


def _heading(text: str) -> QLabel:
    label = QLabel(text)
    font = QFont(label.font())
    font.setWeight(QFont.Weight.DemiBold)
    label.setFont(font)
    return label


class SidePanel(QWidget):
    """Where the user types categories and picks the confidence below which a photo is unsure."""

    categoriesChanged = Signal(object)  # tuple[Category, ...]
    thresholdChanged = Signal(float)
    filterChanged = Signal(object)  # group key: None (all), UNSURE, or a category index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._sent: tuple[Category, ...] = ()
        self._typing = QTimer(self, singleShot=True, interval=TYPING_DEBOUNCE_MS)
        self._typing.timeout.connect(self.commit_text)
        self._sliding = QTimer(self, singleShot=True, interval=SLIDER_COALESCE_MS)
        self._sliding.timeout.connect(lambda: self.thresholdChanged.emit(self.threshold()))
        self._build()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 8, 12)
        layout.setSpacing(6)
        layout.addWidget(_heading("Classifier"))
        self.classifier_bar = ClassifierBar()
        layout.addWidget(self.classifier_bar)
        layout.addSpacing(4)
        self.head_panel = HeadPanel()
        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_editor())
        self.pages.addWidget(self.head_panel)
        layout.addWidget(self.pages, 2)
        layout.addSpacing(8)
        layout.addLayout(self._build_slider())
        layout.addSpacing(8)
        header = QHBoxLayout()
        header.addWidget(_heading("Groups"))
        header.addStretch(1)
        self.busy_label = QLabel("Sorting…")
        secondary(self.busy_label)
        self.busy_label.hide()
        header.addWidget(self.busy_label)
        layout.addLayout(header)
        self.groups = QListWidget()
        self.groups.setFrameShape(QFrame.Shape.StyledPanel)
        self.groups.setAccessibleName("Groups")
        self.groups.currentItemChanged.connect(self._on_group_clicked)
        layout.addWidget(self.groups, 3)

    def _build_editor(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(_heading("Categories"))
        self.editor = QPlainTextEdit()
        self.editor.setPlaceholderText(PLACEHOLDER)
        self.editor.setAcceptDrops(False)  # a dropped folder opens it rather than pasting its path
        self.editor.setTabChangesFocus(True)
        self.editor.setMinimumHeight(110)
        self.editor.setAccessibleName("Categories")
        self.editor.textChanged.connect(self._typing.start)
        layout.addWidget(self.editor, 2)
        self.hint = QLabel("Photos re-sort as you type. Write <i>name = prompt</i> to describe a category yourself.")
        self.hint.setWordWrap(True)
        secondary(self.hint)
        layout.addWidget(self.hint)
        return page

    def show_classifier(self, name: str) -> None:
        """Show the label buttons of classifier ``name``, or (with "") the category editor."""
        self.pages.setCurrentWidget(self.head_panel if name else self.pages.widget(0))
        self.classifier_bar.set_current(name)

    def _build_slider(self) -> QVBoxLayout:
        box = QVBoxLayout()
        row = QHBoxLayout()
        row.addWidget(_heading("Unsure below"))
        row.addStretch(1)
        self.threshold_label = QLabel()
        row.addWidget(self.threshold_label)
        box.addLayout(row)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setPageStep(10)
        self.slider.setAccessibleName("Unsure below this confidence")
        self.slider.setToolTip("A photo whose best category has less confidence than this goes to Unsure.")
        self.slider.valueChanged.connect(self._on_slider)
        box.addWidget(self.slider)
        self.set_threshold(DEFAULT_THRESHOLD)
        return box

    # ---- categories ----------------------------------------------------------------
    def text(self) -> str:
        return self.editor.toPlainText()

    def set_text(self, text: str) -> None:
        """Show ``text`` and apply it at once (used to restore the saved set at launch)."""
        self.editor.setPlainText(text)
        self.commit_text()

    def categories(self) -> tuple[Category, ...]:
        return tuple(parse_categories(self.text()))

    def commit_text(self) -> None:
        """Send the typed categories now if they changed (the debounce timer calls this)."""
        self._typing.stop()
        categories = self.categories()
        if categories != self._sent:
            self._sent = categories
            self.categoriesChanged.emit(categories)

    def set_busy(self, busy: bool) -> None:
        self.busy_label.setVisible(busy)

    # ---- threshold -----------------------------------------------------------------
    def threshold(self) -> float:
        return self.slider.value() / 100.0

    def set_threshold(self, value: float) -> None:
        self.slider.setValue(round(value * 100))
        self._update_threshold_label()

    def _on_slider(self, _value: int) -> None:
        self._update_threshold_label()
        self._sliding.start()

    def _update_threshold_label(self) -> None:
        self.threshold_label.setText(f"{self.slider.value()}%")

    # ---- groups --------------------------------------------------------------------
    def set_groups(self, groups: list[Group], current: int | None) -> None:
        """Rebuild the group list (names, colours, counts) keeping ``current`` selected."""
        self.groups.blockSignals(True)
        self.groups.clear()
        for group in groups:
            item = QListWidgetItem(_dot_icon(None if group.key is None else group_colour(group.key)),
                                   f"{group.label}  ({group.count:,})")
            item.setData(Qt.ItemDataRole.UserRole, ALL_PHOTOS if group.key is None else group.key)
            self.groups.addItem(item)
            if group.key == current:
                self.groups.setCurrentItem(item)
        self.groups.blockSignals(False)

    def group_keys(self) -> list[int | None]:
        return [self._key(self.groups.item(i)) for i in range(self.groups.count())]

    def select_group(self, key: int | None) -> None:
        keys = self.group_keys()
        if key in keys:
            self.groups.setCurrentRow(keys.index(key))

    @staticmethod
    def _key(item: QListWidgetItem) -> int | None:
        key = int(item.data(Qt.ItemDataRole.UserRole))
        return None if key == ALL_PHOTOS else key

    def _on_group_clicked(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if current is not None:
            self.filterChanged.emit(self._key(current))
