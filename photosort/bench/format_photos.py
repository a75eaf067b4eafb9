"""The same camera-like scenes in every format photosort reads fast: JPEG, HEIC, RAW (DNG) and PNG.

Each format is written as the device that makes it would: JPEGs as a camera
(noise, EXIF, some rotated; :mod:`.photos`), HEICs as a phone (upright, with a
320 px thumbnail as iPhones store one), RAWs as a camera's DNG (sensor data,
a 1620 px JPEG preview, the orientation in the RAW's tags; :mod:`.dng`), also
with only a 256 px thumbnail (so LibRaw must develop the sensor data), and
PNGs as screenshots (a quarter of the pixels). Writing a 12 MP HEIC takes
seconds, so fewer distinct photos are written for the slow formats and the
measurement repeats them (a repeated photo costs the same to decode).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageOps

from photosort.core.decode import heif_available, orientation_of
from photosort.core.raw import raw_available

from .dng import DngOptions, write_dng
from .photos import generate_photos

log = logging.getLogger(__name__)

JPEG, HEIC, RAW, RAW_SMALL_PREVIEW, PNG = "JPEG", "HEIC", "RAW", "RAW, small preview", "PNG"
FORMATS = (JPEG, HEIC, RAW, RAW_SMALL_PREVIEW, PNG)
DISTINCT = {JPEG: 16, HEIC: 4, RAW: 8, RAW_SMALL_PREVIEW: 4, PNG: 8}  # at most this many different photos
RAW_PREVIEW_LONG_SIDE = 1620  # as Sony and Nikon embed one
HEIC_THUMBNAIL = 320  # as iPhones store one (320 x 240 for 4032 x 3024)


def available_formats() -> tuple[str, ...]:
    """The formats this installation reads (HEIC needs pillow-heif, RAW rawpy)."""
    missing = set()
    if not heif_available():
        missing.add(HEIC)
    if not raw_available():
        missing |= {RAW, RAW_SMALL_PREVIEW}
    return tuple(f for f in FORMATS if f not in missing)


def write_formats(folder: Path, formats: tuple[str, ...], count: int, megapixels: float,
                  seed: int = 1) -> dict[str, list[Path]]:
    """{format: the distinct photos written for it}, each format in its own subfolder of ``folder``."""
    jpegs = generate_photos(folder / "source", max(min(count, DISTINCT[f]) for f in formats), megapixels, seed)
    written: dict[str, list[Path]] = {}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for fmt in formats:
            target = folder / _folder_name(fmt)
            target.mkdir(parents=True, exist_ok=True)
            sources = jpegs[: min(count, DISTINCT[fmt])]
            written[fmt] = list(pool.map(lambda job, fmt=fmt, target=target: _write_one(fmt, *job, target),
                                         enumerate(sources)))
    return written


def _folder_name(fmt: str) -> str:
    return fmt.lower().replace(", ", "-").replace(" ", "-")


def _write_one(fmt: str, index: int, jpeg: Path, target: Path) -> Path:
    if fmt == JPEG:
        path = target / jpeg.name
        if not path.exists():
            os.link(jpeg, path)
        return path
    with Image.open(jpeg) as stored:
        orientation = orientation_of(stored)
        upright = ImageOps.exif_transpose(stored).convert("RGB")
    name = f"IMG_{index:05d}"
    if fmt == HEIC:
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = "Apple", "iPhone 14 Pro"
        path = target / f"{name}.HEIC"
        try:  # x265's "ultrafast" only makes writing the bench's photos bearable; decoding is what is measured
            upright.save(path, "HEIF", quality=80, thumbnails=[HEIC_THUMBNAIL], exif=exif.tobytes(),
                         enc_params={"preset": "ultrafast"})
        except (ValueError, RuntimeError, OSError):  # another HEVC encoder: its own pace
            upright.save(path, "HEIF", quality=80, thumbnails=[HEIC_THUMBNAIL], exif=exif.tobytes())
        return path
    if fmt in (RAW, RAW_SMALL_PREVIEW):
        preview = RAW_PREVIEW_LONG_SIDE if fmt == RAW else None
        return write_dng(target / f"{name}.DNG", upright, DngOptions(orientation=orientation,
                                                                     preview_long_side=preview))
    path = target / f"Screenshot_{index:05d}.png"
    upright.reduce(2).save(path, "PNG", compress_level=6)
    return path
