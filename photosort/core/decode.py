"""Turn a photo file into what the encoder and the grid need, from one decode.

The encoder sees 224 px, so a 12 MP JPEG is decoded at reduced scale with
Pillow's draft mode (DCT scaling: 4-8x less work than a full decode), EXIF
orientation is applied so a phone photo is embedded upright, and the same
small image yields both the model input (CLIP's resize-shortest-side, bicubic,
centre crop) and the grid thumbnail. The pixel count is checked from the
header before any pixel is decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 100_000_000
THUMB_SIZE = 256
THUMB_QUALITY = 72
HEIF_EXTENSIONS = (".heic", ".heif")

# We enforce our own, settable cap before decoding; Pillow's own check would
# otherwise refuse large panoramas that draft mode decodes cheaply.
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False

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


def heif_available() -> bool:
    """Register pillow-heif's opener once; False when the optional extra is missing."""
    global _heif_state
    if _heif_state is None:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _heif_state = True
        except ImportError:
            _heif_state = False
    return _heif_state


def fingerprint(path: str, size: int | None = None) -> str:
    """A cheap content identity (size + first and last 64 KiB) to recognise a renamed photo."""
    chunk = 65536
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        total = os.fstat(f.fileno()).st_size if size is None else size
        digest.update(str(total).encode())
        digest.update(f.read(chunk))
        if total > 2 * chunk:
            f.seek(-chunk, os.SEEK_END)
            digest.update(f.read(chunk))
    return digest.hexdigest()


def decode_photo(path: str, prep: Preprocess, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedPhoto:
    """Decode ``path`` once into model input and thumbnail; raise DecodeError with a reason."""
    if path.lower().endswith(HEIF_EXTENSIONS) and not heif_available():
        raise DecodeError("HEIC/HEIF support needs pillow-heif: pip install 'photosort[heic]'")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(path, "rb") as f:
                image, width, height = _load_upright(f, prep, max_pixels)
                pixels = model_input(image, prep)
                thumb = make_thumbnail(image)
    except DecodeError:
        raise
    except (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError,
            ZeroDivisionError, MemoryError, Image.DecompressionBombError, RuntimeError) as exc:
        raise DecodeError(_reason(exc)) from None
    return DecodedPhoto(pixels, thumb, width, height, fingerprint(path))


def _load_upright(f: io.BufferedReader, prep: Preprocess, max_pixels: int) -> tuple[Image.Image, int, int]:
    image = Image.open(f)
    w, h = image.size
    if w <= 0 or h <= 0:
        raise DecodeError("image has no pixels")
    if w * h > max_pixels:
        raise DecodeError(
            f"too large: {w * h / 1e6:.0f} megapixels (limit {max_pixels / 1e6:.0f}); raise it with --max-pixels"
        )
    if image.format == "JPEG":
        # Ask for no less than what the model and thumbnail need: DCT scaling picks
        # the largest reduction (1/2, 1/4, 1/8) that still covers this size.
        need = max(prep.size, THUMB_SIZE)
        scale = need / min(w, h)
        image.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))
    image.load()
    orientation = image.getexif().get(0x0112, 1) if hasattr(image, "getexif") else 1
    image = ImageOps.exif_transpose(image) or image
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return _to_rgb(image), w, h


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
    thumb = image.copy()
    thumb.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=THUMB_QUALITY, optimize=False)
    return out.getvalue()


def _reason(exc: BaseException) -> str:
    """A short, human reason for a decode failure."""
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
