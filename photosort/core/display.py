"""A photo to look at: upright and about the screen's size, from the cheapest source that is big enough.

The window's large preview shows one photo at a time at screen size, so a
12 MP JPEG is decoded with draft mode (1/2 to 1/8 scale) and a camera RAW
from its embedded preview (developed at half size when the preview is too
small), never in full. Thread-safe and Qt-free: the window calls it from a
worker thread and turns the image into a pixmap.
"""

from __future__ import annotations

import logging
import warnings

from PIL import Image, ImageOps

from .decode import DEFAULT_MAX_PIXELS, HEIF_EXTENSIONS, DecodeError, _reason, heif_available, open_checked
from .raw import RAW_NEEDS_RAWPY, display_raw, is_raw_name, raw_available

log = logging.getLogger(__name__)

_FAILURES = (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError, ZeroDivisionError,
             MemoryError, RuntimeError)


def display_image(path: str, max_side: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """``path`` upright, in RGB, no larger than ``max_side`` on its long side; DecodeError says why not."""
    if path.lower().endswith(HEIF_EXTENSIONS) and not heif_available():
        raise DecodeError("HEIC/HEIF support needs pillow-heif: pip install 'photosort[heic]'")
    raw = is_raw_name(path)
    if raw and not raw_available():
        raise DecodeError(RAW_NEEDS_RAWPY)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(path, "rb") as f:
                if raw:
                    return display_raw(f, max_side, max_pixels).convert("RGB")
                image = open_checked(f, max_pixels)
                image.draft("RGB", (max_side, max_side))
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
                return upright.convert("RGB")
    except DecodeError:
        raise
    except _FAILURES as exc:
        raise DecodeError(_reason(exc)) from None
