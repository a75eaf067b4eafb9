"""Camera-like JPEGs to measure on when the user gives no folder.

Sensor noise, EXIF and rotated photos are what make a camera's JPEGs slow to
decode and tricky to embed upright; a smooth synthetic image would flatter
decoding, and an unrotated set would hide orientation bugs. Product code, not
a test helper: ``photosort bench`` without a folder measures on these.
"""

from __future__ import annotations

import logging
import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

log = logging.getLogger(__name__)

KINDS = ("beach", "forest", "night", "document", "sunset")
ORIENTATIONS = (1, 1, 1, 3, 6, 8)  # most photos upright, some as a camera held sideways or upside down stores them
_INVERSE = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
_COLOURS = {"beach": ((70, 130, 220), (235, 210, 150)), "forest": ((120, 160, 110), (20, 60, 25)),
            "night": ((5, 5, 20), (20, 20, 45)), "document": ((240, 240, 240), (225, 225, 225)),
            "sunset": ((250, 120, 40), (90, 20, 60))}


def generate_photos(folder: Path, count: int, megapixels: float = 12.0, seed: int = 1) -> list[Path]:
    """Write ``count`` camera-like JPEGs: drawn scenes of 5 kinds, sensor noise, EXIF, some rotated.

    Sensor noise matters: it is what makes a camera JPEG big (3-4 MB at 12 MP)
    and its decode slow, so a smooth synthetic image would flatter decoding.
    """
    folder.mkdir(parents=True, exist_ok=True)
    width = int((megapixels * 1e6 * 4 / 3) ** 0.5) // 16 * 16
    height = width * 3 // 4
    noise = np.random.default_rng(seed).normal(0.0, 5.0, (height + 64, width + 64, 3)).astype(np.int16)
    jobs = [(folder / f"{KINDS[i % len(KINDS)]}" / f"IMG_{i:05d}.JPG", KINDS[i % len(KINDS)], seed * 100_003 + i)
            for i in range(count)]
    log.debug("generating %d %g MP photos in %s", count, megapixels, folder)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(pool.map(lambda job: _write_photo(*job, width, height, noise), jobs))


def _write_photo(path: Path, kind: str, seed: int, width: int, height: int, noise: np.ndarray) -> Path:
    """One photo: a scene scaled up, a window of the shared noise on top, stored as the camera would."""
    rng = random.Random(seed)
    scene = _draw_scene(kind, rng).resize((width, height), Image.Resampling.BICUBIC)
    dy, dx = rng.randrange(64), rng.randrange(64)
    pixels = np.asarray(scene, dtype=np.int16) + noise[dy : dy + height, dx : dx + width]
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    orientation = rng.choice(ORIENTATIONS)
    if orientation in _INVERSE:
        image = image.transpose(_INVERSE[orientation])  # stored as a camera held that way would store it
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "photosort", "bench camera", orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=rng.choice((90, 92, 95)), exif=exif)
    return path


def _draw_scene(kind: str, rng: random.Random, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A small drawing of ``kind``: its colours as a gradient, with blobs (or lines of text for a document)."""
    w, h = size
    top, bottom = _COLOURS[kind]
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    gradient = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    image = Image.fromarray(np.broadcast_to(gradient, (h, w, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(10, 40)):
        x, y = rng.randrange(w), rng.randrange(h)
        r = rng.randint(2, 40)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if kind == "document":
            draw.rectangle([x, y, x + rng.randint(40, 300), y + 6], fill=(30, 30, 30))
        else:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    return image
