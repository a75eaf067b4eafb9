"""What the app remembers between launches, kept in one place over QSettings.

We use the INI format on every platform (organisation and application
"photosort"), so tests can redirect it with ``QSettings.setPath`` and users
can read the file. It holds only how the window looks (geometry, theme,
recent folders, sort order, threshold, export destination and folder layout):
the model, device and precision live in the core's ``settings.json`` (shared
with the CLI) and the typed categories in the user's library, so nothing here
is user data.
"""

from __future__ import annotations

import json
import logging
import os

from PySide6.QtCore import QByteArray, QSettings

from ..core.calibration import DEFAULT_TARGET, TARGET_RANGE
from ..core.export import DEFAULT_LAYOUT, LayoutError, parse_layout
from ..core.sorting import DEFAULT_THRESHOLD

log = logging.getLogger(__name__)

ORGANISATION = "photosort"
APPLICATION = "photosort"
MAX_RECENT = 8
THEMES = ("system", "light", "dark")


def forced_theme() -> str:
    """The theme ``PHOTOSORT_THEME`` names, which wins over the saved one for a run; "" when it names none.

    For desktops that do not tell Qt whether they are dark, and for screenshots and tests.
    """
    value = os.environ.get("PHOTOSORT_THEME", "").strip().lower()
    return value if value in THEMES else ""


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
        """photosort 0.1 kept the typed categories here; they move to the user's library on first start."""
        return str(self.store.value("categories/text", "", str))

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

    def target_accuracy(self) -> float:
        """The accuracy dial's target (a classifier with an estimate), within what the dial offers."""
        try:
            value = float(self.store.value("classifier/target_accuracy", DEFAULT_TARGET, float))
        except (TypeError, ValueError):
            value = DEFAULT_TARGET
        low, high = TARGET_RANGE
        return min(high, max(low, value)) if value == value else DEFAULT_TARGET

    def set_target_accuracy(self, value: float) -> None:
        self.store.setValue("classifier/target_accuracy", float(value))

    def export_destination(self) -> str:
        return str(self.store.value("export/destination", "", str))

    def set_export_destination(self, folder: str) -> None:
        self.store.setValue("export/destination", folder)

    def export_layout(self) -> str:
        """The export's folder template last used (``{category}``, ``{category}/{year}``...); a saved one that no
        longer parses (edited by hand) gives the default."""
        value = str(self.store.value("export/layout", DEFAULT_LAYOUT, str) or DEFAULT_LAYOUT)
        try:
            return parse_layout(value).template
        except LayoutError:
            log.warning("ignoring the unusable saved export layout %r", value)
            return DEFAULT_LAYOUT

    def set_export_layout(self, template: str) -> None:
        self.store.setValue("export/layout", template)

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

    def theme(self) -> str:
        """"system", "light" or "dark"; anything else (a file edited by hand) means the system's look."""
        value = str(self.store.value("window/theme", "system", str)).strip().lower()
        return value if value in THEMES else "system"

    def set_theme(self, theme: str) -> None:
        if theme not in THEMES:
            raise ValueError(f"unknown theme {theme!r}; one of {', '.join(THEMES)}")
        self.store.setValue("window/theme", theme)

    def sort_key(self) -> str:
        return str(self.store.value("view/sort", "name", str))

    def set_sort_key(self, key: str) -> None:
        self.store.setValue("view/sort", key)

    def grouped(self) -> bool:
        """View ▸ Group by Category (on unless turned off)."""
        return str(self.store.value("view/grouped", "true", str)).lower() != "false"

    def set_grouped(self, grouped: bool) -> None:
        self.store.setValue("view/grouped", "true" if grouped else "false")

    def folder_headers(self) -> bool:
        """View ▸ Folder Headers (on unless turned off): a header above each folder when sorted by folder."""
        return str(self.store.value("view/folder_headers", "true", str)).lower() != "false"

    def set_folder_headers(self, shown: bool) -> None:
        self.store.setValue("view/folder_headers", "true" if shown else "false")

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
