"""The confidence dial in the window: raw for typed categories, in accuracy once the classifier has labels.

What the dial says ("File automatically when at least 80 % likely right — 20 photos filed, 0
to Unsure (estimated from your 10 labels)"), what the grid's groups count and what an export
writes must be the core's numbers for the same classifier and target
(:meth:`Library.sort` with ``target_accuracy``, as ``photosort sort --target-accuracy``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from photosort.core.calibration import NO_ESTIMATE_TYPED, headline
from photosort.core.engine import Engine
from photosort.core.indexer import PipelineOptions
from photosort.core.library import Sorting
from photosort.core.sorting import UNSURE
from photosort.core.zeroshot import Category
from photosort.gui.main_window import MainWindow

TIMEOUT_MS = 60_000  # a hang guard, not a speed budget: a busy machine may take its time
SMALL_BATCHES = PipelineOptions(batch_size=8, decode_threads=2)
KINDS = ("beach", "forest", "night", "document", "sunset")


def set_dial(qtbot, window: MainWindow, percent: int) -> None:
    """Move the slider as a user would, and wait until the grid and the dial's counts follow."""
    if window.panel.slider.value() == percent:
        return
    with qtbot.waitSignal(window.classifiers.dial.updated, timeout=TIMEOUT_MS):
        window.panel.slider.setValue(percent)


def core_sort(window: MainWindow, folder: Path, target: float):
    """The same classifier and target through the core alone (another engine on the same data folder)."""
    engine = Engine(window.settings)
    try:
        return engine.open_library([folder]).sort(Sorting.by_classifier("Kinds"), target_accuracy=target)
    finally:
        engine.close()


def positions(window: MainWindow) -> list[tuple[int, int, int, int]]:
    """Where the dial's parts and the group list are in the side panel."""
    QApplication.processEvents()
    panel = window.panel
    out = []
    for widget in (panel.dial_title, panel.slider, panel.dial_detail, panel.groups):
        corner = widget.mapTo(panel, QPoint(0, 0))
        out.append((corner.x(), corner.y(), widget.width(), widget.height()))
    return out


@pytest.fixture
def calibrated(qtbot, make_window, make_photos) -> tuple[MainWindow, Path]:
    """A window on 20 photos whose classifier 'Kinds' learned from 2 labels per kind: it has an estimate."""
    folder = make_photos(4)
    window = make_window()
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        window.open_folders([str(folder)])
    assert not window.panel.accuracy_mode and window.panel.dial_text() == f"Unsure below 50 % — {NO_ESTIMATE_TYPED}"
    with qtbot.waitSignal(window.classifiers.applied, timeout=TIMEOUT_MS):
        window.worker.create_classifier("Kinds", tuple(Category(k) for k in KINDS))
    assert not window.panel.accuracy_mode
    assert window.panel.dial_detail.text() == "The accuracy dial appears once at least two classes have labels."
    labels = {window.model.photo_id(r): KINDS.index(Path(window.model.path(r)).parent.name)
              for r in range(window.model.rowCount()) if Path(window.model.path(r)).stem[-3:] in ("000", "001")}
    assert len(labels) == 10
    with qtbot.waitSignal(window.classifiers.trained, timeout=TIMEOUT_MS):
        for photo_id, kind in labels.items():
            window.labeller.label([photo_id], kind)
        window.labeller.train_now()
    assert window.panel.accuracy_mode and window.classifiers.dial.calibration is not None
    return window, folder


def test_the_dial_speaks_in_accuracy_and_its_counts_are_the_cores(qtbot, calibrated) -> None:
    window, folder = calibrated
    for percent in (50, 80, 99):
        set_dial(qtbot, window, percent)
        target = percent / 100
        core = core_sort(window, folder, target)
        assert core.filing is not None and core.filing.labels == 10
        assert window.panel.dial_text() == f"{headline(target)} — {core.filing.describe_counts()}"
        assert f"{core.filing.filed:,} photo" in window.panel.dial_text()
        assert window.panel.dial_text().endswith("(estimated from your 10 labels)")
        groups = {g.key: g.count for g in window.model.groups()}
        assert groups[UNSURE] == core.filing.unsure and groups[None] == core.filing.filed + core.filing.unsure
        assert {KINDS[k]: n for k, n in groups.items() if k is not None and k >= 0} == \
            {c: n for c, n in core.counts().items() if c is not None}
        assert np.array_equal(window.model.threshold, core.filing.thresholds)  # the grid uses the core's thresholds
    set_dial(qtbot, window, 99)  # nothing is 99 % sure from 10 labels: only the labelled photos are filed
    assert window.classifiers.dial.filing().filed == 10 and window.prefs.target_accuracy() == 0.99


def test_the_dial_keeps_its_place_as_its_text_changes(qtbot, calibrated) -> None:
    window, _folder = calibrated
    set_dial(qtbot, window, 50)
    before = positions(window)
    for percent in (99, 73, 50):
        set_dial(qtbot, window, percent)
        assert positions(window) == before, percent
    title, detail = window.panel.dial_title.height(), window.panel.dial_detail.height()
    with qtbot.waitSignal(window.classifiers.applied, timeout=TIMEOUT_MS):
        window.classifiers.choose("")  # typed categories: the raw threshold and its note, in the same room
    assert not window.panel.accuracy_mode and window.panel.dial_text().startswith("Unsure below 50 % — ")
    assert (window.panel.dial_title.height(), window.panel.dial_detail.height()) == (title, detail)
    typed = positions(window)
    for value in (0, 100, 50):
        with qtbot.waitSignal(window.panel.thresholdChanged, timeout=TIMEOUT_MS):
            window.panel.slider.setValue(value)
        assert positions(window) == typed
    with qtbot.waitSignal(window.classifiers.applied, timeout=TIMEOUT_MS):
        window.classifiers.choose("Kinds")  # back: the target it had
    assert window.panel.accuracy_mode and window.panel.target_accuracy() == 0.5


def test_the_window_and_the_cli_export_the_same_folders_at_a_target_accuracy(qtbot, calibrated, tmp_path: Path,
                                                                             tiny_model: Path, capsys) -> None:
    """One truth: the export dialog and ``photosort export --target-accuracy`` put every photo in the same folder."""
    from photosort.cli import main

    window, folder = calibrated
    set_dial(qtbot, window, 80)
    window.open_export_dialog()
    dialog = window.export_dialog
    assert dialog is not None
    in_window = tmp_path / "from-window"
    dialog.destination_edit.setText(str(in_window))
    qtbot.waitUntil(lambda: dialog.plan() is not None and dialog.plan().destination == in_window, timeout=TIMEOUT_MS)
    assert dialog.unsure_rule_label.text() == "Unsure (below 80 % likely right):"
    shown = dialog.preview_counts()
    with qtbot.waitSignal(dialog.summaryShown, timeout=TIMEOUT_MS):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    from_cli = tmp_path / "from-cli"
    code = main(["export", str(folder), str(from_cli), "--classifier", "Kinds", "--target-accuracy", "0.8",
                 "--model", str(tiny_model), "--data-dir", str(window.settings.folder), "--json"])
    capsys.readouterr()
    assert code == 0

    def placed(root: Path) -> dict[str, str]:
        return {p.name: p.parent.name for p in root.rglob("*.jpg")}

    assert placed(in_window) == placed(from_cli) and len(placed(from_cli)) == 20
    groups = {g.key: g.count for g in window.model.groups()}
    assert shown.get("Unsure", 0) == groups[UNSURE]  # the dialog previewed what the grid shows


def test_the_grid_applies_one_threshold_per_class_through_the_core(qtmodeltester) -> None:
    from photosort.core.sorting import decide
    from photosort.gui.photo_model import PhotoModel

    model = PhotoModel()
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.05, 0.95], [0.5, 0.5]], np.float32)
    categories = (Category("a"), Category("b"))
    model.add_photos(np.arange(5), [f"/p/{i}.jpg" for i in range(5)], (), np.zeros((5, 0), np.float32))
    model.set_scores(categories, np.arange(5), probabilities, labels={4: 1})
    thresholds = np.array([0.8, 0.9])
    model.set_threshold(thresholds)
    qtmodeltester.check(model)
    expected = decide(probabilities, thresholds, np.array([-1, -1, -1, -1, 1]))
    assert [model.tile(r).group for r in range(5)] == [int(expected.best[i]) for i in (model.photo_id(r) for r in range(5))]
    assert {g.key: g.count for g in model.groups()} == {None: 5, 0: 1, 1: 2, UNSURE: 2}
    model.set_scores((*categories, Category("c")), np.arange(5), np.full((5, 3), 1 / 3, np.float32), labels={})
    assert {g.key: g.count for g in model.groups()}[UNSURE] == 5  # thresholds made for two classes file nothing


def test_a_classifier_trained_before_the_estimate_keeps_the_raw_dial_until_trained_again(qtbot, calibrated) -> None:
    window, _folder = calibrated
    with qtbot.waitSignal(window.classifiers.applied, timeout=TIMEOUT_MS):
        window.classifiers.choose("")
    engine = Engine(window.settings)  # what an older photosort stored: no estimate in the metrics or the file
    try:
        head = engine.classifiers.load("Kinds")
        head.metrics = {k: v for k, v in head.metrics.items() if k != "calibration"}
        engine.user.save_classifier(head.name, head.model_key, head.classes, head.to_bytes(), head.metrics)
    finally:
        engine.close()
    with qtbot.waitSignal(window.classifiers.applied, timeout=TIMEOUT_MS):
        window.classifiers.choose("Kinds")
    assert not window.panel.accuracy_mode and window.classifiers.dial.target_accuracy() is None
    assert window.panel.dial_text() == "Unsure below 50 % — The accuracy dial appears after the next training (Train Now)."
    assert window.model.threshold == 0.5
    with qtbot.waitSignal(window.classifiers.trained, timeout=TIMEOUT_MS):
        window.labeller.train_now()
    assert window.panel.accuracy_mode and window.panel.dial_text().endswith("(estimated from your 10 labels)")
