"""Small synthetic photos of five kinds, drawn with Pillow, for tests that need real image files."""

from __future__ import annotations

import random

KIND_COLOURS = {
    "beach": ((70, 130, 220), (235, 210, 150)),
    "forest": ((120, 160, 110), (20, 60, 25)),
    "night": ((5, 5, 20), (20, 20, 45)),
    "document": ((240, 240, 240), (230, 230, 230)),
    "sunset": ((250, 120, 40), (90, 20, 60)),
}


def draw_photo(kind: str, size: tuple[int, int] = (96, 72), seed: int = 0):
    """A small scene of one synthetic kind: two-colour gradient plus a few random shapes."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = random.Random(f"{kind}-{seed}")
    top, bottom = KIND_COLOURS[kind]
    w, h = size
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    arr = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    img = Image.fromarray(np.broadcast_to(arr, (h, w, 3)).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(4):
        x, y = rng.randint(0, w), rng.randint(0, h)
        d.ellipse([x, y, x + rng.randint(4, 20), y + rng.randint(4, 20)], fill=tuple(rng.randint(0, 255) for _ in range(3)))
    return img
