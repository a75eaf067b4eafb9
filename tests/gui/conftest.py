"""Fixtures for the desktop-app tests: isolated Qt settings and a shown main window on the tiny model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from photosort.core.config import Settings
from photosort.core.indexer import PipelineOptions
from photosort.gui.main_window import MainWindow
from photosort.gui.preferences import Preferences

DEFAULT_BATCHES = PipelineOptions(batch_size=8, decode_threads=2)


@pytest.fixture(autouse=True)
def _isolated_qsettings(tmp_path: Path) -> None:
    """No test reads or writes the real user's settings."""
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "qsettings"))


@pytest.fixture
def prefs(tmp_path: Path) -> Preferences:
    return Preferences(QSettings(str(tmp_path / "prefs.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def make_window(request: pytest.FixtureRequest, qtbot, settings: Settings,
                prefs: Preferences) -> Callable[..., MainWindow]:
    """make_window(settings_=None, preferences=None): a shown window; a test module may set SMALL_BATCHES."""
    options = getattr(request.module, "SMALL_BATCHES", DEFAULT_BATCHES)

    def make(settings_: Settings | None = None, preferences: Preferences | None = None) -> MainWindow:
        window = MainWindow(settings_ or settings, preferences or prefs, options)
        qtbot.addWidget(window)
        with qtbot.waitExposed(window):
            window.show()
        return window

    return make
