"""Settings: which model, where it runs, the cache (shown, with a button to clear it) and the theme.

The dialog collects the engine's choices; the main window saves them and
restarts the worker's engine. The theme is the window's own: the dialog keeps
it in the preferences and applies it when accepted. Only devices present on
this computer are offered, and each precision says what it runs as here
(both asked of the core, which imports torch: only once the dialog opens,
never at start-up). Clearing the cache asks first and then deletes only the
cache database files, never a photo.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core.config import DEFAULT_MODEL, MODES, Settings
from .preferences import Preferences, forced_theme
from .side_panel import secondary

DEVICE_LABELS = {"auto": "Automatic (GPU if there is one)", "cpu": "CPU", "cuda": "NVIDIA GPU (CUDA)",
                 "mps": "Apple GPU (MPS)"}
THEME_CHOICES = (("system", "System"), ("light", "Light"), ("dark", "Dark"))


class SettingsDialog(QDialog):
    """Model, device and precision; the cache folder with a Clear Cache button; the theme."""

    clearCacheRequested = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None, preferences: Preferences | None = None) -> None:
        super().__init__(parent)
        self.prefs = preferences if preferences is not None else Preferences()
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.model_edit = QLineEdit(settings.model)
        self.model_edit.setPlaceholderText(DEFAULT_MODEL)
        self.model_edit.setClearButtonEnabled(True)
        browse = QPushButton("Choose Folder…")
        browse.clicked.connect(self._choose_model_folder)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_edit, 1)
        model_row.addWidget(browse)
        form.addRow("Model:", model_row)
        form.addRow("", secondary(_wrapped(
            "A Hugging Face model id (downloaded once, needs internet) or a local folder saved with "
            "save_pretrained. Photos are indexed again for a new model. The model, device and precision chosen "
            "here are what the photosort command line uses too.")))

        self.device_combo = _combo(device_choices(settings.device), settings.device)
        form.addRow("Run on:", self.device_combo)
        self.precision_combo = _combo(precision_choices(settings.device), settings.mode)
        form.addRow("Precision:", self.precision_combo)
        self.device_combo.currentIndexChanged.connect(self._describe_precisions)

        self.cache_label = QLabel(str(settings.cache_path))
        self.cache_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cache_label.setWordWrap(True)
        self.clear_button = QPushButton("Clear Cache…")
        self.clear_button.clicked.connect(self._confirm_clear)
        cache_row = QHBoxLayout()
        cache_row.addWidget(self.cache_label, 1)
        cache_row.addWidget(self.clear_button)
        form.addRow("Cache:", cache_row)
        self.cache_note = secondary(_wrapped("Thumbnails and model vectors of indexed photos: rebuilt by indexing. "
                                             "Clearing it never touches your photos, classifiers or labels."))
        form.addRow("", self.cache_note)
        library_label = QLabel(str(settings.library_path))
        library_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        library_label.setWordWrap(True)
        form.addRow("Your library:", library_label)
        form.addRow("", secondary(_wrapped("Your classifiers, their labels and your categories. photosort never "
                                           "clears it; back it up with your photos.")))
        self.theme_combo = _combo(THEME_CHOICES, self.prefs.theme())
        form.addRow("Theme:", self.theme_combo)
        if forced := forced_theme():
            form.addRow("", secondary(_wrapped(f"PHOTOSORT_THEME={forced} is set, so photosort starts with that theme "
                                               "until the variable is removed.")))
        layout.addLayout(form)
        layout.addStretch(1)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.accepted.connect(self._apply_theme)

    def chosen(self) -> tuple[str, str, str]:
        """(model, device, precision) as chosen; an empty model means the default one."""
        model = self.model_edit.text().strip() or DEFAULT_MODEL
        return model, str(self.device_combo.currentData()), str(self.precision_combo.currentData())

    def chosen_theme(self) -> str:
        """"system", "light" or "dark": a window preference, not one of the engine's settings."""
        return str(self.theme_combo.currentData())

    def _apply_theme(self) -> None:
        """Remember a changed theme and show it at once (open windows repaint).

        An unchanged choice is left alone, so OK for another setting keeps a
        theme PHOTOSORT_THEME gave this run.
        """
        from .app import apply_theme  # app.py imports the main window, which imports this dialog

        theme = self.chosen_theme()
        if theme == self.prefs.theme():
            return
        self.prefs.set_theme(theme)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, theme)

    def _describe_precisions(self) -> None:
        """Say what each precision runs as on the device now chosen (bf16, fp16, int8... differ per device)."""
        for index, (_mode, label) in enumerate(precision_choices(str(self.device_combo.currentData()))):
            self.precision_combo.setItemText(index, label)

    def _choose_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a CLIP model folder", self.model_edit.text())
        if folder:
            self.model_edit.setText(folder)

    def _confirm_clear(self) -> None:
        answer = QMessageBox.question(
            self, "Clear the cache?",
            f"Delete the cache database {self.cache_label.text()}?\n\nYour photos, classifiers and labels are not "
            "touched; every folder is indexed again the next time it is opened.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self.clear_button.setEnabled(False)
            self.cache_note.setText("Clearing the cache…")
            self.clearCacheRequested.emit()

    def cache_cleared(self) -> None:
        self.clear_button.setEnabled(True)
        self.cache_note.setText("The cache was cleared.")


def device_choices(current: str) -> list[tuple[str, str]]:
    """Automatic, then the devices present here; ``current`` stays listed (marked) when it is not, so it is not lost."""
    from ..core.model import available_devices  # torch: imported by the worker by now, never at start-up

    offered = ["auto", *available_devices()]
    choices = [(device, DEVICE_LABELS.get(device, device)) for device in offered]
    if current not in offered:
        choices.append((current, f"{DEVICE_LABELS.get(current, current)} — not available on this computer"))
    return choices


def precision_choices(device: str) -> list[tuple[str, str]]:
    """Each precision mode with what it runs as on ``device`` here, in the order of the combo."""
    from ..core.model import describe_precision

    return [(mode, describe_precision(device, mode)) for mode in MODES]


def _combo(choices: Sequence[tuple[str, str]], current: str) -> QComboBox:
    combo = QComboBox()
    for value, label in choices:
        combo.addItem(label, value)
    combo.setCurrentIndex(max(0, combo.findData(current)))
    return combo


def _wrapped(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label
