"""Turn a photo file into what the encoder and the grid need, from one decode.

The encoder sees 224 px, so a 12 MP JPEG is decoded at reduced scale with
Pillow's draft mode (DCT scaling: 1/8 of each side costs ~30 ms of one core
instead of ~100 ms for a full decode; what is left is libjpeg's Huffman pass), EXIF orientation is applied so a phone photo is
embedded upright, and the same small image yields both the model input
(CLIP's resize-shortest-side, bicubic, centre crop) and the grid thumbnail.
The pixel count is checked from the header before any pixel is decoded, so a
decompression bomb costs nothing.

Cheaper sources are used when they are big enough for both uses (model input
short side and thumbnail long side): a camera JPEG's MPF preview (a second,
smaller JPEG in the same file: 262 photos/s on 2 cores instead of 58) and
the thumbnails embedded in HEIC files (through pillow-heif's draft, pillow-heif
1.8 or newer), and a camera RAW's embedded preview (:mod:`.raw`, through
LibRaw). Which one served is ``DecodedPhoto.source``. Measured
on the ViT-B/32 stand-in against the naive full decode (``photosort bench``,
fp32): the draft decode agrees to cosine 0.99999 or better per photo, a
1920 x 1440 MPF preview to 0.99998.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, NamedTuple

import numpy as np
from PIL import Image, ImageFile

from .capture import NO_FACTS, CaptureFacts, capture_facts
from .paths import NAME_TOO_LONG, is_name_too_long

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 100_000_000
THUMB_SIZE = 256
THUMB_QUALITY = 72
HEIF_EXTENSIONS = (".heic", ".heif")
ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that makes the photo upright (as ImageOps.exif_transpose does).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# We enforce our own, settable cap before decoding; Pillow's own check would
# otherwise refuse large panoramas that draft mode decodes cheaply.
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False

# A decode that stays above this many pixels after draft mode takes the one "big decode" slot.
BIG_DECODE_PIXELS = 24_000_000
_big_decodes = threading.Lock()
_REDUCIBLE_MODES = ("RGB", "RGBA", "RGBX", "L", "LA", "CMYK", "I", "F")
_EXIF_AFTER_PIXELS = ("PNG",)

_heif_state: bool | None = None


class DecodeError(Exception):
    """A photo that cannot be read; the message is the one-line reason shown to the user."""


@dataclass(frozen=True)
class Preprocess:
    """CLIP's image preprocessing, read from the model's preprocessor config."""

    size: int = 224  # shortest side after resize
    crop: int = 224  # square centre crop


@dataclass
class DecodedPhoto:
    """One decode's worth of results: model input, thumbnail and facts about the photo."""

    pixels: np.ndarray  # uint8, crop x crop x 3, RGB
    thumb: bytes  # JPEG
    width: int  # upright size of the original
    height: int
    fingerprint: str
    facts: CaptureFacts = NO_FACTS
    source: str = "full"  # what was decoded: see Upright.source


class Upright(NamedTuple):
    """A decoded photo made upright, before it becomes model input and thumbnail."""

    image: Image.Image  # RGB
    width: int  # upright size of the original
    height: int
    facts: CaptureFacts
    # The cheapest source that served: "jpeg-draft" (DCT-scaled), "mpf-preview", "heif-thumbnail",
    # "raw-preview", "raw-binned", "raw-half-size", or "full" (every pixel of the photo decoded).
    source: str = "full"


def heif_available() -> bool:
    """Register pillow-heif's opener once; False when the optional extra is missing."""
    global _heif_state
    if _heif_state is None:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _heif_state = True
            _warn_if_heif_decodes_in_full(pillow_heif)
        except ImportError:
            _heif_state = False
    return _heif_state


def _warn_if_heif_decodes_in_full(pillow_heif: Any) -> None:
    """pillow-heif before 1.8 has no draft(): every HEIC is then decoded whole, ~25x slower than its thumbnail."""
    plugin = getattr(getattr(pillow_heif, "as_plugin", None), "HeifImageFile", None)
    if plugin is not None and plugin.draft is ImageFile.ImageFile.draft:
        log.warning("pillow-heif %s decodes each HEIC photo in full (about 2 photos/s on 2 cores); pillow-heif 1.8 "
                    "or newer reads its embedded thumbnail instead: pip install -U 'photosort[heic]'",
                    getattr(pillow_heif, "__version__", "?"))


def fingerprint(path: str, size: int | None = None) -> str:
    """A cheap content identity (size + first and last 64 KiB) to recognise a renamed photo."""
    with open(path, "rb") as f:
        return fingerprint_file(f, os.fstat(f.fileno()).st_size if size is None else size)


def fingerprint_file(f: BinaryIO, size: int) -> str:
    """:func:`fingerprint` of an already open file (its position is changed)."""
    chunk = 65536
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(size).encode())
    f.seek(0)
    digest.update(f.read(chunk))
    if size > 2 * chunk:
        f.seek(-chunk, os.SEEK_END)
        digest.update(f.read(chunk))
    return digest.hexdigest()


def decode_photo(path: str, prep: Preprocess, max_pixels: int = DEFAULT_MAX_PIXELS, *,
                 fast: bool = True) -> DecodedPhoto:
    """Decode ``path`` once into model input and thumbnail; raise DecodeError with a reason.

    ``fast=False`` decodes every pixel (no draft, preview or thumbnail): the
    reference that ``photosort bench`` checks each fast path against.
    """
    if path.lower().endswith(HEIF_EXTENSIONS) and not heif_available():
        raise DecodeError("HEIC/HEIF support needs pillow-heif: pip install 'photosort[heic]'")
    raw = _raw_reader(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(path, "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    raise DecodeError("empty file (0 bytes): an interrupted copy or download?")
                upright = raw.load_raw(f, prep, max_pixels, fast) if raw else _load_upright(f, prep, max_pixels, fast)
                image, width, height, facts, source = upright
                pixels = model_input(image, prep)
                thumb = make_thumbnail(image)
                identity = fingerprint_file(f, os.fstat(f.fileno()).st_size)
    except DecodeError:
        raise
    except (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError,
            ZeroDivisionError, MemoryError, Image.DecompressionBombError, RuntimeError) as exc:
        raise DecodeError(_reason(exc)) from None
    return DecodedPhoto(pixels, thumb, width, height, identity, facts, source)


def _raw_reader(path: str) -> Any:
    """The RAW module when ``path`` is a camera RAW (imported on first use: it builds on this one), else None."""
    from . import raw

    if not raw.is_raw_name(path):
        return None
    if not raw.raw_available():
        raise DecodeError(raw.RAW_NEEDS_RAWPY)
    return raw


def read_capture_facts(path: str) -> CaptureFacts:
    """A photo's capture facts from its header alone (for photos cached before the facts were kept)."""
    if path.lower().endswith(HEIF_EXTENSIONS) and not heif_available():
        return CaptureFacts()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from .raw import is_raw_name, raw_capture_facts

            if is_raw_name(path):  # the header is read without LibRaw; a preview's EXIF needs it
                return raw_capture_facts(path)
            with Image.open(path) as image:
                return capture_facts(image)
    except Exception:  # unreadable now: the next full index of this photo records why
        log.debug("no capture facts for %s", path, exc_info=True)
        return CaptureFacts()


def open_checked(f: BinaryIO, max_pixels: int) -> Image.Image:
    """Open an image and check its pixel count from the header, before any pixel is decoded."""
    image = Image.open(f)
    w, h = image.size
    if w <= 0 or h <= 0:
        raise DecodeError("image has no pixels")
    if w * h > max_pixels:
        raise DecodeError(
            f"too large: {w * h / 1e6:.0f} megapixels (limit {max_pixels / 1e6:.0f}); raise it with --max-pixels"
        )
    return image


def orientation_of(image: Image.Image) -> int:
    """The EXIF orientation (1-8; 1 is upright), read before any other frame is selected."""
    try:
        value = int(image.getexif().get(ORIENTATION_TAG, 1))
    except (TypeError, ValueError):
        return 1
    return value if value in _TRANSPOSE or value == 1 else 1


def needed_size(prep: Preprocess, w: int, h: int) -> tuple[int, int]:
    """The smallest size (same aspect) that still serves the model input and the thumbnail."""
    scale = max(prep.size / min(w, h), THUMB_SIZE / max(w, h))
    return max(1, math.ceil(w * scale - 1e-6)), max(1, math.ceil(h * scale - 1e-6))


def _load_upright(f: BinaryIO, prep: Preprocess, max_pixels: int, fast: bool = True) -> Upright:
    image = open_checked(f, max_pixels)
    w, h = image.size
    # PNG may keep its EXIF after the pixels: asking for it decodes them, so that waits for the load.
    exif_late = image.format in _EXIF_AFTER_PIXELS
    orientation = None if exif_late else orientation_of(image)
    facts = None if exif_late else capture_facts(image)
    need = needed_size(prep, w, h)
    source = "full"
    if fast and image.format == "MPO":
        _select_mpf_preview(image, need)
        source = "mpf-preview" if image.tell() else source
    if fast and image.format in ("JPEG", "MPO", "HEIF"):
        # JPEG: DCT scaling picks the largest reduction (1/2, 1/4, 1/8) that
        # still covers ``need``; HEIF: the smallest embedded thumbnail that does.
        image.draft("RGB", need)
        if source == "full" and image.size != (w, h):
            source = "heif-thumbnail" if image.format == "HEIF" else "jpeg-draft"
    image, orientation = _load_bounded(image, need, orientation)
    if facts is None:
        facts = capture_facts(image)
    if orientation in _TRANSPOSE:
        image = image.transpose(_TRANSPOSE[orientation])
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return Upright(_to_rgb(image), w, h, facts, source)


def _load_bounded(image: Image.Image, need: tuple[int, int], orientation: int | None) -> tuple[Image.Image, int]:
    """Decode (and read a late orientation); an image still huge after draft is decoded one at a time.

    A 100 MP PNG is 400 MB in memory. Under the lock it is box-reduced right
    away to little more than ``need``, so however many decode threads there
    are, at most one huge bitmap exists at once.
    """
    w, h = image.size
    if w * h <= BIG_DECODE_PIXELS:
        image.load()
        return image, orientation_of(image) if orientation is None else orientation
    with _big_decodes:
        image.load()
        if orientation is None:
            orientation = orientation_of(image)
        factor = min(w // max(1, need[0]), h // max(1, need[1]))
        if factor > 1 and image.mode in _REDUCIBLE_MODES:
            image = image.reduce(factor)
    return image, orientation


def _select_mpf_preview(image: Image.Image, need: tuple[int, int]) -> None:
    """Switch to the smallest MPF preview frame that is a scaled copy of the photo and covers ``need``.

    Cameras store a large preview (VGA to Full HD) after the primary image;
    it costs a fraction of the primary's decode. Frames that are other views
    (stereo disparity, multi-angle, panorama) or another shape are ignored.
    """
    w, h = image.size
    entries = getattr(image, "mpinfo", {}).get(0xB002, [])
    best: tuple[int, int] | None = None  # (pixels, frame)
    for frame in range(1, getattr(image, "n_frames", 1)):
        kind = str(entries[frame].get("Attribute", {}).get("MPType", "")) if frame < len(entries) else ""
        if kind.startswith("Multi-Frame"):
            continue
        image.seek(frame)
        pw, ph = image.size
        scaled_copy = abs(pw * h - ph * w) <= 2 * max(w, h) and pw * ph < w * h
        if scaled_copy and pw >= need[0] and ph >= need[1] and (best is None or pw * ph < best[0]):
            best = (pw * ph, frame)
    image.seek(best[1] if best else 0)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB the way CLIP's processor makes it; 16-bit and float modes are scaled down first."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        hi = float(arr.max()) if arr.size else 0.0
        lo = float(arr.min()) if arr.size else 0.0
        scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        image = Image.fromarray(scaled.astype(np.uint8), "L")
    return image.convert("RGB")


def model_input(image: Image.Image, prep: Preprocess) -> np.ndarray:
    """Resize the shortest side to ``prep.size`` (bicubic) and centre-crop, as CLIPImageProcessor does."""
    w, h = image.size
    if w <= h:
        new_w, new_h = prep.size, max(1, int(prep.size * h / w))
    else:
        new_w, new_h = max(1, int(prep.size * w / h)), prep.size
    resized = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    arr = np.asarray(resized)
    top = max(0, (new_h - prep.crop) // 2)
    left = max(0, (new_w - prep.crop) // 2)
    arr = arr[top : top + prep.crop, left : left + prep.crop]
    if arr.shape[0] != prep.crop or arr.shape[1] != prep.crop:
        padded = np.zeros((prep.crop, prep.crop, 3), np.uint8)
        padded[: arr.shape[0], : arr.shape[1]] = arr
        arr = padded
    return np.ascontiguousarray(arr)


def make_thumbnail(image: Image.Image) -> bytes:
    """A small JPEG for the grid (a few KB), made from the already-decoded image."""
    w, h = image.size
    scale = min(1.0, THUMB_SIZE / max(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    thumb = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0) if scale < 1.0 else image
    return encode_thumbnail(thumb)


def encode_thumbnail(thumb: Image.Image | np.ndarray) -> bytes:
    """JPEG bytes of thumbnail pixels (an image, or H x W x 3 uint8)."""
    if isinstance(thumb, np.ndarray):
        thumb = Image.fromarray(thumb, "RGB")
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=THUMB_QUALITY, optimize=False)
    return out.getvalue()


def _reason(exc: BaseException) -> str:
    """A short, human reason for a decode failure."""
    if is_name_too_long(exc):
        return NAME_TOO_LONG
    if isinstance(exc, FileNotFoundError):
        return "file vanished while reading"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "cannot identify image file" in text:
        return "not a readable image (unknown or corrupt format)"
    if "truncated" in text.lower():
        return "truncated file (incomplete download or copy?)"
    return text[:200]


def decode_or_reason(path: str, prep: Preprocess, max_pixels: int = DEFAULT_MAX_PIXELS,
                     read: Callable[[str, Preprocess, int], Any] | None = None) -> Any:
    """``read`` (default: :func:`decode_photo`) one photo, or its one-line reason: one bad file never stops a run."""
    try:
        return (read or decode_photo)(path, prep, max_pixels)
    except DecodeError as exc:
        return str(exc)
    except Exception as exc:  # a decoder bug is this photo's failure, not the run's
        log.exception("unexpected failure reading %s", path)
        return f"unexpected error while reading: {type(exc).__name__}: {str(exc)[:120]}"

