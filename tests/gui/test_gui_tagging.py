"""File ▸ Write Keywords to Sidecars…: the grid's sorting goes into XMP sidecars, after a confirmation, undoably.

What is checked is what a photo manager would find: the sidecars read back by
the core's keyword reader hold ``photosort|<category>`` for exactly the
category each photo shows in the grid, the photos themselves are untouched,
a declined confirmation writes nothing, and Undo leaves no sidecar behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from photosort.core.indexer import PipelineOptions
from photosort.core.keywords import read_keywords
from photosort.gui.main_window import MainWindow
from photosort.gui.photo_model import CategoryRole

TIMEOUT_MS = 60_000  # a hang guard, not a speed budget
SMALL_BATCHES = PipelineOptions(batch_size=8, decode_threads=2)
KINDS = ("beach", "forest")


@pytest.fixture
def sorted_window(qtbot, make_window, make_photos) -> tuple[MainWindow, Path]:
    """A window showing 4 photos sorted by typed categories, none unsure (the threshold at 0)."""
    root = make_photos(2, kinds=KINDS)
    window: MainWindow = make_window()
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        window.open_folders([str(root)])
    with qtbot.waitSignal(window.categoriesApplied, timeout=TIMEOUT_MS):
        window.panel.editor.setPlainText(", ".join(KINDS))
    window.panel.slider.setValue(0)
    qtbot.waitUntil(lambda: all(window.model.index(r).data(CategoryRole) in KINDS
                                for r in range(window.model.rowCount())), timeout=TIMEOUT_MS)
    return window, root


def shown(window: MainWindow) -> dict[str, str]:
    """Each photo's category as the grid shows it."""
    return {window.model.path(r): window.model.index(r).data(CategoryRole) for r in range(window.model.rowCount())}


def sidecars(root: Path) -> list[Path]:
    return sorted(root.rglob("*.xmp"))


def photo_bytes(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*.jpg")}


def answer(monkeypatch, button: QMessageBox.StandardButton) -> list[str]:
    """Every QMessageBox.question answers ``button``; returns the texts asked."""
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or button)
    return asked


def write_keywords(qtbot, window: MainWindow) -> str:
    with qtbot.waitSignal(window.tagging.done, timeout=TIMEOUT_MS) as ended:
        window.tagging.write_action.trigger()
    return ended.args[0]


def test_writing_keywords_gives_each_sidecar_the_grids_category_and_undo_removes_them(
        qtbot, monkeypatch, sorted_window) -> None:
    window, root = sorted_window
    originals = photo_bytes(root)
    asked = answer(monkeypatch, QMessageBox.StandardButton.Yes)
    assert not window.tagging.undo_action.isEnabled(), "nothing to undo yet"

    text = write_keywords(qtbot, window)

    assert "4 sidecars to create, 0 to update; 0 photos unsure get no keyword" in asked[0]
    assert "dc:subject" in asked[0] and "lr:hierarchicalSubject" in asked[0] and "digiKam:TagsList" in asked[0]
    assert text.startswith("Wrote keywords into 4 sidecars (4 new, 0 updated)")
    assert window.message_bar.text() == text and window.message_bar.action_button.text() == "Undo"
    for photo, category in shown(window).items():
        keywords = read_keywords(photo).keywords
        assert ("photosort", category) in keywords.hierarchical and category in keywords.flat
        assert Path(photo + ".xmp").is_file()
    assert len(sidecars(root)) == 4 and photo_bytes(root) == originals, "the photos are never written"
    qtbot.waitUntil(window.tagging.undo_action.isEnabled, timeout=TIMEOUT_MS)

    with qtbot.waitSignal(window.tagging.done, timeout=TIMEOUT_MS) as undone:
        window.message_bar.action_button.click()
    assert undone.args[0].startswith("Put back 0 sidecars as they were and removed 4 sidecars")
    assert sidecars(root) == [] and photo_bytes(root) == originals
    qtbot.waitUntil(lambda: not window.tagging.undo_action.isEnabled(), timeout=TIMEOUT_MS)


def test_declining_writes_nothing_and_undo_last_keywords_puts_back_what_was_there(
        qtbot, monkeypatch, sorted_window) -> None:
    window, root = sorted_window
    theirs = Path(window.model.path(0) + ".xmp")  # a sidecar another app wrote, with no keywords
    theirs.write_text('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf'
                      '-syntax-ns#"><rdf:Description rdf:about=""/></rdf:RDF></x:xmpmeta>', encoding="utf-8")
    before = theirs.read_bytes()

    asked = answer(monkeypatch, QMessageBox.StandardButton.Cancel)
    assert write_keywords(qtbot, window) == "Nothing was written."
    assert "3 sidecars to create, 1 to update" in asked[0]
    assert sidecars(root) == [theirs] and theirs.read_bytes() == before
    assert not window.tagging.undo_action.isEnabled()

    answer(monkeypatch, QMessageBox.StandardButton.Yes)
    assert write_keywords(qtbot, window).startswith("Wrote keywords into 4 sidecars (3 new, 1 updated)")
    assert ("photosort", shown(window)[str(theirs)[:-4]]) in read_keywords(str(theirs)[:-4]).keywords.hierarchical
    qtbot.waitUntil(window.tagging.undo_action.isEnabled, timeout=TIMEOUT_MS)

    with qtbot.waitSignal(window.tagging.done, timeout=TIMEOUT_MS) as undone:
        window.tagging.undo_action.trigger()  # Edit ▸ Undo Last Keywords (confirmed)
    assert undone.args[0].startswith("Put back 1 sidecar as they were and removed 3 sidecars")
    assert sidecars(root) == [theirs] and theirs.read_bytes() == before, "byte for byte as it was"


def test_without_a_folder_it_says_so_and_asks_nothing(qtbot, monkeypatch, make_window) -> None:
    window: MainWindow = make_window()
    asked = answer(monkeypatch, QMessageBox.StandardButton.Yes)
    assert write_keywords(qtbot, window) == "Open a folder of photos first."
    assert asked == [] and window.message_bar.level == "error"
