"""Classifier ▸ Train from Keywords…: the window learns a classifier from keywords a photo manager wrote."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QInputDialog

from photosort.core.indexer import PipelineOptions
from photosort.gui.main_window import MainWindow

TIMEOUT_MS = 60_000  # a hang guard, not a speed budget
SMALL_BATCHES = PipelineOptions(batch_size=8, decode_threads=2)


SIDECAR = """<?xpacket begin="﻿" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:lr="http://ns.adobe.com/lightroom/1.0/">
   <lr:hierarchicalSubject><rdf:Bag><rdf:li>{keyword}</rdf:li></rdf:Bag></lr:hierarchicalSubject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""


def tag(photo: Path, keyword: str) -> None:
    """A darktable-style sidecar (IMG.jpg.xmp) holding one hierarchical keyword."""
    Path(str(photo) + ".xmp").write_text(SIDECAR.format(keyword=keyword), encoding="utf-8")


def test_train_from_keywords_trains_and_sorts_the_grid_with_the_classifier(qtbot, monkeypatch, make_window,
                                                                           make_photos) -> None:
    root = make_photos(3, kinds=("beach", "night"))
    for kind in ("beach", "night"):
        for i in range(2):
            tag(root / kind / f"{kind}_{i:03d}.jpg", f"trip|{kind}")
    window: MainWindow = make_window()
    with qtbot.waitSignal(window.indexingDone, timeout=TIMEOUT_MS):
        window.open_folders([str(root)])
    answers = iter([("Trips", True), ("trip/*", True)])
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: next(answers))
    with qtbot.waitSignal(window.classifiers.keywords.done, timeout=TIMEOUT_MS) as ended:
        window.classifiers.train_from_keywords()
    assert ended.args[0].startswith("Trained 'Trips' from keywords: 2 beach, 2 night")
    qtbot.waitUntil(lambda: window.classifiers.active == "Trips", timeout=TIMEOUT_MS)
    assert window.message_bar.text() == ended.args[0]
