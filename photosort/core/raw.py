"""Camera RAW files (CR2, CR3, NEF, ARW, RAF, ORF, RW2, DNG, ...) through LibRaw, at JPEG speed.

A RAW holds the sensor data and, beside it, the JPEG the camera rendered for
its own screen: a preview from 1/4 of the sensor's width up to full size.
The encoder sees 224 px and the grid 256, so that preview is all indexing
needs, and decoding it (draft mode, like any JPEG) costs what a JPEG costs,
where developing the sensor data would cost seconds. A file whose preview is
missing, too small for :func:`~photosort.core.decode.needed_size`, or not the
same picture (another shape) is made from the sensor data instead: a Bayer
sensor's mosaic is binned in numpy to the size the encoder needs and
developed as LibRaw develops a half-size image (:mod:`.bayer`: camera white
balance, colour matrix, auto-brightness, BT.709 curve), source "raw-binned";
X-Trans, 4-colour and other sensors are developed by LibRaw at half size
(each 2 x 2 cell one pixel, no demosaicing), source "raw-half-size".
Measured on a 12 MP DNG with a 256 px thumbnail (2 busy cores, CPU ms per
``decode_photo``): LibRaw at half size 115 ms (~35 unpack + ~80 develop;
cheaper ``postprocess`` options only reach ~100: no auto-bright, raw colour,
linear gamma), binned 43 ms (~30 unpack + ~12 binning and development), a
JPEG's draft decode 36 ms. Against LibRaw's full development, on the stand-in
model: cosine 0.99993 mean / 0.99987 worst, 1.3 levels mean pixel difference
(half size: 0.99996, 0.4).

The orientation is LibRaw's (``sizes.flip``, from the RAW's own tags); a
preview's own EXIF orientation counts only when LibRaw has none. Developed
images come out of LibRaw upright already; binned ones are turned here. Capture facts come from the RAW's
TIFF header (CR2, NEF, ARW, DNG, PEF, SRW, ORF, RW2 and the other TIFF-based
formats), a CR3's CMT boxes, or the preview's EXIF (RAF); LibRaw's capture
time is used when the file is developed anyway. Without rawpy (the optional
``photosort[raw]`` extra) each RAW is reported with :data:`RAW_NEEDS_RAWPY`.

The whole file is read once (LibRaw is given the bytes, so a name that is not
UTF-8 opens like any other) and the pixel cap applies to what is decoded:
the preview's header, or the sensor size before developing.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import replace
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from .bayer import bayer_layout, reduce_bayer
from .capture import CaptureFacts, capture_facts
from .decode import (
    _TRANSPOSE,
    BIG_DECODE_PIXELS,
    DEFAULT_MAX_PIXELS,
    DecodeError,
    Preprocess,
    Upright,
    _big_decodes,
    _to_rgb,
    needed_size,
    open_checked,
    orientation_of,
)

log = logging.getLogger(__name__)

# ".raw" is left out: too many non-photo dumps share that name (a RAW under it is still one LibRaw could read).
RAW_EXTENSIONS = frozenset({
    ".3fr", ".ari", ".arw", ".bay", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".fff", ".iiq", ".k25",
    ".kdc", ".mef", ".mos", ".mrw", ".nef", ".nrw", ".orf", ".pef", ".raf", ".rw2", ".rwl", ".sr2", ".srf",
    ".srw", ".x3f",
})
RAW_NEEDS_RAWPY = "RAW support needs rawpy: pip install 'photosort[raw]'"
# LibRaw's flip (dcraw's: bit 2 transposes, bit 1 flips rows, bit 0 flips columns) -> EXIF orientation.
FLIP_TO_ORIENTATION = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}
SAME_SHAPE = 0.02  # a preview whose aspect ratio differs by more is another picture (a crop, black bars)
# Formats that are TIFF inside under another magic number: Olympus ORF, Panasonic RW2.
_TIFF_ALIASES = {b"IIRO": b"II*\0", b"IIRS": b"II*\0", b"MMOR": b"MM\0*", b"IIU\0": b"II*\0"}
_MAKE, _MODEL, _EXIF_IFD = 0x010F, 0x0110, 0x8769
_EXIF_TAGS = (0x9003, 0x9004, 0x9291)  # DateTimeOriginal, DateTimeDigitized, SubSecTimeOriginal

_rawpy_module: Any = None
_rawpy_checked = False


def is_raw_name(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a camera RAW file (by extension, any case)."""
    return os.path.splitext(os.fspath(path))[1].lower() in RAW_EXTENSIONS


def rawpy_module() -> Any:
    """The rawpy module, or None when the optional extra is missing (looked up once)."""
    global _rawpy_module, _rawpy_checked
    if not _rawpy_checked:
        try:
            import rawpy

            _rawpy_module = rawpy
        except ImportError:
            _rawpy_module = None
        _rawpy_checked = True
    return _rawpy_module


def raw_available() -> bool:
    return rawpy_module() is not None


def load_raw(f: BinaryIO, prep: Preprocess, max_pixels: int = DEFAULT_MAX_PIXELS, fast: bool = True) -> Upright:
    """The RAW in ``f`` as an upright RGB image for the encoder and the grid, with its size and facts.

    ``fast=False`` develops the full sensor data (the reference the fast paths are measured against).
    """
    data = _read_all(f)
    with _opened(data) as raw:
        sizes = raw.sizes
        orientation = FLIP_TO_ORIENTATION.get(sizes.flip, 1)
        width, height = sizes.width, sizes.height
        facts = header_facts(data)
        preview = _usable_preview(raw, prep, width, height, max_pixels) if fast else None
        if preview is not None:
            if orientation == 1:
                orientation = orientation_of(preview)
            if facts.taken is None:
                facts = _merged(facts, capture_facts(preview))
            preview.draft("RGB", needed_size(prep, *preview.size))
            image = _to_rgb(preview)
            if orientation in _TRANSPOSE:
                image = image.transpose(_TRANSPOSE[orientation])
            return Upright(image, *_upright_size(width, height, orientation), facts, "raw-preview")
        image, source = _developed(raw, prep, orientation, fast, max_pixels)
        if facts.taken is None:
            facts = replace(facts, taken=_libraw_time(raw))
        return Upright(image, *_upright_size(width, height, orientation), facts, source)


def display_raw(f: BinaryIO, max_side: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The RAW upright, for looking at: the camera's preview when it is big enough for ``max_side``
    (or half the photo, if the photo is smaller), else developed at half size. No larger than ``max_side``."""
    data = _read_all(f)
    with _opened(data) as raw:
        sizes = raw.sizes
        orientation = FLIP_TO_ORIENTATION.get(sizes.flip, 1)
        wanted = min(max_side, max(sizes.width, sizes.height)) // 2
        preview = _preview_image(raw, sizes.width, sizes.height, max_pixels)
        if preview is not None and max(preview.size) >= wanted:
            if orientation == 1:
                orientation = orientation_of(preview)
            preview.draft("RGB", (max_side, max_side))
            image = _to_rgb(preview)
            if orientation in _TRANSPOSE:
                image = image.transpose(_TRANSPOSE[orientation])
        else:
            image = _develop(raw, half=True, max_pixels=max_pixels)
    image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image


def raw_capture_facts(path: str) -> CaptureFacts:
    """A RAW's capture facts from its header (and its preview's EXIF): no sensor data is decoded."""
    with open(path, "rb") as f:
        data = f.read()
    facts = header_facts(data)
    if facts.taken is None and rawpy_module() is not None:
        with _opened(data) as raw:
            preview = _preview_image(raw, raw.sizes.width, raw.sizes.height, DEFAULT_MAX_PIXELS)
            if preview is not None:
                facts = _merged(facts, capture_facts(preview))
    return facts


def header_facts(data: bytes) -> CaptureFacts:
    """Capture time and camera from a RAW's own metadata: its TIFF header, or a CR3's CMT boxes.

    Formats that are neither (RAF, CRW, X3F) say nothing here; their preview may.
    """
    exif = _tiff_exif(data) if not _is_cr3(data) else _cr3_exif(data)
    if exif is None:
        return CaptureFacts()
    holder = Image.new("L", (1, 1))
    holder.info["exif"] = exif
    return capture_facts(holder)


def _tiff_exif(data: bytes) -> bytes | None:
    head = data[:4]
    if head in (b"II*\0", b"MM\0*"):
        return data
    if head in _TIFF_ALIASES:
        return _TIFF_ALIASES[head] + data[4:]
    return None


def _is_cr3(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] == b"crx "


def _cr3_exif(data: bytes) -> bytes | None:
    """A CR3 (ISO media boxes) keeps IFD0 in a CMT1 box and the EXIF IFD in CMT2, each a small TIFF."""
    blobs = {}
    for name in (b"CMT1", b"CMT2"):
        at = data.find(name, 0, 1 << 20)
        if at < 4:
            continue
        size = int.from_bytes(data[at - 4 : at], "big")
        blobs[name] = data[at + 4 : at - 4 + size]
    if not blobs:
        return None
    merged = Image.Exif()
    try:
        if b"CMT1" in blobs:
            ifd0 = Image.Exif()
            ifd0.load(blobs[b"CMT1"])
            for tag in (_MAKE, _MODEL):
                if tag in ifd0:
                    merged[tag] = ifd0[tag]
        if b"CMT2" in blobs:
            details = Image.Exif()
            details.load(blobs[b"CMT2"])
            target = merged.get_ifd(_EXIF_IFD)
            for tag in _EXIF_TAGS:
                if tag in details:
                    target[tag] = details[tag]
        return merged.tobytes()
    except Exception:  # broken boxes: a photo without facts, never a failed photo
        log.debug("unreadable CR3 metadata", exc_info=True)
        return None


def _merged(first: CaptureFacts, second: CaptureFacts) -> CaptureFacts:
    return CaptureFacts(first.taken or second.taken, first.camera or second.camera)


def _read_all(f: BinaryIO) -> bytes:
    f.seek(0)
    return f.read()


class _opened:
    """LibRaw on the file's bytes, with its errors turned into a one-line reason."""

    def __init__(self, data: bytes) -> None:
        rawpy = rawpy_module()
        if rawpy is None:
            raise DecodeError(RAW_NEEDS_RAWPY)
        self._rawpy = rawpy
        try:
            self._raw = rawpy.imread(io.BytesIO(data))
        except rawpy.LibRawError as exc:
            raise DecodeError(libraw_reason(exc)) from None

    def __enter__(self) -> Any:
        return self._raw

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        self._raw.close()
        if exc is not None and isinstance(exc, self._rawpy.LibRawError):
            raise DecodeError(libraw_reason(exc)) from None
        return False


def libraw_reason(exc: BaseException) -> str:
    """What a LibRaw error means for the user, in one line."""
    rawpy = rawpy_module()
    detail = exc.args[0] if exc.args else ""
    detail = (detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)).strip()
    if isinstance(exc, rawpy.LibRawFileUnsupportedError):
        return "not a RAW file LibRaw can read (an unsupported camera, or not a RAW at all)"
    if isinstance(exc, rawpy.LibRawUnsufficientMemoryError):
        return "not enough memory to decode"
    if isinstance(exc, rawpy.LibRawTooBigError):
        return "too large for LibRaw to decode"
    if isinstance(exc, rawpy.LibRawIOError | rawpy.LibRawDataError):
        return f"damaged or truncated RAW file ({detail or 'LibRaw cannot read its data'})"
    return f"cannot read this RAW file (LibRaw: {detail or type(exc).__name__})"


def _usable_preview(raw: Any, prep: Preprocess, width: int, height: int, max_pixels: int) -> Image.Image | None:
    """The embedded preview when it is the same picture and big enough for the model input and thumbnail."""
    preview = _preview_image(raw, width, height, max_pixels)
    if preview is None:
        return None
    pw, ph = preview.size
    nw, nh = needed_size(prep, pw, ph)
    if nw > pw or nh > ph:
        log.debug("RAW preview %d x %d is smaller than the %d x %d needed: developing instead", pw, ph, nw, nh)
        return None
    return preview


def _preview_image(raw: Any, width: int, height: int, max_pixels: int) -> Image.Image | None:
    """LibRaw's largest embedded preview (not yet decoded), or None when there is none of the photo's shape."""
    rawpy = rawpy_module()
    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None
    except rawpy.LibRawError as exc:  # a damaged preview: the sensor data may still be fine
        log.debug("unreadable RAW preview: %s", exc)
        return None
    try:
        if thumb.format == rawpy.ThumbFormat.JPEG:
            image = open_checked(io.BytesIO(thumb.data), max_pixels)
        else:
            image = Image.fromarray(np.ascontiguousarray(thumb.data[..., :3]).astype(np.uint8))
    except (OSError, SyntaxError, ValueError, TypeError) as exc:
        log.debug("unreadable RAW preview: %s", exc)
        return None
    pw, ph = image.size
    if abs(pw * height - ph * width) > SAME_SHAPE * max(pw * height, ph * width):
        log.debug("RAW preview %d x %d is not the shape of the photo (%d x %d)", pw, ph, width, height)
        return None
    return image


def _developed(raw: Any, prep: Preprocess, orientation: int, fast: bool, max_pixels: int) -> tuple[Image.Image, str]:
    """The sensor data as an upright image and its source: binned in numpy (a Bayer sensor, ``fast``), else
    developed by LibRaw (at half size when ``fast``; X-Trans, 4-colour and other sensors)."""
    pixels = _check_pixels(raw, max_pixels)
    layout = bayer_layout(raw) if fast else None
    if layout is None:
        return _develop(raw, half=fast, max_pixels=max_pixels), "raw-half-size" if fast else "full"
    need = needed_size(prep, raw.sizes.width, raw.sizes.height)
    if pixels > BIG_DECODE_PIXELS:
        with _big_decodes:
            image = reduce_bayer(raw, layout, need)
    else:
        image = reduce_bayer(raw, layout, need)
    if orientation in _TRANSPOSE:
        image = image.transpose(_TRANSPOSE[orientation])
    return image, "raw-binned"


def _check_pixels(raw: Any, max_pixels: int) -> int:
    """The sensor's pixel count; DecodeError beyond the cap (checked before any sensor data is unpacked)."""
    sizes = raw.sizes
    pixels = sizes.raw_width * sizes.raw_height
    if pixels > max_pixels:
        raise DecodeError(
            f"too large: {pixels / 1e6:.0f} megapixels (limit {max_pixels / 1e6:.0f}); raise it with --max-pixels"
        )
    return pixels


def _develop(raw: Any, *, half: bool, max_pixels: int) -> Image.Image:
    """The sensor data developed by LibRaw (upright, camera white balance, 8-bit sRGB)."""
    pixels = _check_pixels(raw, max_pixels)
    if pixels > BIG_DECODE_PIXELS:
        with _big_decodes:
            rgb = raw.postprocess(half_size=half, use_camera_wb=True, output_bps=8)
    else:
        rgb = raw.postprocess(half_size=half, use_camera_wb=True, output_bps=8)
    return Image.fromarray(np.ascontiguousarray(rgb))  # H x W x 3 uint8: RGB


def _libraw_time(raw: Any) -> str | None:
    """LibRaw's capture time (read from the file's own tags), once the sensor data is unpacked anyway."""
    try:
        when = raw.other.timestamp
    except Exception:  # a camera LibRaw knows only partly
        return None
    if when is None or when.year < 1971:  # 0: LibRaw found none
        return None
    return when.replace(microsecond=0).isoformat()


def _upright_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)
