"""What the app remembers between launches, kept in one place over QSettings.

We use the INI format on every platform (organisation and application
"photosort"), so tests can redirect it with ``QSettings.setPath`` and users
can read the file. Engine choices saved in the Settings dialog apply where
the command line and environment left the default, so ``--model`` and
``PHOTOSORT_MODEL`` still win for one launch.
"""

from __future__ import annotations

import json
import logging

from PySide6.QtCore import QByteArray, QSettings

from ..core.config import DEFAULT_MODEL, DEVICES, MODES, Settings
from ..core.zeroshot import DEFAULT_THRESHOLD

log = logging.getLogger(__name__)

ORGANISATION = "photosort"
APPLICATION = "photosort"
MAX_RECENT = 8


def open_qsettings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


class Preferences:
    """Typed access to the saved preferences; every key is named here and nowhere else."""

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store if store is not None else open_qsettings()

    # ---- folders -------------------------------------------------------------------
    def recent_folders(self) -> list[str]:
        return [f for f in self._json("folders/recent", []) if isinstance(f, str)]

    def remember_folders(self, folders: list[str]) -> None:
        """Put ``folders`` first in the recent list (most recent first, no duplicates)."""
        recent = list(dict.fromkeys([*folders, *self.recent_folders()]))[:MAX_RECENT]
        self.store.setValue("folders/recent", json.dumps(recent))

    # ---- categories ----------------------------------------------------------------
    def categories_text(self) -> str:
        return str(self.store.value("categories/text", "", str))

    def set_categories_text(self, text: str) -> None:
        self.store.setValue("categories/text", text)

    def threshold(self) -> float:
        value = self.store.value("categories/threshold", DEFAULT_THRESHOLD, float)
        return min(1.0, max(0.0, float(value)))

    def set_threshold(self, value: float) -> None:
        self.store.setValue("categories/threshold", float(value))

    # ---- classifiers and export ------------------------------------------------------
    def active_classifier(self) -> str:
        """The classifier that sorted the grid last time ("" : the typed categories)."""
        return str(self.store.value("classifier/active", "", str))

    def set_active_classifier(self, name: str) -> None:
        self.store.setValue("classifier/active", name)

    def export_destination(self) -> str:
        return str(self.store.value("export/destination", "", str))

    def set_export_destination(self, folder: str) -> None:
        self.store.setValue("export/destination", folder)

    # ---- view ----------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        value = self.store.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def set_geometry(self, geometry: QByteArray) -> None:
        self.store.setValue("window/geometry", geometry)

    def splitter_state(self) -> QByteArray | None:
        value = self.store.value("window/splitter")
        return value if isinstance(value, QByteArray) else None

    def set_splitter_state(self, state: QByteArray) -> None:
        self.store.setValue("window/splitter", state)

    def sort_key(self) -> str:
        return str(self.store.value("view/sort", "name", str))

    def set_sort_key(self, key: str) -> None:
        self.store.setValue("view/sort", key)

    # ---- engine --------------------------------------------------------------------
    def saved_engine(self) -> dict[str, str]:
        """The model/device/precision chosen in the Settings dialog (only those ever saved)."""
        out = {}
        for key in ("model", "device", "precision"):
            value = str(self.store.value(f"engine/{key}", "", str)).strip()
            if value:
                out[key] = value
        return out

    def save_engine(self, model: str, device: str, precision: str) -> None:
        self.store.setValue("engine/model", model)
        self.store.setValue("engine/device", device)
        self.store.setValue("engine/precision", precision)

    def effective_settings(self, base: Settings) -> Settings:
        """``base`` (flags and environment) with saved choices filling in where ``base`` has the default."""
        saved = self.saved_engine()
        changes: dict[str, object] = {}
        if "model" in saved and base.model == DEFAULT_MODEL:
            changes["model"] = saved["model"]
        if saved.get("device") in DEVICES and base.device == "auto":
            changes["device"] = saved["device"]
        if saved.get("precision") in MODES and base.mode == "auto":
            changes["mode"] = saved["precision"]
        return base.with_changes(**changes) if changes else base

    def sync(self) -> None:
        self.store.sync()

    def _json(self, key: str, default: list) -> list:
        raw = self.store.value(key, "", str)
        if not raw:
            return default
        try:
            value = json.loads(raw)
        except ValueError:
            log.warning("ignoring unreadable preference %s", key)
            return default
        return value if isinstance(value, list) else default
