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

from ..core.calibration import DEFAULT_TARGET, NO_ESTIMATE_TYPED, TARGET_RANGE, headline, percent
from ..core.sorting import DEFAULT_THRESHOLD
from ..core.zeroshot import Category, parse_categories, typing_notes
from .classifier_panel import WARNING_COLOUR, ClassifierBar, LabelPanel
from .photo_model import Group, group_colour

ALL_PHOTOS = -100  # item data for "All photos" (never None: PySide6 6.12 leaks None read back from item data)
TYPING_DEBOUNCE_MS = 400
SLIDER_COALESCE_MS = 60
NBSP = "\u00a0"
PLACEHOLDER = "One category per line, e.g.\nbeach\nforest\npets = a photo of a cat or a dog"
HINT = "Photos re-sort as you type. Write <i>name = prompt</i> to describe a category yourself."


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
    thresholdChanged = Signal(float)  # the raw threshold (typed categories, a classifier without an estimate)
    targetAccuracyChanged = Signal(float)  # the accuracy dial's target (a classifier with an estimate)
    filterChanged = Signal(object)  # group key: None (all), UNSURE, or a category index
    groupClicked = Signal(object)  # a group was clicked, even the one shown (leaves "Label these next")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._sent: tuple[Category, ...] = ()
        self._typing = QTimer(self, singleShot=True, interval=TYPING_DEBOUNCE_MS)
        self._typing.timeout.connect(self.commit_text)
        self._sliding = QTimer(self, singleShot=True, interval=SLIDER_COALESCE_MS)
        self._sliding.timeout.connect(self._emit_slider)
        self._raw = round(DEFAULT_THRESHOLD * 100)  # the slider's value in each mode, in percent
        self._target = round(DEFAULT_TARGET * 100)
        self._accuracy_mode = False
        self._build()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 8, 12)
        layout.setSpacing(6)
        layout.addWidget(_heading("Classifier"))
        self.classifier_bar = ClassifierBar()
        layout.addWidget(self.classifier_bar)
        layout.addSpacing(4)
        self.label_panel = LabelPanel()
        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_editor())
        self.pages.addWidget(self.label_panel)
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
        self.groups.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # long names: elided, tooltip
        self.groups.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.groups.setAccessibleName("Groups")
        self.groups.currentItemChanged.connect(self._on_group_clicked)
        self.groups.itemClicked.connect(lambda item: self.groupClicked.emit(self._key(item)))
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
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.hint.setFixedHeight(3 * self.hint.fontMetrics().lineSpacing() + 2)  # notes come and go: nothing moves
        secondary(self.hint)
        layout.addWidget(self.hint)
        return page

    def show_classifier(self, name: str) -> None:
        """Show the label buttons of classifier ``name``, or (with "") the category editor."""
        self.pages.setCurrentWidget(self.label_panel if name else self.pages.widget(0))
        self.classifier_bar.set_current(name)

    def _build_slider(self) -> QVBoxLayout:
        """The dial: "Unsure below 50 %", or with an estimate "File automatically when at least 95 % likely right".

        Its two lines of text keep a fixed height (two and three lines), so that
        nothing below them moves as the text changes with the slider or the mode.
        """
        box = QVBoxLayout()
        box.setSpacing(4)
        self.threshold_label = self.dial_title = _heading("")
        self.dial_title.setWordWrap(True)
        self.dial_title.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom)
        self.dial_title.setFixedHeight(2 * self.dial_title.fontMetrics().lineSpacing() + 2)
        box.addWidget(self.dial_title)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setPageStep(10)
        self.slider.valueChanged.connect(self._on_slider)
        box.addWidget(self.slider)
        self.dial_detail = secondary(QLabel())
        self.dial_detail.setWordWrap(True)
        self.dial_detail.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.dial_detail.setFixedHeight(3 * self.dial_detail.fontMetrics().lineSpacing() + 2)
        box.addWidget(self.dial_detail)
        self.show_raw_threshold(NO_ESTIMATE_TYPED)
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
        self._show_typing_notes()
        categories = self.categories()
        if categories != self._sent:
            self._sent = categories
            self.categoriesChanged.emit(categories)

    def _show_typing_notes(self) -> None:
        """Under the categories: a category typed twice, or too few to tell photos apart (the core's words)."""
        notes = typing_notes(self.text())
        self.hint.setText(" ".join(notes) if notes else HINT)
        self.hint.setStyleSheet(f"color: {WARNING_COLOUR};" if notes else "")
        self.hint.setToolTip(" ".join(notes))

    def set_busy(self, busy: bool) -> None:
        self.busy_label.setVisible(busy)

    # ---- the dial: a raw threshold, or a target accuracy --------------------------------
    @property
    def accuracy_mode(self) -> bool:
        """Whether the slider chooses a target accuracy (a classifier with an estimate) rather than a threshold."""
        return self._accuracy_mode

    def threshold(self) -> float:
        """The raw threshold (what typed categories and classifiers without an estimate use), in either mode."""
        return self._raw / 100.0

    def set_threshold(self, value: float) -> None:
        self._raw = max(0, min(100, round(value * 100)))
        if not self._accuracy_mode:
            self._set_slider(self._raw)
        self._update_title()

    def target_accuracy(self) -> float:
        return self._target / 100.0

    def set_target_accuracy(self, value: float) -> None:
        low, high = (round(v * 100) for v in TARGET_RANGE)
        self._target = max(low, min(high, round(value * 100)))
        if self._accuracy_mode:
            self._set_slider(self._target)
        self._update_title()

    def show_raw_threshold(self, note: str) -> None:
        """"Unsure below 50 %", with a note on when the accuracy dial appears."""
        self._accuracy_mode = False
        self.slider.blockSignals(True)
        self.slider.setRange(0, 100)
        self.slider.setPageStep(10)
        self.slider.blockSignals(False)
        self._set_slider(self._raw)
        self.slider.setAccessibleName("Unsure below this confidence")
        self.slider.setToolTip("A photo whose best category has less confidence than this goes to Unsure.")
        self.dial_detail.setText(note)
        self._update_title()

    def show_target_accuracy(self) -> None:
        """"File automatically when at least 95 % likely right"; the counts follow with :meth:`set_dial_detail`."""
        self._accuracy_mode = True
        low, high = (round(v * 100) for v in TARGET_RANGE)
        self.slider.blockSignals(True)
        self.slider.setRange(low, high)
        self.slider.setPageStep(5)
        self.slider.blockSignals(False)
        self._set_slider(self._target)
        self.slider.setAccessibleName("File automatically when at least this likely right")
        self.slider.setToolTip("Photos the classifier's labels show less likely right than this go to Unsure "
                               "(estimated from the labels, per class where a class has 10 or more).")
        self._update_title()

    def set_dial_detail(self, text: str) -> None:
        """The line under the dial: how many photos it files and on how many labels that rests."""
        self.dial_detail.setText(text)

    def dial_text(self) -> str:
        """The dial's whole sentence, as a screen reader and the tests read it."""
        return f"{self.dial_title.text()} — {self.dial_detail.text()}".replace(NBSP, " ")

    def _set_slider(self, value: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(value)
        self.slider.blockSignals(False)

    def _on_slider(self, value: int) -> None:
        if self._accuracy_mode:
            self._target = value
        else:
            self._raw = value
        self._update_title()
        self._sliding.start()

    def _emit_slider(self) -> None:
        if self._accuracy_mode:
            self.targetAccuracyChanged.emit(self.target_accuracy())
        else:
            self.thresholdChanged.emit(self.threshold())

    def _update_title(self) -> None:
        title = headline(self.target_accuracy()) if self._accuracy_mode else f"Unsure below {percent(self.threshold())}"
        self.dial_title.setText(title.replace(" %", f"{NBSP}%"))  # "95 %" never breaks across lines
        self.slider.setAccessibleDescription(self.dial_text())

    # ---- groups --------------------------------------------------------------------
    def set_groups(self, groups: list[Group], current: int | None) -> None:
        """Rebuild the group list (names, colours, counts) keeping ``current`` selected."""
        self.groups.blockSignals(True)
        self.groups.clear()
        for group in groups:
            item = QListWidgetItem(_dot_icon(None if group.key is None else group_colour(group.key)),
                                   f"{group.label}  ({group.count:,})")
            item.setData(Qt.ItemDataRole.UserRole, ALL_PHOTOS if group.key is None else group.key)
            item.setToolTip(f"{group.label}: {group.count:,}")
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
