"""The classifier side of the panel: which classifier sorts the grid, its classes as label buttons, how good it is.

A *classifier* ("head") is the user's own: a name, its classes, and the
labels they clicked. :class:`ClassifierBar` switches between the typed
categories and the stored classifiers and holds the management menu;
:class:`LabelPanel` shows one button per class (click, or press its number,
to label the selected photos) with its label count, the cross-validated
accuracy once there are enough labels, a warning for classes with too few,
a Train button and the "Label these next" toggle. Nothing here trains or
stores anything: the window forwards requests to the worker.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.classifier import FEW_LABELS, MAX_CLASSES, MAX_NAME_CHARS, accuracy_needs
from ..core.classifiers import ClassifierSummary
from ..core.wording import plural
from ..core.zeroshot import Category, parse_categories
from .photo_model import group_colour

TYPED_CATEGORIES = "Typed categories"
KEYED_CLASSES = 9  # keys 1-9 label the first nine classes
WARNING_COLOUR = "#c77c02"


def key_icon(colour: QColor, key: str, size: int = 18) -> QIcon:
    """A rounded square in the class colour with its key (1-9) on it: the same colour as its chips in the grid."""
    ratio = 2.0
    pixmap = QPixmap(QSize(round(size * ratio), round(size * ratio)))
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    painter.drawRoundedRect(1, 1, size - 2, size - 2, 4, 4)
    if key:
        font = QFont()
        font.setPixelSize(round(size * 0.62))
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QColor("#1a1a1a") if colour.lightnessF() > 0.62 else QColor("#ffffff"))
        painter.drawText(0, 0, size, size, Qt.AlignmentFlag.AlignCenter, key)
    painter.end()
    return QIcon(pixmap)


def describe_quality(classes: list[str], counts: list[int], accuracy: float | None) -> str:
    """One line on how good the classifier is, or what to do to find out."""
    total = sum(counts)
    if total == 0:
        keys = f"1–{min(len(counts), KEYED_CLASSES)}" if len(counts) > 1 else "1"
        return (f"Select photos, then press {keys} or click a class to label them. "
                "The classifier learns from every label.")
    labels = plural(total, "label")
    if accuracy is not None:
        return f"{labels} · accuracy {accuracy:.0%} (cross-validated)"
    needs = accuracy_needs(classes, counts)
    return f"{labels}. The accuracy shows once {needs}." if needs else f"{labels}. The accuracy shows after the next training."


def few_label_warning(classes: list[str], counts: list[int]) -> str:
    """Which classes need more labels, in a line that fits the panel (empty when none, or before the first label);
    the counts beside the class buttons are marked too."""
    if sum(counts) == 0:
        return ""
    few = [name for name, count in zip(classes, counts, strict=True) if count < FEW_LABELS]
    if not few:
        return ""
    which = f"{few[0]} needs" if len(few) == 1 else f"{plural(len(few), 'class', 'classes')} need"
    return f"⚠ {which} more labels: at least {FEW_LABELS} photos each."


def _fixed_lines(label: QLabel, lines: int) -> QLabel:
    """A wrapping label exactly ``lines`` lines high, whatever it says (the full text is its tooltip too)."""
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    label.setFixedHeight(lines * label.fontMetrics().lineSpacing() + 2)
    return label


class ClassifierBar(QWidget):
    """The classifier in use (typed categories or a stored one) and the menu to manage classifiers."""

    classifierChosen = Signal(str)  # "" for the typed categories

    def __init__(self, menu: QMenu | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.combo = QComboBox()
        self.combo.setAccessibleName("Classifier")
        self.combo.setToolTip("What sorts the photos: the categories you type, or a classifier you trained")
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.combo.activated.connect(lambda i: self.classifierChosen.emit(str(self.combo.itemData(i) or "")))
        layout.addWidget(self.combo, 1)
        self.manage_button = QPushButton("Manage")
        self.manage_button.setToolTip("New, rename, delete, export or import classifiers")
        if menu is not None:
            self.manage_button.setMenu(menu)
        layout.addWidget(self.manage_button)
        self._summaries: list[ClassifierSummary] = []
        self.set_classifiers([], "")

    def set_classifiers(self, summaries: list[ClassifierSummary], current: str) -> None:
        """List the typed categories and every stored classifier; those made for another model say so."""
        self._summaries = list(summaries)
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem(TYPED_CATEGORIES, "")
        for summary in summaries:
            text = summary.name if summary.for_this_model else f"{summary.name} (other model)"
            self.combo.addItem(text, summary.name)
            tip = f"Classes: {', '.join(summary.classes)} · {summary.labels:,} labels"
            if not summary.for_this_model:
                tip += f"\nMade for {summary.model_key}; choosing it trains it again for this model"
            self.combo.setItemData(self.combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.combo.blockSignals(False)
        self.set_current(current)

    def set_current(self, name: str) -> None:
        self.combo.blockSignals(True)
        index = self.combo.findData(name)
        self.combo.setCurrentIndex(index if index >= 0 else 0)
        self.combo.blockSignals(False)

    def current(self) -> str:
        return str(self.combo.currentData() or "")

    def classifier_names(self) -> list[str]:
        return [s.name for s in self._summaries]

    def summaries(self) -> list[ClassifierSummary]:
        return list(self._summaries)


class LabelPanel(QWidget):
    """Label buttons with counts, quality, warnings, Train and "Label these next" for the classifier in use."""

    labelRequested = Signal(int)  # class index: label the selected photos
    clearRequested = Signal()  # remove the selected photos' labels
    trainRequested = Signal()
    leastSureToggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._classes: list[str] = []
        self._counts: list[int] = []
        self._accuracy: float | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.class_grid = QGridLayout()
        self.class_grid.setContentsMargins(0, 0, 0, 0)
        self.class_grid.setHorizontalSpacing(6)
        self.class_grid.setVerticalSpacing(3)
        self.class_grid.setColumnStretch(0, 1)
        layout.addLayout(self.class_grid)
        self.class_buttons: list[QToolButton] = []
        self.count_labels: list[QLabel] = []
        layout.addLayout(self._build_buttons())  # above the text that comes and goes: buttons never move
        # The text below changes with every label; each line keeps a fixed height, so that nothing under it (the
        # dial, the groups) moves under the pointer while the user labels.
        self.quality_label = _fixed_lines(QLabel(), 3)
        layout.addWidget(self.quality_label)
        self.warning_label = _fixed_lines(QLabel(), 2)
        self.warning_label.setStyleSheet(f"color: {WARNING_COLOUR};")
        layout.addWidget(self.warning_label)
        self.status_label = _fixed_lines(QLabel(), 1)
        self.status_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout.addWidget(self.status_label)

    def _build_buttons(self) -> QGridLayout:
        grid = QGridLayout()
        grid.setSpacing(4)
        self.train_button = QPushButton("Train Now")
        self.train_button.setToolTip("Learn from the labels now (it also happens by itself a moment after you label)")
        self.train_button.clicked.connect(self.trainRequested)
        self.clear_button = QPushButton("Remove Label")
        self.clear_button.setToolTip("Remove the labels of the selected photos (0 or Backspace)")
        self.clear_button.clicked.connect(self.clearRequested)
        self.least_sure_button = QPushButton("Label These Next")
        self.least_sure_button.setCheckable(True)
        self.least_sure_button.setToolTip("Show the photos the classifier is least sure about, least sure first: "
                                          "labelling those helps it most")
        self.least_sure_button.toggled.connect(self.leastSureToggled)
        grid.addWidget(self.train_button, 0, 0)
        grid.addWidget(self.clear_button, 0, 1)
        grid.addWidget(self.least_sure_button, 1, 0, 1, 2)
        return grid

    # ---- classes ----------------------------------------------------------------------------
    def set_classes(self, classes: list[str], counts: list[int], accuracy: float | None) -> None:
        """Rebuild the class buttons for a classifier."""
        for widget in (*self.class_buttons, *self.count_labels):
            self.class_grid.removeWidget(widget)
            widget.deleteLater()
        self.class_buttons, self.count_labels = [], []
        self._classes = list(classes)
        for k, name in enumerate(classes):
            button = QToolButton()
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            button.setIcon(key_icon(group_colour(k), str(k + 1) if k < KEYED_CLASSES else ""))
            button.setText(name)
            key = f" (key {k + 1})" if k < KEYED_CLASSES else ""
            button.setToolTip(f"Label the selected photos {name}{key}")
            button.setAccessibleName(f"Label as {name}")
            button.clicked.connect(lambda _c=False, index=k: self.labelRequested.emit(index))
            count = QLabel()
            count.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.class_grid.addWidget(button, k, 0)
            self.class_grid.addWidget(count, k, 1)
            self.class_buttons.append(button)
            self.count_labels.append(count)
        self.set_counts(counts, accuracy)

    def set_counts(self, counts: list[int], accuracy: float | None = None) -> None:
        """Labels per class (live as the user clicks) and the accuracy of the last training."""
        self._counts = list(counts)[: len(self._classes)] + [0] * max(0, len(self._classes) - len(counts))
        self._accuracy = accuracy
        for k, count in enumerate(self._counts):
            few = sum(self._counts) > 0 and count < FEW_LABELS
            self.count_labels[k].setText(f"{'⚠ ' if few else ''}{count:,}")
            self.count_labels[k].setStyleSheet(f"color: {WARNING_COLOUR};" if few else "")
            self.count_labels[k].setToolTip(plural(count, "label")
                                            + (f": label at least {FEW_LABELS}" if few else ""))
        self.quality_label.setText(describe_quality(self._classes, self._counts, accuracy))
        self.warning_label.setText(few_label_warning(self._classes, self._counts))

    def counts(self) -> list[int]:
        return list(self._counts)

    @property
    def accuracy(self) -> float | None:
        return self._accuracy

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def set_least_sure(self, on: bool) -> None:
        self.least_sure_button.blockSignals(True)
        self.least_sure_button.setChecked(on)
        self.least_sure_button.blockSignals(False)


class NewClassifierDialog(QDialog):
    """Name and classes of a new classifier, typed or taken from the current categories."""

    def __init__(self, taken: list[str], current_categories: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New Classifier")
        self._taken = {t.casefold() for t in taken}
        self._current = current_categories
        layout = QVBoxLayout(self)
        intro = QLabel("A classifier learns your own way of sorting from the photos you label. Until you label "
                       "some, it sorts like typed categories of the same names.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. Trips")
        self.name_edit.setMaxLength(MAX_NAME_CHARS)
        form.addRow("Name:", self.name_edit)
        self.classes_edit = QPlainTextEdit()
        self.classes_edit.setPlaceholderText("One class per line, e.g.\nbeach\ncity\nhiking")
        self.classes_edit.setTabChangesFocus(True)
        self.classes_edit.setMinimumHeight(120)
        form.addRow("Classes:", self.classes_edit)
        layout.addLayout(form)
        self.from_categories_button = QPushButton("Use the Current Categories")
        self.from_categories_button.setEnabled(bool(parse_categories(current_categories)))
        self.from_categories_button.clicked.connect(self.use_current_categories)
        layout.addWidget(self.from_categories_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.error_label = QLabel()
        self.error_label.setStyleSheet(f"color: {WARNING_COLOUR};")
        layout.addWidget(self.error_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Create")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.name_edit.textChanged.connect(self._validate)
        self.classes_edit.textChanged.connect(self._validate)
        self._validate()

    def use_current_categories(self) -> None:
        """Start from the typed categories (their own prompts are kept for the classifier's prior)."""
        self.classes_edit.setPlainText("\n".join(
            f"{c.name} = {c.prompt}" if c.prompt else c.name for c in parse_categories(self._current)))
        if not self.name_edit.text().strip():
            self.name_edit.setText("My categories")

    def name(self) -> str:
        return " ".join(self.name_edit.text().split())

    def categories(self) -> tuple[Category, ...]:
        return tuple(parse_categories(self.classes_edit.toPlainText()))

    def _validate(self) -> None:
        error = ""
        if self.name().casefold() in self._taken:
            error = f"A classifier named '{self.name()}' already exists."
        elif len(self.categories()) > MAX_CLASSES:
            error = f"A classifier can have at most {MAX_CLASSES} classes."
        elif self.classes_edit.toPlainText().strip() and len(self.categories()) < 2:
            error = "Give at least two classes."
        self.error_label.setText(error)
        ok = bool(self.name()) and len(self.categories()) >= 2 and not error
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)
