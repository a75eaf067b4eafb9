"""Click-to-label training in the window: classifiers, labels by key, button and menu, undo, training, restarts.

Everything runs through the real worker thread and engine with the tiny random
CLIP: its zero-shot answers are at chance, but the conftest's five kinds differ
in colour, so a few labels per kind teach a classifier to sort the rest. The
tests check what a user sees: chips, counts, groups, the accuracy line, and
what is still there after a restart.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelection, QItemSelectionModel, QSettings, Qt
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from photosort.core.classifier import Classifier
from photosort.core.engine import Engine
from photosort.core.indexer import PipelineOptions
from photosort.core.zeroshot import Category
from photosort.gui.main_window import MainWindow
from photosort.gui.photo_model import LEAST_SURE_COUNT
from photosort.gui.preferences import Preferences

TIMEOUT_MS = 60_000  # a hang guard, not a speed budget: a busy machine may take its time
SMALL_BATCHES = PipelineOptions(batch_size=8, decode_threads=2)
KINDS = ("beach", "forest", "night", "document", "sunset")


@pytest.fixture
def library(make_photos) -> Path:
    return make_photos(4)  # 20 photos, 4 of each kind


def open_and_wait(qtbot, window: MainWindow, folder: Path) -> None:
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        window.open_folders([str(folder)])


def create_classifier(qtbot, window: MainWindow, name: str = "Kinds", classes: tuple[str, ...] = KINDS) -> None:
    with qtbot.waitSignal(window.classifiers.applied, timeout=TIMEOUT_MS, check_params_cb=lambda n: n == name):
        window.worker.create_classifier(name, tuple(Category(c) for c in classes))


def rows_of_kind(window: MainWindow, kind: str) -> list[int]:
    return [r for r in range(window.model.rowCount()) if Path(window.model.path(r)).parent.name == kind]


def select_rows(window: MainWindow, rows: list[int]) -> None:
    selection = QItemSelection()
    for row in rows:
        index = window.model.index(row)
        selection.select(index, index)
    window.view.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
    window.view.selectionModel().setCurrentIndex(window.model.index(rows[0]), QItemSelectionModel.SelectionFlag.NoUpdate)
    window.view.setFocus()


def labels_by_path(window: MainWindow) -> dict[str, str]:
    return {Path(window.model.path(r)).name: window.model.tile(r).label
            for r in range(window.model.rowCount()) if window.model.tile(r).label is not None}


def label_kinds(qtbot, window: MainWindow, per_kind: int) -> None:
    """Label the first ``per_kind`` photos of each kind by pressing its number key, then wait for the training.

    On a busy machine the keys can be slower than the retrain debounce, so trainings may start between them: the
    wait is for the training that has every label, with none still waiting to start.
    """
    learned: list[int] = []  # labels each finished training learned from
    window.classifiers.trained.connect(lambda trained: learned.append(trained.report.labels))
    for k, kind in enumerate(KINDS):
        names = sorted(Path(window.model.path(r)).name for r in rows_of_kind(window, kind))[:per_kind]
        select_rows(window, [r for r in rows_of_kind(window, kind) if Path(window.model.path(r)).name in names])
        qtbot.keyClick(window.view, Qt.Key(Qt.Key.Key_1 + k))
    window.labeller.flush()
    qtbot.waitUntil(lambda: not window.labeller.training_pending and per_kind * len(KINDS) in learned,
                    timeout=TIMEOUT_MS)


# ---- creating classifiers ---------------------------------------------------------------------------
def test_a_classifier_from_the_current_categories_starts_out_predicting_like_them(qtbot, make_window,
                                                                                  library: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, library)
    with qtbot.waitSignal(window.categoriesApplied, timeout=TIMEOUT_MS):
        window.panel.editor.setPlainText("beach\nforest\nnight\ndocument\nsunset")
    zero_shot = {window.model.photo_id(r): (window.model.tile(r).category, window.model.tile(r).score)
                 for r in range(window.model.rowCount())}
    window.classifiers.new(from_categories=True)
    dialog = window.classifiers.new_dialog
    assert dialog is not None and dialog.classes_edit.toPlainText().splitlines() == list(KINDS)
    dialog.name_edit.setText("Trips")
    with qtbot.waitSignal(window.classifiers.applied, timeout=TIMEOUT_MS):
        dialog.accept()
    assert window.classifiers.active == "Trips" and window.panel.classifier_bar.combo.currentText() == "Trips"
    assert window.panel.pages.currentWidget() is window.panel.label_panel
    assert [b.text() for b in window.panel.label_panel.class_buttons] == list(KINDS)
    assert "press 1–5" in window.panel.label_panel.quality_label.text()
    head = {window.model.photo_id(r): (window.model.tile(r).category, window.model.tile(r).score)
            for r in range(window.model.rowCount())}
    assert {k: v[0] for k, v in head.items()} == {k: v[0] for k, v in zero_shot.items()}
    assert all(abs(head[k][1] - zero_shot[k][1]) < 1e-4 for k in head), "no labels: exactly the zero-shot answer"


def test_the_new_classifier_dialog_refuses_a_taken_name_and_a_single_class(qtbot, make_window, library: Path) -> None:
    window = make_window()
    create_classifier(qtbot, window, "Trips", ("beach", "city"))
    window.classifiers.new()
    dialog = window.classifiers.new_dialog
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    dialog.name_edit.setText("trips")
    dialog.classes_edit.setPlainText("beach\ncity")
    assert not ok.isEnabled() and "already exists" in dialog.error_label.text()
    dialog.name_edit.setText("Seasons")
    dialog.classes_edit.setPlainText("summer")
    assert not ok.isEnabled() and "two classes" in dialog.error_label.text()
    dialog.classes_edit.setPlainText("summer\nwinter")
    assert ok.isEnabled()
    dialog.reject()


# ---- labelling -----------------------------------------------------------------------------------------
def test_number_keys_label_the_selection_and_show_a_solid_label(qtbot, make_window, library: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, library)
    create_classifier(qtbot, window)
    beaches = rows_of_kind(window, "beach")[:2]
    select_rows(window, beaches)
    ids = window.classifiers.selected_photo_ids()
    qtbot.keyClick(window.view, Qt.Key.Key_1)
    rows = [window.model.row_of_photo(i) for i in ids]
    assert [window.model.tile(r).label for r in rows] == ["beach", "beach"]
    assert all(window.model.tile(r).group == 0 for r in rows), "a labelled photo is grouped under its label"
    assert window.panel.label_panel.count_labels[0].text().endswith("2")
    assert "need more labels" in window.panel.label_panel.warning_label.text()
    assert "2 labelled" in window.status_label.text()
    qtbot.keyClick(window.view, Qt.Key.Key_3)  # the same selection: night now
    assert [window.model.tile(window.model.row_of_photo(i)).label for i in ids] == ["night", "night"]
    assert window.panel.label_panel.counts() == [0, 0, 2, 0, 0]
    qtbot.keyClick(window.view, Qt.Key.Key_0)
    assert labels_by_path(window) == {}
    assert window.panel.label_panel.counts() == [0] * 5


def test_number_keys_in_the_preview_label_the_photo_shown_and_it_says_so(qtbot, make_window, library: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, library)
    create_classifier(qtbot, window)
    select_rows(window, rows_of_kind(window, "forest")[:3])  # another selection: the preview's photo wins
    row = rows_of_kind(window, "night")[0]
    shown = window.model.photo_id(row)
    window.open_preview(window.model.index(row))
    preview = window.preview
    qtbot.waitUntil(lambda: preview.image is not None, timeout=TIMEOUT_MS)
    preview.activateWindow()
    qtbot.keyClick(preview, Qt.Key.Key_3)
    assert window.model.tile(window.model.row_of_photo(shown)).label == "night"
    assert [window.model.tile(r).label for r in rows_of_kind(window, "forest")[:3]] == [None] * 3
    preview.show_row(window.model.row_of_photo(shown))
    assert "✓ night (your label)" in preview.caption.text()
    preview.close()


def test_labels_typed_by_keys_land_on_the_photo_selected_while_training_runs(qtbot, make_window,
                                                                             library: Path) -> None:
    """Key, key, key while the classifier retrains: no photo moves, each label lands where the user looked."""
    window = make_window()
    open_and_wait(qtbot, window, library)
    create_classifier(qtbot, window)
    window.set_sort("confidence")  # the order most likely to change with every training
    select_rows(window, [0])
    window.view.setFocus()
    expected: dict[int, int] = {}
    for step in range(12):
        row = window.view.currentIndex().row()
        assert row == step, "each key selects the next photo"
        photo, k = window.model.photo_id(row), step % len(KINDS)
        expected[photo] = k
        if step % 3 == 2:  # now and then a training finishes between two keys
            with qtbot.waitSignal(window.classifiers.trained, timeout=TIMEOUT_MS):
                qtbot.keyClick(window.view, Qt.Key(Qt.Key.Key_1 + k))
                window.labeller.train_now()
        else:
            qtbot.keyClick(window.view, Qt.Key(Qt.Key.Key_1 + k))
        assert [window.classifiers.selected_photo_ids()] != [[photo]], "the selection moved on"
    assert window.model.labels() == expected
    assert window.model.regroup_pending and window.regroup_button.isVisibleTo(window)
    window.regroup_action.trigger()
    assert not window.regroup_button.isVisibleTo(window) and window.model.labels() == expected


def test_class_buttons_and_the_context_menu_label_too_and_backspace_removes(qtbot, make_window,
                                                                           library: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, library)
    create_classifier(qtbot, window)
    select_rows(window, rows_of_kind(window, "forest"))
    qtbot.mouseClick(window.panel.label_panel.class_buttons[1], Qt.MouseButton.LeftButton)
    assert sorted(set(labels_by_path(window).values())) == ["forest"] and len(labels_by_path(window)) == 4
    select_rows(window, rows_of_kind(window, "sunset")[:1])
    menu = window.context_menu()
    label_as = next(a for a in menu.actions() if a.text() == "&Label As").menu()
    next(a for a in label_as.actions() if a.text() == "sunset").trigger()
    assert sorted(labels_by_path(window).values()).count("sunset") == 1
    qtbot.keyClick(window.view, Qt.Key.Key_Backspace)
    assert "sunset" not in labels_by_path(window).values()


def test_ctrl_z_undoes_labelling_step_by_step(qtbot, make_window, library: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, library)
    create_classifier(qtbot, window)
    first = rows_of_kind(window, "beach")[:1]
    select_rows(window, first)
    qtbot.keyClick(window.view, Qt.Key.Key_1)
    after_first = labels_by_path(window)
    select_rows(window, rows_of_kind(window, "night"))
    qtbot.keyClick(window.view, Qt.Key.Key_3)
    assert len(labels_by_path(window)) == 5
    assert window.undo_action.text() == "&Undo Label 4 photos as night"
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert labels_by_path(window) == after_first
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert labels_by_path(window) == {}
    window.redo_action.trigger()
    assert labels_by_path(window) == after_first
    with qtbot.waitSignal(window.classifiers.trained, timeout=TIMEOUT_MS):
        pass  # the debounce trains on what the labels are now
    engine = Engine(window.settings)
    try:
        stored = engine.classifiers.labels("Kinds")
    finally:
        engine.close()
    assert list(stored.values()) == ["beach"], "the cache holds the labels as they are after undo and redo"


def test_keys_without_a_classifier_offer_to_create_one(qtbot, make_window, library: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, library)
    select_rows(window, [0])
    qtbot.keyClick(window.view, Qt.Key.Key_1)
    assert window.message_bar.isVisible() and window.message_bar.action_button.text() == "New Classifier…"
    assert labels_by_path(window) == {}


# ---- training ------------------------------------------------------------------------------------------
def test_labels_train_the_classifier_in_the_background_and_every_tile_updates(qtbot, make_window,
                                                                             make_photos) -> None:
    window = make_window()
    open_and_wait(qtbot, window, make_photos(6))  # 30 photos
    create_classifier(qtbot, window)
    trained: list = []
    window.classifiers.trained.connect(trained.append)
    label_kinds(qtbot, window, per_kind=3)
    assert len(trained) == 1, "labels in quick succession train once, after the last"
    report = trained[0].report
    assert report.labels == 15 and report.per_class == dict.fromkeys(KINDS, 3)
    unlabelled = [r for r in range(30) if window.model.tile(r).label is None]
    hits = [window.model.tile(r).category == Path(window.model.path(r)).parent.name for r in unlabelled]
    assert sum(hits) >= 14, "three labels per kind sort the other photos"
    assert "accuracy" in window.panel.label_panel.quality_label.text()
    assert window.panel.label_panel.warning_label.text() == ""
    assert window.panel.label_panel.status_label.text().startswith("Learned from 15 labels")
    groups = {g.label: g.count for g in window.model.groups()}
    assert all(groups[kind] >= 5 for kind in KINDS)


def test_the_train_button_trains_at_once(qtbot, make_window, library: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, library)
    create_classifier(qtbot, window)
    select_rows(window, rows_of_kind(window, "beach"))
    qtbot.keyClick(window.view, Qt.Key.Key_1)
    with qtbot.waitSignal(window.classifiers.trained, timeout=TIMEOUT_MS) as trained:
        qtbot.mouseClick(window.panel.label_panel.train_button, Qt.MouseButton.LeftButton)
        assert not window.labeller.training_pending
    assert trained.args[0].report.per_class["beach"] == 4


def test_label_these_next_shows_the_least_sure_unlabelled_photos_first(qtbot, make_window, make_photos) -> None:
    folder = make_photos(12)  # 60 photos: more than the view shows
    window = make_window()
    open_and_wait(qtbot, window, folder)
    create_classifier(qtbot, window)
    label_kinds(qtbot, window, per_kind=1)
    qtbot.mouseClick(window.panel.label_panel.least_sure_button, Qt.MouseButton.LeftButton)
    assert window.model.least_sure_mode and window.classifiers.least_sure_action.isChecked()
    assert window.model.rowCount() == LEAST_SURE_COUNT
    shown = [window.model.photo_id(r) for r in range(window.model.rowCount())]
    engine = Engine(window.settings)
    try:
        library = engine.open_library([folder])
        assert shown == library.least_sure("Kinds", limit=LEAST_SURE_COUNT), "the core's ranking"
    finally:
        engine.close()
    assert window.group_title.text().startswith("Label these next")
    select_rows(window, [0])
    first = window.model.photo_id(0)
    with qtbot.waitSignal(window.classifiers.trained, timeout=TIMEOUT_MS):
        qtbot.keyClick(window.view, Qt.Key.Key_2)
        assert window.model.photo_id(0) == first, "the labelled tile stays put"
    assert window.model.photo_id(0) == first and window.regroup_button.isVisibleTo(window), "even after training"
    qtbot.keyClick(window.view, Qt.Key.Key_R)  # Regroup
    assert first not in [window.model.photo_id(r) for r in range(window.model.rowCount())], "then it is done"
    window.classifiers.least_sure_action.trigger()
    assert not window.model.least_sure_mode and window.model.rowCount() == 60


# ---- storage ------------------------------------------------------------------------------------------
def test_the_classifier_and_its_labels_come_back_after_a_restart(qtbot, make_window, library: Path,
                                                                 prefs: Preferences) -> None:
    window = make_window()
    open_and_wait(qtbot, window, library)
    create_classifier(qtbot, window)
    label_kinds(qtbot, window, per_kind=2)
    before = labels_by_path(window)
    predictions = {window.model.photo_id(r): window.model.tile(r).category for r in range(20)}
    window.close()
    again = make_window(preferences=Preferences(QSettings(prefs.store.fileName(), QSettings.Format.IniFormat)))
    qtbot.waitUntil(lambda: again.classifiers.active == "Kinds", timeout=TIMEOUT_MS)
    open_and_wait(qtbot, again, library)
    assert labels_by_path(again) == before and len(before) == 10
    assert {again.model.photo_id(r): again.model.tile(r).category for r in range(20)} == predictions
    assert again.panel.label_panel.counts() == [2] * 5
    assert "accuracy" in again.panel.label_panel.quality_label.text()


def test_rename_and_delete_a_classifier(qtbot, monkeypatch, make_window, library: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, library)
    create_classifier(qtbot, window)
    errors: list = []
    window.errorShown.connect(errors.append)
    select_rows(window, rows_of_kind(window, "beach"))
    qtbot.keyClick(window.view, Qt.Key.Key_1)
    assert window.labeller.training_pending  # renaming now trains first, under the old name
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("Colours", True))
    with qtbot.waitSignal(window.classifiers.applied, timeout=TIMEOUT_MS, check_params_cb=lambda n: n == "Colours"):
        window.classifiers.rename_action.trigger()
    assert [h.name for h in window.classifiers.summaries()] == ["Colours"] and len(labels_by_path(window)) == 4
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(window.classifiers.applied, timeout=TIMEOUT_MS, check_params_cb=lambda n: n == ""):
        window.classifiers.delete_action.trigger()
    qtbot.waitUntil(lambda: window.classifiers.summaries() == [], timeout=TIMEOUT_MS)
    assert window.panel.classifier_bar.combo.count() == 1 and labels_by_path(window) == {}
    assert not window.classifiers.rename_action.isEnabled()
    assert errors == []


def test_export_and_import_a_classifier_file_gives_the_same_predictions(qtbot, monkeypatch, make_window,
                                                                        library: Path, tmp_path: Path) -> None:
    window = make_window()
    open_and_wait(qtbot, window, library)
    create_classifier(qtbot, window)
    label_kinds(qtbot, window, per_kind=2)
    def predictions() -> dict[int, tuple[str | None, float]]:
        tiles = [window.model.tile(r) for r in range(window.model.rowCount())]
        return {t.photo_id: (t.category, round(t.score, 5)) for t in tiles}

    trained = predictions()
    target = tmp_path / "shared" / "Kinds"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    with qtbot.waitSignal(window.noticeShown, timeout=TIMEOUT_MS):
        window.classifiers.export_action.trigger()
    saved = target.with_name("Kinds.photosort-head")
    assert saved.is_file() and saved.read_bytes()[:8] != b"\x80\x04\x95"[:8], "safetensors, not a pickle"
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(saved), ""))
    asked: list[tuple[str, str]] = []
    monkeypatch.setattr(QInputDialog, "getText", lambda _w, _title, question, **k: asked.append(
        (question, k.get("text", ""))) or ("Kinds shared", True))
    with qtbot.waitSignals([window.classifiers.applied, window.noticeShown], timeout=TIMEOUT_MS):
        window.classifiers.import_file()
    assert asked == [("A classifier named 'Kinds' already exists. Import this one as:", "Kinds (2)")], \
        "a taken name is asked for, as the CLI needs --name"
    assert window.classifiers.active == "Kinds shared"
    notice = window.message_bar.label.text()
    assert "Imported the classifier 'Kinds shared'" in notice and "accuracy" in notice and "10 labels" in notice
    assert predictions() == trained
    assert labels_by_path(window) == {}, "labels stay on the machine that made them"


def test_importing_a_classifier_made_for_another_model_is_refused(qtbot, monkeypatch, make_window,
                                                                  tmp_path: Path) -> None:
    window = make_window()
    create_classifier(qtbot, window, "Trips", ("beach", "city"))
    engine = Engine(window.settings)
    try:
        head = engine.classifiers.load("Trips")
    finally:
        engine.close()
    other = Classifier.from_bytes(head.to_bytes())
    other.model_key = "openai/clip-vit-large-patch14@abc/fp32"
    path = tmp_path / "other.photosort-head"
    path.write_bytes(other.to_bytes())
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    with qtbot.waitSignal(window.errorShown, timeout=TIMEOUT_MS):
        window.classifiers.import_file()
    assert "made for another model" in window.message_bar.label.text()
    assert [h.name for h in window.classifiers.summaries()] == ["Trips"] and window.classifiers.active == "Trips"


def test_a_classifier_of_another_model_is_trained_again_when_chosen(qtbot, monkeypatch, make_window, library: Path,
                                                                   tiny_model: Path, tmp_path: Path) -> None:
    import shutil

    window = make_window()
    open_and_wait(qtbot, window, library)
    create_classifier(qtbot, window)
    label_kinds(qtbot, window, per_kind=2)
    other = shutil.copytree(tiny_model, tmp_path / "other-model")
    failures: list = []  # as the window showed them (a notice arriving later may take the bar's place)
    window.errorShown.connect(failures.append)
    with qtbot.waitSignals([window.indexingDone, window.errorShown], timeout=TIMEOUT_MS):
        window.apply_engine_choice(str(other), "cpu", "auto")
    assert any("made for another model" in f.message for f in failures), failures
    assert window.classifiers.active == "" and window.classifiers.summaries()[0].for_this_model is False
    assert window.panel.classifier_bar.combo.itemText(1) == "Kinds (other model)"
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Cancel)
    window.classifiers.choose("Kinds")
    assert window.classifiers.active == "" and window.panel.classifier_bar.current() == ""
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(window.classifiers.applied, timeout=TIMEOUT_MS, check_params_cb=lambda n: n == "Kinds"):
        window.classifiers.choose("Kinds")
    assert len(labels_by_path(window)) == 10, "its labels carry over: they belong to the photos"
    assert window.classifiers.summaries()[0].for_this_model
