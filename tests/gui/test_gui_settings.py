"""The Settings dialog: the theme (remembered, applied live, System really back to the system's look),
devices offered only when present, and precision labels that say what runs on this computer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication, QLabel

from photosort.core import model as model_mod
from photosort.core.config import DEFAULT_MODEL, Settings
from photosort.gui.app import apply_theme, create_application, dark_palette, remember_system_look, start_theme
from photosort.gui.preferences import Preferences
from photosort.gui.settings_dialog import SettingsDialog

WINDOW = QPalette.ColorRole.Window


@pytest.fixture
def system_look(qapp: QApplication) -> Iterator[tuple[str, QPalette]]:
    """The application's style name and palette before the test; put back after it, whatever it applied."""
    remember_system_look(qapp)
    before = (qapp.style().name(), QPalette(qapp.palette()))
    yield before
    apply_theme(qapp, "system")


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def open_dialog(qtbot, settings: Settings, prefs: Preferences) -> SettingsDialog:
    dialog = SettingsDialog(settings, None, prefs)
    qtbot.addWidget(dialog)
    with qtbot.waitExposed(dialog):
        dialog.show()
    return dialog


def choose(combo, value: str) -> None:
    index = combo.findData(value)
    assert index >= 0, f"{value!r} is not offered"
    combo.setCurrentIndex(index)


def offered(combo) -> list[str]:
    return [combo.itemData(i) for i in range(combo.count())]


def labels(combo) -> dict[str, str]:
    return {combo.itemData(i): combo.itemText(i) for i in range(combo.count())}


# ---- theme ---------------------------------------------------------------------------------

def test_the_theme_round_trips_through_preferences(prefs: Preferences) -> None:
    assert prefs.theme() == "system"
    for theme in ("dark", "light", "system"):
        prefs.set_theme(theme)
        assert Preferences(prefs.store).theme() == theme
    prefs.store.setValue("window/theme", "purple")  # edited by hand
    assert prefs.theme() == "system"
    with pytest.raises(ValueError):
        prefs.set_theme("purple")


def test_dark_then_system_goes_back_to_the_original_look(qtbot, qapp, settings, prefs, system_look) -> None:
    style, palette = system_look
    dialog = open_dialog(qtbot, settings, prefs)
    assert dialog.theme_combo.currentData() == "system"
    choose(dialog.theme_combo, "dark")
    dialog.accept()
    assert prefs.theme() == "dark"
    assert qapp.palette().color(WINDOW) == dark_palette().color(WINDOW) != palette.color(WINDOW)

    again = open_dialog(qtbot, settings, prefs)
    assert again.theme_combo.currentData() == "dark", "the dialog shows the remembered theme"
    choose(again.theme_combo, "system")
    again.accept()
    assert prefs.theme() == "system"
    assert qapp.style().name() == style
    assert qapp.palette() == palette


def test_light_then_system_goes_back_too(qtbot, qapp, settings, prefs, system_look) -> None:
    style, palette = system_look
    dialog = open_dialog(qtbot, settings, prefs)
    choose(dialog.theme_combo, "light")
    dialog.accept()
    assert qapp.style().name().lower() == "fusion"
    assert qapp.palette().color(WINDOW) == qapp.style().standardPalette().color(WINDOW)
    apply_theme(qapp, "system")
    assert (qapp.style().name(), qapp.palette()) == (style, palette)


def test_cancel_leaves_the_theme_alone(qtbot, qapp, settings, prefs, system_look) -> None:
    dialog = open_dialog(qtbot, settings, prefs)
    choose(dialog.theme_combo, "dark")
    dialog.reject()
    assert prefs.theme() == "system" and qapp.palette() == system_look[1]


def test_the_variable_wins_for_the_run(qtbot, monkeypatch, qapp, settings, prefs, system_look) -> None:
    prefs.set_theme("light")
    monkeypatch.setenv("PHOTOSORT_THEME", "Dark")
    assert start_theme(prefs) == "dark"
    monkeypatch.setenv("PHOTOSORT_THEME", "neon")  # names no theme: the saved one
    assert start_theme(prefs) == "light"
    monkeypatch.delenv("PHOTOSORT_THEME")
    assert start_theme(prefs) == "light"

    monkeypatch.setenv("PHOTOSORT_THEME", "dark")
    apply_theme(qapp, start_theme(prefs))
    dialog = open_dialog(qtbot, settings, prefs)
    assert any("PHOTOSORT_THEME=dark is set" in label.text() for label in dialog.findChildren(QLabel))
    dialog.accept()  # OK for another setting: the run keeps the variable's theme
    assert qapp.palette().color(WINDOW) == dark_palette().color(WINDOW)
    assert prefs.theme() == "light"


def test_start_up_applies_the_saved_theme(monkeypatch, qapp, system_look) -> None:
    monkeypatch.delenv("PHOTOSORT_THEME", raising=False)
    Preferences().set_theme("dark")  # the user's own preferences file (isolated by tests/gui/conftest.py)
    assert create_application() is qapp
    assert qapp.palette().color(WINDOW) == dark_palette().color(WINDOW)


# ---- devices -------------------------------------------------------------------------------

def test_devices_absent_here_are_not_offered(qtbot, no_gpu, settings, prefs) -> None:
    dialog = open_dialog(qtbot, settings, prefs)
    assert offered(dialog.device_combo) == ["auto", "cpu"]
    assert dialog.device_combo.currentData() == "cpu"


def test_cuda_is_offered_when_present(qtbot, monkeypatch, no_gpu, settings, prefs) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    dialog = open_dialog(qtbot, settings, prefs)
    assert offered(dialog.device_combo) == ["auto", "cpu", "cuda"]
    assert labels(dialog.device_combo)["cuda"] == "NVIDIA GPU (CUDA)"


def test_a_saved_device_that_is_absent_stays_visible(qtbot, no_gpu, settings, prefs) -> None:
    dialog = open_dialog(qtbot, settings.with_changes(device="cuda"), prefs)
    assert offered(dialog.device_combo) == ["auto", "cpu", "cuda"]
    assert dialog.device_combo.currentText() == "NVIDIA GPU (CUDA) — not available on this computer"
    assert dialog.chosen()[1] == "cuda", "OK without touching it keeps the saved choice"


# ---- precision -----------------------------------------------------------------------------

@pytest.mark.parametrize(("bf16", "expected"), [
    (True, {"auto": "Automatic — bf16 on this CPU", "fp32": "Exact — fp32 on this CPU",
            "fast": "Fast — bf16 + compiled on this CPU"}),
    (False, {"auto": "Automatic — fp32 on this CPU", "fp32": "Exact — fp32 on this CPU",
             "fast": "Fast — int8 on this CPU"}),
])
def test_precision_labels_say_what_runs_on_this_cpu(qtbot, monkeypatch, no_gpu, settings, prefs, bf16: bool,
                                                    expected: dict[str, str]) -> None:
    monkeypatch.setattr(model_mod, "cpu_has_fast_bf16", lambda: bf16)
    dialog = open_dialog(qtbot, settings, prefs)
    shown = labels(dialog.precision_combo)
    assert list(shown) == ["auto", "fp32", "fast"]
    for mode, start in expected.items():
        assert shown[mode].startswith(start), shown[mode]
        ran = model_mod.pick_precision(torch.device("cpu"), mode)
        assert ("int8" if ran.quantized else ran.name.replace("+compile", " + compiled")) in shown[mode]
    if not bf16:
        assert "indexed again" in shown["fast"], "int8 vectors are kept apart in the cache"


def test_precision_labels_follow_the_device_chosen(qtbot, monkeypatch, no_gpu, settings, prefs) -> None:
    monkeypatch.setattr(model_mod, "cpu_has_fast_bf16", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    dialog = open_dialog(qtbot, settings.with_changes(mode="fast"), prefs)
    choose(dialog.device_combo, "cuda")
    assert all(" — fp16 on the GPU" in text for text in labels(dialog.precision_combo).values())
    assert dialog.precision_combo.currentData() == "fast", "the choice is kept; only the words change"
    choose(dialog.device_combo, "cpu")
    assert labels(dialog.precision_combo)["auto"].startswith("Automatic — bf16 on this CPU")


def test_chosen_still_gives_model_device_and_precision(qtbot, no_gpu, settings, prefs) -> None:
    dialog = open_dialog(qtbot, settings, prefs)
    choose(dialog.device_combo, "auto")
    choose(dialog.precision_combo, "fp32")
    dialog.model_edit.clear()
    assert dialog.chosen() == (DEFAULT_MODEL, "auto", "fp32")
