"""A camera's RAW+JPEG pair is one shot: an export never splits it between folders."""

from __future__ import annotations

from pathlib import Path

from photosort.core.export import ExportItem, plan_export


def test_a_raw_and_its_jpeg_twin_go_to_the_folder_of_the_surer_one(tmp_path: Path) -> None:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for name in ("IMG_1.CR2", "IMG_1.JPG", "IMG_2.nef", "IMG_2.jpg", "IMG_3.JPG", "IMG_4.ARW", "other/IMG_4.JPG"):
        (shoot / name).parent.mkdir(exist_ok=True)
        (shoot / name).write_bytes(name.encode())
    items = [
        ExportItem(shoot / "IMG_1.CR2", "Beach", 0.9), ExportItem(shoot / "IMG_1.JPG", None, 0.4),
        ExportItem(shoot / "IMG_2.nef", None, 0.3), ExportItem(shoot / "IMG_2.jpg", "Forest", 1.0),  # labelled
        ExportItem(shoot / "IMG_3.JPG", "Night", 0.8),  # no twin
        ExportItem(shoot / "IMG_4.ARW", "Beach", 0.9), ExportItem(shoot / "other" / "IMG_4.JPG", "Night", 0.9),
    ]
    plan = plan_export(items, tmp_path / "out")
    placed = {move.source.name if move.source.parent == shoot else f"other/{move.source.name}": move.folder
              for move in plan.moves}
    assert placed == {"IMG_1.CR2": "Beach", "IMG_1.JPG": "Beach", "IMG_2.nef": "Forest", "IMG_2.jpg": "Forest",
                      "IMG_3.JPG": "Night", "IMG_4.ARW": "Beach", "other/IMG_4.JPG": "Night"}  # other folder: not a twin
