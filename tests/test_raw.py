"""Camera RAW files: real DNGs (written by photosort.bench.dng, read back by LibRaw through rawpy).

A DNG is a real RAW format: LibRaw demosaics its Bayer data and extracts its
preview exactly as it does a camera's. These tests need rawpy (in the test
extra) except the one that checks the message shown without it.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pytest
from photo_factory import draw_photo
from PIL import Image

from photosort.bench.dng import DngOptions, write_dng
from photosort.bench.fidelity import fast_path_fidelity
from photosort.core import raw as raw_module
from photosort.core.decode import DecodeError, Preprocess, decode_or_reason, decode_photo, model_input, read_capture_facts
from photosort.core.display import display_image
from photosort.core.scan import scan_folder

PREP = Preprocess(size=224, crop=224)
WHEN = dt.datetime(2021, 8, 14, 9, 41, 7)
needs_rawpy = pytest.mark.skipif(not raw_module.raw_available(), reason="rawpy is not installed")


def scene(size: tuple[int, int] = (640, 480), seed: int = 0) -> Image.Image:
    """A detailed upright scene (a wrong turn or a lost half would show in the model input).

    It has a white highlight (a cloud), as most photos do: LibRaw brightens a development until about 1 % of
    the pixels are white, so without one the developed file would be brighter than the camera's preview.
    """
    rng = np.random.default_rng(seed)
    base = draw_photo("beach", (160, 120), seed).resize(size, Image.Resampling.BICUBIC)
    base.paste((255, 255, 255), (size[0] - 100, 20, size[0] - 20, 80))
    noisy = np.asarray(base, np.int16) + rng.normal(0, 3, (size[1], size[0], 3)).astype(np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def upright() -> Image.Image:
    return scene()


@pytest.fixture(scope="module")
def raws(tmp_path_factory: pytest.TempPathFactory, upright: Image.Image) -> dict[str, Path]:
    """DNGs of one scene: with a preview, with only a tiny thumbnail, with none; held sideways."""
    folder = tmp_path_factory.mktemp("raws")
    kinds = {
        "preview": DngOptions(preview_long_side=640, taken=WHEN, make="Canon", model="Canon EOS R6"),
        "thumbnail-only": DngOptions(preview_long_side=None),
        "no-preview": DngOptions(preview_long_side=None, thumbnail=False),
        "preview-rot6": DngOptions(preview_long_side=640, orientation=6),
        "thumbnail-only-rot8": DngOptions(preview_long_side=None, orientation=8),
        "preview-rot3": DngOptions(preview_long_side=640, orientation=3),
    }
    return {name: write_dng(folder / f"IMG_{name}.DNG", upright, options) for name, options in kinds.items()}


@needs_rawpy
def test_a_raw_is_indexed_from_its_embedded_preview(raws: dict[str, Path], upright: Image.Image) -> None:
    decoded = decode_photo(str(raws["preview"]), PREP)
    assert decoded.source == "raw-preview"
    assert (decoded.width, decoded.height) == upright.size
    assert mean_abs_diff(decoded.pixels, model_input(upright, PREP)) < 4.0
    assert decoded.facts.taken == "2021-08-14T09:41:07" and decoded.facts.camera == "Canon EOS R6"
    assert Image.open(__import__("io").BytesIO(decoded.thumb)).size == (256, 192)


@needs_rawpy
@pytest.mark.parametrize("kind", ["thumbnail-only", "no-preview"])
def test_a_raw_whose_preview_is_too_small_or_absent_is_binned_from_its_sensor_data(
        raws: dict[str, Path], upright: Image.Image, kind: str) -> None:
    decoded = decode_photo(str(raws[kind]), PREP)
    assert decoded.source == "raw-binned"
    assert (decoded.width, decoded.height) == upright.size
    assert mean_abs_diff(decoded.pixels, model_input(upright, PREP)) < 4.0
    assert decoded.facts.taken is not None  # from the RAW's own tags


@needs_rawpy
@pytest.mark.parametrize("kind", ["preview-rot6", "thumbnail-only-rot8", "preview-rot3"])
def test_a_raw_taken_sideways_or_upside_down_is_embedded_upright(
        raws: dict[str, Path], upright: Image.Image, kind: str) -> None:
    decoded = decode_photo(str(raws[kind]), PREP)
    assert (decoded.width, decoded.height) == upright.size
    assert mean_abs_diff(decoded.pixels, model_input(upright, PREP)) < 4.0
    full = decode_photo(str(raws[kind]), PREP, fast=False)  # LibRaw's own full development, as reference
    assert full.source == "full" and mean_abs_diff(decoded.pixels, full.pixels) < 4.0


@needs_rawpy
def test_a_sensor_libraw_must_demosaic_itself_is_developed_by_libraw(raws: dict[str, Path], monkeypatch,
                                                                    upright: Image.Image) -> None:
    """X-Trans, 4-colour and other non-Bayer sensors: bayer_layout says None, LibRaw develops at half size."""
    monkeypatch.setattr(raw_module, "bayer_layout", lambda raw: None)
    decoded = decode_photo(str(raws["thumbnail-only-rot8"]), PREP)
    assert decoded.source == "raw-half-size" and (decoded.width, decoded.height) == upright.size
    assert mean_abs_diff(decoded.pixels, model_input(upright, PREP)) < 4.0


@needs_rawpy
def test_the_binned_sensor_data_embeds_like_libraws_full_development(raws: dict[str, Path], tmp_path: Path) -> None:
    """photosort bench's fidelity check on the binned path, with a pixel stand-in for the encoder; the 1280 px
    DNG held sideways is binned in blocks of 2 x 2 Bayer cells (the 640 px ones in single cells)."""
    from test_fast_paths import pixel_embed

    sideways = scene((1280, 960), seed=3)
    big = write_dng(tmp_path / "IMG_big.DNG", sideways, DngOptions(preview_long_side=None, orientation=6))
    decoded = decode_photo(str(big), PREP)
    assert (decoded.width, decoded.height) == sideways.size  # upright
    full = decode_photo(str(big), PREP, fast=False)  # LibRaw brightens this one too: its cloud is under 1 %
    assert mean_abs_diff(decoded.pixels, full.pixels) < 4.0
    found = fast_path_fidelity([str(raws["no-preview"]), str(raws["thumbnail-only-rot8"]), str(big)], PREP,
                               pixel_embed)
    assert list(found) == ["raw-binned"] and found["raw-binned"].photos == 3
    assert found["raw-binned"].cosine_worst > 0.995 and found["raw-binned"].pixel_diff < 4.0


@needs_rawpy
def test_the_preview_pane_shows_a_raw_upright_from_its_preview(raws: dict[str, Path]) -> None:
    shown = display_image(str(raws["preview-rot6"]), 320)
    assert shown.size == (320, 240) and shown.mode == "RGB"
    developed = display_image(str(raws["thumbnail-only-rot8"]), 2000)  # 256 px thumbnail: too small to look at
    assert developed.size == (320, 240)  # half of the 640 x 480 sensor, upright


@needs_rawpy
def test_capture_facts_of_a_cached_raw_are_read_from_its_header(raws: dict[str, Path]) -> None:
    facts = read_capture_facts(str(raws["preview"]))
    assert (facts.taken, facts.camera) == ("2021-08-14T09:41:07", "Canon EOS R6")


def test_tiff_based_raws_under_other_magic_numbers_give_their_facts(raws: dict[str, Path]) -> None:
    """Olympus ORF and Panasonic RW2 are TIFF inside, with their own magic number."""
    data = raws["preview"].read_bytes()
    for magic in (b"IIRO", b"IIU\0"):
        facts = raw_module.header_facts(magic + data[4:])
        assert (facts.taken, facts.camera) == ("2021-08-14T09:41:07", "Canon EOS R6")
    assert raw_module.header_facts(b"FUJIFILMCCD-RAW 0201" + bytes(100)).taken is None


@needs_rawpy
def test_a_damaged_raw_is_reported_in_words(tmp_path: Path, raws: dict[str, Path]) -> None:
    (tmp_path / "junk.NEF").write_bytes(b"this is not a raw file" * 100)
    truncated = tmp_path / "cut.DNG"
    truncated.write_bytes(raws["no-preview"].read_bytes()[:4000])
    for path in (tmp_path / "junk.NEF", truncated):
        reason = decode_or_reason(str(path), PREP)
        assert isinstance(reason, str) and "unexpected" not in reason, reason


def test_without_rawpy_each_raw_says_how_to_get_support(tmp_path: Path, monkeypatch, raws: dict[str, Path]) -> None:
    monkeypatch.setattr(raw_module, "_rawpy_checked", True)
    monkeypatch.setattr(raw_module, "_rawpy_module", None)
    assert decode_or_reason(str(raws["preview"]), PREP) == "RAW support needs rawpy: pip install 'photosort[raw]'"
    with pytest.raises(DecodeError, match=r"photosort\[raw\]"):
        display_image(str(raws["preview"]), 100)
    assert read_capture_facts(str(raws["preview"])).camera == "Canon EOS R6"  # the header needs no LibRaw


def test_the_scan_takes_raw_files_for_photos_and_leaves_sidecars(tmp_path: Path) -> None:
    for name in ("IMG_1.CR2", "IMG_1.xmp", "IMG_2.nef", "IMG_3.ARW", "IMG_4.dng", "IMG_5.CR3", "IMG_6.RAF",
                 "IMG_7.ORF", "IMG_8.RW2", "IMG_9.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    ignored: list[str] = []
    found = sorted(os.path.basename(f.path) for f in scan_folder(tmp_path, ignored=ignored))
    assert found == ["IMG_1.CR2", "IMG_2.nef", "IMG_3.ARW", "IMG_4.dng", "IMG_5.CR3", "IMG_6.RAF", "IMG_7.ORF",
                     "IMG_8.RW2", "IMG_9.JPG"]
    assert sorted(os.path.basename(p) for p in ignored) == ["IMG_1.xmp", "notes.txt"]


@needs_rawpy
def test_a_folder_of_raws_is_indexed_like_any_photos(cli, raws: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "shoot"
    folder.mkdir()
    for name in ("preview", "thumbnail-only-rot8"):
        os.link(raws[name], folder / raws[name].name)
    code, doc, _ = cli("index", str(folder))
    assert (code, doc["indexed"], doc["failed"]) == (0, 2, [])
