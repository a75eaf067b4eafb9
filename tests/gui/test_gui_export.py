"""Export sorted folders from the window: preview, copy, move, undo, interrupted moves, closing mid-move.

The dialog drives the same engine as ``photosort export`` through the worker
thread; these tests look at what the user sees (the preview table, the
summary) and, above all, at the disk: every photo must be exactly where the
summary says, and nowhere twice or nowhere at all after an interruption.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox

import photosort.core.progress as progress_module
from photosort.core.export import journal_state, pending_journals
from photosort.core.indexer import PipelineOptions
from photosort.core.zeroshot import Category
from photosort.gui.export_dialog import ExportDialog
from photosort.gui.main_window import MainWindow

TIMEOUT_MS = 60_000  # a hang guard, not a speed budget: a busy machine may take its time
SMALL_BATCHES = PipelineOptions(batch_size=8, decode_threads=2)
KINDS = ("beach", "forest", "night", "document", "sunset")


@pytest.fixture
def opened(qtbot, make_window, make_photos) -> tuple[MainWindow, Path]:
    """A window showing 15 photos (3 per kind), sorted by a classifier trained on one label per kind."""
    folder = make_photos(3)
    window = make_window()
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        window.open_folders([str(folder)])
    with qtbot.waitSignal(window.classifiers.applied, timeout=TIMEOUT_MS):
        window.worker.create_classifier("Kinds", tuple(Category(k) for k in KINDS))
    labels = {}
    for r in range(window.model.rowCount()):
        path = Path(window.model.path(r))
        if path.stem.endswith("_000"):
            labels[window.model.photo_id(r)] = KINDS.index(path.parent.name)
    with qtbot.waitSignal(window.classifiers.trained, timeout=TIMEOUT_MS):
        window.labeller.label(list(labels), None)  # no-op: nothing labelled yet
        for photo_id, kind in labels.items():
            window.labeller.label([photo_id], kind)
    return window, folder


def files_under(folder: Path) -> dict[str, bytes]:
    """Every photo under ``folder`` by name, with its bytes (names are unique in these libraries)."""
    return {p.name: p.read_bytes() for p in folder.rglob("*.jpg")}


def open_dialog(qtbot, window: MainWindow, destination: Path, mode: str = "copy") -> ExportDialog:
    window.open_export_dialog()
    dialog = window.export_dialog
    assert dialog is not None
    dialog.set_mode(mode)
    dialog.destination_edit.setText(str(destination))
    qtbot.waitUntil(lambda: dialog.plan() is not None and dialog.plan().mode == mode
                    and dialog.plan().destination == destination, timeout=TIMEOUT_MS)
    return dialog


def run_dialog_export(qtbot, dialog: ExportDialog) -> None:
    with qtbot.waitSignal(dialog.summaryShown, timeout=TIMEOUT_MS):
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)


def test_the_dialog_previews_the_plan_before_anything_is_written(qtbot, opened, tmp_path: Path) -> None:
    window, _folder = opened
    destination = tmp_path / "sorted"
    dialog = open_dialog(qtbot, window, destination)
    assert not destination.exists(), "a preview writes nothing"
    counts = dialog.preview_counts()
    assert sum(counts.values()) == 15 and set(counts) <= {*KINDS, "Unsure"}
    assert dialog.export_button.text() == "Copy 15 photos" and dialog.export_button.isEnabled()
    assert dialog.classifier_combo.currentText() == "Kinds", "the classifier sorting the grid is the default"
    groups = {g.label: g.count for g in window.model.groups()}
    assert {k: counts.get(k, 0) for k in KINDS} == {k: groups[k] for k in KINDS}, "the plan matches the grid"
    with qtbot.waitSignal(dialog.previewShown, timeout=TIMEOUT_MS):
        dialog.unsure_skip.setChecked(True)
    assert "Unsure" not in dialog.preview_counts()
    with qtbot.waitSignal(dialog.previewShown, timeout=TIMEOUT_MS):
        dialog.classifier_combo.setCurrentIndex(dialog.classifier_combo.findData(""))
    assert "Type some categories" in dialog.preview_label.text() and not dialog.export_button.isEnabled()
    dialog.reject()


def test_copy_export_writes_verified_copies_and_opens_the_folder(qtbot, monkeypatch, opened, tmp_path: Path) -> None:
    window, folder = opened
    before = files_under(folder)
    destination = tmp_path / "sorted"
    (destination / "beach").mkdir(parents=True)
    (destination / "beach" / "beach_000.jpg").write_bytes(b"someone else's photo")
    dialog = open_dialog(qtbot, window, destination)
    planned = dialog.preview_counts()
    run_dialog_export(qtbot, dialog)
    assert files_under(folder) == before, "copying leaves the originals alone"
    for kind, count in planned.items():
        assert len(list((destination / kind).glob("*.jpg"))) == count + (kind == "beach")
    assert (destination / "beach" / "beach_000.jpg").read_bytes() == b"someone else's photo", "never overwritten"
    [suffixed] = (destination / "beach").glob("beach_000 (*).jpg")
    assert suffixed.read_bytes() == before["beach_000.jpg"], "a name that is taken gets a suffix"
    assert "Copied 15 photos" in dialog.summary_text() and "verified" in dialog.summary_text()
    assert dialog.open_button.isVisible() and not dialog.undo_button.isVisible()
    opened_urls: list[str] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened_urls.append(url.toLocalFile()) or True)
    qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    assert opened_urls == [str(destination)]
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert window.export_dialog is None and window.prefs.export_destination() == str(destination)


def test_a_move_can_be_undone_from_the_dialog(qtbot, opened, tmp_path: Path) -> None:
    window, folder = opened
    before = files_under(folder)
    destination = tmp_path / "sorted"
    dialog = open_dialog(qtbot, window, destination, mode="move")
    assert dialog.export_button.text() == "Move 15 photos"
    run_dialog_export(qtbot, dialog)
    assert files_under(folder) == {} and files_under(destination) == before
    assert "Moved 15 photos" in dialog.summary_text() and dialog.undo_button.isVisible()
    with qtbot.waitSignal(dialog.summaryShown, timeout=TIMEOUT_MS):
        qtbot.mouseClick(dialog.undo_button, Qt.MouseButton.LeftButton)
    assert files_under(folder) == before
    assert not destination.exists() or list(destination.rglob("*")) == [], "the folders it made are gone too"
    assert "Put 15 photos back" in dialog.summary_text()
    dialog.reject()


def test_the_grid_follows_the_photos_a_move_takes_away_and_brings_back(qtbot, opened, tmp_path: Path) -> None:
    window, _folder = opened
    ids = sorted(window.model.photo_id(r) for r in range(window.model.rowCount()))
    dialog = open_dialog(qtbot, window, tmp_path / "sorted", mode="move")
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):  # the window reads its folders again
        run_dialog_export(qtbot, dialog)
    assert window.model.photo_count() == 0 and not window.busy, "moved photos are no longer shown at their old path"
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS) as rescanned:
        qtbot.mouseClick(dialog.undo_button, Qt.MouseButton.LeftButton)
    assert sorted(window.model.photo_id(r) for r in range(window.model.rowCount())) == ids
    assert all(os.path.exists(window.model.path(r)) for r in range(window.model.rowCount()))
    assert rescanned.args[0].indexed == 0, "photos put back keep their vectors: nothing is indexed again"
    dialog.reject()


def test_a_move_is_kept_until_cleared_and_can_be_undone_from_the_edit_menu(qtbot, monkeypatch, opened,
                                                                          tmp_path: Path) -> None:
    window, folder = opened
    before = files_under(folder)
    destination = tmp_path / "sorted"
    dialog = open_dialog(qtbot, window, destination, mode="move")
    run_dialog_export(qtbot, dialog)
    dialog.reject()
    window.journals_action.trigger()
    journals = window.moves.dialog
    qtbot.waitUntil(lambda: len(journals.journals()) == 1, timeout=TIMEOUT_MS)
    assert journals.list.item(0).text().startswith(f"Move of 15 photos to {destination}")
    with qtbot.waitSignal(journals.summaryShown, timeout=TIMEOUT_MS):
        qtbot.mouseClick(journals.undo_button, Qt.MouseButton.LeftButton)
    assert files_under(folder) == before
    assert "Put 15 photos back" in journals.status_label.text()
    qtbot.waitUntil(lambda: journals.journals() == [], timeout=TIMEOUT_MS)
    journals.reject()
    qtbot.waitUntil(lambda: window.model.photo_count() == 15 and not window.busy, timeout=TIMEOUT_MS)  # followed back
    dialog = open_dialog(qtbot, window, destination, mode="move")  # another move, then clear its record
    run_dialog_export(qtbot, dialog)
    dialog.reject()
    window.moves.open_dialog()
    journals = window.moves.dialog
    qtbot.waitUntil(lambda: len(journals.journals()) == 1, timeout=TIMEOUT_MS)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    qtbot.mouseClick(journals.clear_button, Qt.MouseButton.LeftButton)
    # Not the next journalsShown: a list asked for before the click (opening the dialog) may still arrive first.
    qtbot.waitUntil(lambda: journals.journals() == [], timeout=TIMEOUT_MS)
    assert journals.journals() == [] and pending_journals(window.settings.cache_path.parent / "journals") == []
    assert files_under(destination) == before, "clearing the record moves nothing"
    journals.reject()


def interrupt_journal(journal: Path, also_link_next: bool) -> None:
    """Make a cancelled move look like one killed mid-way: drop its end record, and (optionally) leave the
    next photo half-moved, present under both names, as a kill between link and unlink would."""
    lines = journal.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    kept = [line for line, rec in zip(lines, records, strict=True) if rec.get("op") != "end"]
    journal.write_text("\n".join(kept) + "\n", encoding="utf-8")
    if also_link_next:
        done = {r["src"] for r in records if r.get("op") == "move" and r.get("state") == "done"}
        pending = next(r for r in records if r.get("op") == "move" and r["src"] not in done)
        Path(pending["dst"]).parent.mkdir(parents=True, exist_ok=True)
        os.link(pending["src"], pending["dst"])


@pytest.mark.parametrize("choice", ["Finish Move", "Undo Move", "Edit menu"])
def test_a_move_interrupted_halfway_loses_nothing_and_is_offered_at_start_up(qtbot, monkeypatch, opened, make_window,
                                                                            tmp_path: Path, choice: str) -> None:
    window, folder = opened
    before = files_under(folder)
    destination = tmp_path / "sorted"
    monkeypatch.setattr(progress_module, "PROGRESS_INTERVAL_S", 0.0)
    dialog = open_dialog(qtbot, window, destination, mode="move")

    def stop_halfway(_task, progress) -> None:  # in the worker thread, between two photos
        if progress.done == 7:
            window.worker.cancel_export()

    window.worker.tasks.progress.connect(stop_halfway, Qt.ConnectionType.DirectConnection)
    run_dialog_export(qtbot, dialog)
    window.worker.tasks.progress.disconnect(stop_halfway)
    assert "Stopped before the end" in dialog.summary_text()
    moved, left = files_under(destination), files_under(folder)
    assert len(moved) == 7 and {**moved, **left} == before and not set(moved) & set(left)
    [journal] = pending_journals(window.settings.cache_path.parent / "journals")
    assert journal_state(journal) == "cancelled"
    dialog.reject()
    window.close()
    interrupt_journal(journal, also_link_next=True)
    assert journal_state(journal) == "interrupted"

    again = make_window()  # the next start: the interrupted move is offered at once
    qtbot.waitUntil(lambda: again.message_bar.isVisible() and "interrupted" in again.message_bar.label.text(),
                    timeout=TIMEOUT_MS)
    bar = again.message_bar
    assert (bar.action_button.text(), bar.second_button.text()) == ("Finish Move", "Undo Move")
    if choice == "Edit menu":  # the same choice from Edit ▸ Undo a Move Export…; the offer above goes away
        again.journals_action.trigger()
        journals = again.moves.dialog
        qtbot.waitUntil(lambda: len(journals.journals()) == 1, timeout=TIMEOUT_MS)
        assert "Interrupted" in journals.list.item(0).text() and not journals.clear_button.isEnabled()
        with qtbot.waitSignal(journals.summaryShown, timeout=TIMEOUT_MS):
            qtbot.mouseClick(journals.finish_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not bar.isVisible(), timeout=TIMEOUT_MS)
        assert "Moved 8 photos" in journals.status_label.text()
        assert files_under(folder) == {} and files_under(destination) == before
        journals.reject()
        return
    with qtbot.waitSignal(again.moves.handled, timeout=TIMEOUT_MS):
        qtbot.mouseClick(bar.action_button if choice == "Finish Move" else bar.second_button, Qt.MouseButton.LeftButton)
    if choice == "Finish Move":
        assert files_under(folder) == {} and files_under(destination) == before
        assert "Moved 8 photos" in bar.label.text()
    else:
        assert files_under(folder) == before and files_under(destination) == {}
        assert "Put 8 photos back" in bar.label.text()
    assert all(os.stat(p).st_nlink == 1 for p in [*folder.rglob("*.jpg"), *destination.rglob("*.jpg")])


def test_closing_the_window_during_a_move_asks_then_stops_after_the_current_photo(qtbot, monkeypatch, opened,
                                                                                 tmp_path: Path) -> None:
    window, folder = opened
    before = files_under(folder)
    destination = tmp_path / "sorted"
    monkeypatch.setattr(progress_module, "PROGRESS_INTERVAL_S", 0.0)
    dialog = open_dialog(qtbot, window, destination, mode="move")
    paused, release, released = threading.Event(), threading.Event(), []

    def pause_after_four(_task, progress) -> None:  # hold the worker between photos 4 and 5
        if progress.done == 4:
            paused.set()
            released.append(release.wait(600))  # a hang guard: set once close() waits

    window.worker.tasks.progress.connect(pause_after_four, Qt.ConnectionType.DirectConnection)
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(paused.is_set, timeout=TIMEOUT_MS)
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a[1]) or QMessageBox.StandardButton.Cancel)
    window.close()
    assert window.isVisible() and asked == ["Stop moving photos?"], "Cancel keeps the window and the move going"
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    wait_for_worker = window.worker.thread.wait

    def release_then_wait(*args):  # close() has asked the move to stop and now waits for the worker
        release.set()
        return wait_for_worker(*args)

    monkeypatch.setattr(window.worker.thread, "wait", release_then_wait)
    window.close()
    assert released == [True], "the worker was held until close() waited for it"
    assert not window.isVisible() and not window.worker.thread.isRunning()
    moved, left = files_under(destination), files_under(folder)
    assert len(moved) == 4, "closing waits only for the photo being moved, not for the rest of the move"
    assert {**moved, **left} == before and not set(moved) & set(left), "every photo whole, in one place"
    assert not [p for p in (*destination.rglob("*"), *folder.rglob("*")) if p.name.endswith(".partial")]
    [journal] = pending_journals(window.settings.cache_path.parent / "journals")
    assert journal_state(journal) == "cancelled", "the journal says where every photo is, ready to undo or finish"


def test_an_idle_window_does_not_keep_repainting(qtbot, opened) -> None:
    """A grid that just fills the view once showed and hid its scroll bar in a loop, repainting ~100 times a second."""
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication

    window, _folder = opened

    class PaintCounter(QObject):
        paints = 0

        def eventFilter(self, obj: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and obj is window.view.viewport():
                PaintCounter.paints += 1
            return False

    counter = PaintCounter()
    QApplication.instance().installEventFilter(counter)
    try:
        qtbot.wait(500)  # a measurement window, not a synchronisation: nothing should happen in it
    finally:
        QApplication.instance().removeEventFilter(counter)
    assert PaintCounter.paints < 10


def test_the_window_and_the_cli_export_the_same_library_into_the_same_folders(qtbot, opened, tmp_path: Path,
                                                                              tiny_model: Path, capsys) -> None:
    """One truth: the same labels and classifier give the same folders from either face, labels winning."""
    from photosort.cli import main

    window, folder = opened
    # A label that contradicts the classifier: the window and the CLI must both follow the label.
    row = next(r for r in range(window.model.rowCount()) if Path(window.model.path(r)).name == "beach_001.jpg")
    with qtbot.waitSignal(window.classifiers.trained, timeout=TIMEOUT_MS):
        window.labeller.label([window.model.photo_id(row)], KINDS.index("night"))
        window.labeller.train_now()
    in_window = tmp_path / "from-window"
    run_dialog_export(qtbot, open_dialog(qtbot, window, in_window))
    from_cli = tmp_path / "from-cli"
    code = main(["export", str(folder), str(from_cli), "--classifier", "Kinds", "--model", str(tiny_model),
                 "--data-dir", str(window.settings.folder), "--json"])
    capsys.readouterr()
    assert code == 0

    def placed(root: Path) -> dict[str, str]:
        return {p.name: p.parent.name for p in root.rglob("*.jpg")}

    assert placed(in_window) == placed(from_cli)
    assert placed(from_cli)["beach_001.jpg"] == "night", "a label beats the classifier's prediction"


def test_exporting_again_copies_nothing_twice_and_says_so(qtbot, opened, tmp_path: Path) -> None:
    window, _folder = opened
    destination = tmp_path / "sorted"
    for _run in range(2):
        dialog = open_dialog(qtbot, window, destination)
        run_dialog_export(qtbot, dialog)
        summary = dialog.summary_text()
        qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert "Copied 0 photos" in summary and "15 photos already there" in summary
    assert len(list(destination.rglob("*.jpg"))) == 15, "no (2) copies"
