"""Photos for the near-duplicate tests: scenes with detail, copies, blurred copies and bursts with EXIF times."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

EXIF_IFD, DATE_TIME_ORIGINAL, MAKE, MODEL = 0x8769, 0x9003, 0x010F, 0x0110


def scene(seed: int, size: tuple[int, int] = (480, 360), ball: tuple[float, float] | None = None) -> Image.Image:
    """A detailed scene (sky, ground, shapes, noise) of its own per seed; ``ball`` adds a moving subject (x, y in 0-1)."""
    rng = random.Random(seed)
    w, h = size
    top = np.array([rng.randint(40, 200) for _ in range(3)], np.float32)
    bottom = np.array([rng.randint(40, 200) for _ in range(3)], np.float32)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = Image.fromarray(np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = rng.randint(0, w), rng.randint(0, h)
        r = rng.randint(w // 30, w // 6)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x - r, y - r, x + r, y + r], fill=colour)
    if ball is not None:
        x, y, r = int(ball[0] * w), int(ball[1] * h), w // 8
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(250, 250, 250), outline=(0, 0, 0), width=3)
    noise = np.random.default_rng(seed).normal(0, 4, (h, w, 3))
    return Image.fromarray(np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8))


def exif_at(when: dt.datetime | None, camera: tuple[str, str] = ("Canon", "EOS R6")) -> Image.Exif:
    exif = Image.Exif()
    exif[MAKE], exif[MODEL] = camera
    if when is not None:
        exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] = when.strftime("%Y:%m:%d %H:%M:%S")
    return exif


def save(image: Image.Image, path: Path, when: dt.datetime | None = None, quality: int = 92) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=quality, exif=exif_at(when))
    return path


def resized_copy(image: Image.Image, factor: int = 3) -> Image.Image:
    return image.reduce(factor)


def blurred(image: Image.Image, radius: float = 3.0) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius))
