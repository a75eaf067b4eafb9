"""Settings: which model, where it runs, and the cache (shown, with a button to clear it).

The dialog only collects choices; the main window saves them and restarts
the worker's engine. Clearing the cache asks first and then deletes only the
cache database files, never a photo.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
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

from ..core.config import DEFAULT_MODEL, Settings
from .side_panel import secondary

DEVICE_CHOICES = (("auto", "Automatic (GPU if there is one)"), ("cpu", "CPU"), ("cuda", "NVIDIA GPU (CUDA)"),
                  ("mps", "Apple GPU (MPS)"))
PRECISION_CHOICES = (("auto", "Automatic"), ("fp32", "Exact (fp32)"), ("fast", "Fast (int8, CPU only)"))


class SettingsDialog(QDialog):
    """Model, device and precision; the cache folder with a Clear Cache button."""

    clearCacheRequested = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
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

        self.device_combo = _combo(DEVICE_CHOICES, settings.device)
        form.addRow("Run on:", self.device_combo)
        self.precision_combo = _combo(PRECISION_CHOICES, settings.mode)
        form.addRow("Precision:", self.precision_combo)

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
        layout.addLayout(form)
        layout.addStretch(1)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def chosen(self) -> tuple[str, str, str]:
        """(model, device, precision) as chosen; an empty model means the default one."""
        model = self.model_edit.text().strip() or DEFAULT_MODEL
        return model, str(self.device_combo.currentData()), str(self.precision_combo.currentData())

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


def _combo(choices: tuple[tuple[str, str], ...], current: str) -> QComboBox:
    combo = QComboBox()
    for value, label in choices:
        combo.addItem(label, value)
    combo.setCurrentIndex(max(0, combo.findData(current)))
    return combo


def _wrapped(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label
