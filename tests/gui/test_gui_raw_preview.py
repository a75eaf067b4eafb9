"""The large preview shows a camera RAW like any photo: upright, from the RAW's embedded preview."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from photosort.bench.dng import DngOptions, write_dng
from photosort.core.raw import raw_available
from photosort.gui.preview import PreviewError, load_preview_image


@pytest.mark.skipif(not raw_available(), reason="rawpy is not installed")
def test_a_raw_taken_sideways_is_previewed_upright(tmp_path: Path) -> None:
    upright = Image.new("RGB", (600, 400), (200, 40, 40))
    upright.paste((255, 255, 255), (0, 0, 600, 100))  # white on top: a turned image would show it at a side
    path = write_dng(tmp_path / "IMG_0001.dng", upright, DngOptions(orientation=6, preview_long_side=600))
    image = load_preview_image(str(path), 300)
    assert (image.width(), image.height()) == (300, 200)
    top, bottom = image.pixelColor(150, 10), image.pixelColor(150, 190)
    assert top.red() > 240 and top.green() > 240 and bottom.green() < 100


def test_an_unreadable_raw_is_said_in_the_preview(tmp_path: Path) -> None:
    path = tmp_path / "broken.NEF"
    path.write_bytes(b"not a raw" * 50)
    with pytest.raises(PreviewError, match=r"broken\.NEF"):
        load_preview_image(str(path), 300)
