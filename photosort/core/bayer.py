"""A Bayer RAW reduced straight to the size indexing needs: numpy binning instead of LibRaw's development.

LibRaw's half-size development of a 12 MP RAW costs ~100 ms after the ~35 ms
unpack (copying the mosaic into its 4-channel image, scaling, converting and
stretching 3 MP), only for the result to be shrunk to 224 px. Here the
unpacked mosaic (``raw_image_visible``) is summed in blocks of k x k Bayer
cells, k the largest that still covers :func:`~photosort.core.decode.needed_size`
(6 for 12 MP), and only those ~80 000 pixels are developed the way LibRaw
develops a half-size image: black level, the camera's white balance, each
channel clipped at the sensor's white (LibRaw's ``adjust_maximum_thr``
included), the two greens averaged, the camera-to-sRGB matrix (``color_matrix``),
LibRaw's auto-brightness (white at the 99th percentile of the brightest
channel, taken on single cells sampled one per block, as LibRaw's histogram
sees single cells) and its BT.709 curve (gamma 0.45, slope 4.5). ~12 ms
instead of ~100 ms; see :mod:`photosort.core.raw` for the measurements.

Only a 2 x 2 RGB Bayer pattern with square pixels is handled;
:func:`bayer_layout` says None for anything else (X-Trans, 4-colour CMYG,
Foveon, linear DNGs, Fuji's rotated sensors), which LibRaw develops instead.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

AUTO_BRIGHT_SHARE = 0.01  # LibRaw's auto_bright_thr: this share of the pixels ends up white
ADJUST_MAXIMUM = 0.75  # LibRaw's adjust_maximum_thr: a data maximum above this share of white is the white
_GREEN_SECOND = 3  # LibRaw's index of the second green in an "RGBG" pattern


def _bt709_toe() -> tuple[float, float]:
    """Where LibRaw's gamma curve (power 0.45, slope 4.5) turns from linear to power, and its offset.

    dcraw's ``gamma_curve`` finds the joint by bisection; the same 48 steps give the same numbers.
    """
    power, slope = 0.45, 4.5
    bounds = [0.0, 1.0]
    joint = 0.0
    for _ in range(48):
        joint = (bounds[0] + bounds[1]) / 2
        bounds[1 if ((joint / slope) ** -power - 1) / power - 1 / joint > -1 else 0] = joint
    return joint / slope, joint * (1 / power - 1)


_TOE, _OFFSET = _bt709_toe()


def bayer_layout(raw: Any) -> tuple[tuple[int, int], ...] | None:
    """The RGB channel (0-2) and LibRaw colour index of each cell of the 2 x 2 pattern, or None if it is not one.

    Row-major: ((channel, index) for (0, 0), (0, 1), (1, 0), (1, 1)).
    """
    try:
        pattern = np.asarray(raw.raw_pattern)
        desc = bytes(raw.color_desc)
        if raw.num_colors != 3 or pattern.shape != (2, 2) or desc[:3] != b"RGB":
            return None
        if raw.sizes.pixel_aspect != 1.0 or raw.raw_image_visible.ndim != 2:
            return None
    except Exception:  # a layout LibRaw reports oddly: let LibRaw develop it
        log.debug("no Bayer layout", exc_info=True)
        return None
    layout = []
    for index in pattern.ravel().tolist():
        letter = chr(desc[index]) if index < len(desc) else "?"
        if letter not in "RGB":
            return None
        layout.append(("RGB".index(letter), int(index)))
    if sorted(channel for channel, _ in layout) != [0, 1, 1, 2]:
        return None
    return tuple(layout)


def block_cells(width: int, height: int, need: tuple[int, int]) -> int:
    """Bayer cells per block side: the most that still leave ``need`` (w, h) pixels."""
    return max(1, min((width // 2) // max(1, need[0]), (height // 2) // max(1, need[1])))


def reduce_bayer(raw: Any, layout: tuple[tuple[int, int], ...], need: tuple[int, int]) -> Image.Image:
    """The mosaic of ``raw`` (unpacked here) binned and developed to at least ``need``, stored orientation."""
    mosaic = raw.raw_image_visible
    height, width = mosaic.shape
    k = block_cells(width, height, need)
    top = int(mosaic.max())
    blocks = _binned(mosaic, k, max(int(raw.white_level), top))  # rows x 2 x cols x 2 sums of k*k values
    sample = mosaic[: blocks.shape[0] * 2 * k].reshape(blocks.shape[0], 2 * k, width)[:, 0:2, : blocks.shape[2] * 2 * k]
    sample = sample.reshape(blocks.shape[0], 2, blocks.shape[2], 2 * k)[..., 0:2]  # one cell per block
    develop = _Development(raw, layout, top)
    rgb = develop.linear(blocks.astype(np.float32) * (1.0 / (k * k)))
    white = develop.auto_white(develop.linear(sample.astype(np.float32)))
    return Image.fromarray(_encoded(rgb, white))


def _binned(mosaic: np.ndarray, k: int, white: int) -> np.ndarray:
    """Sums over blocks of k x k cells, per cell position: rows x 2 x cols x 2 (uint32).

    Row pairs are added first (contiguous rows: fast; in 16 bits when k values up to ``white`` fit, which
    saves widening the whole mosaic), then column pairs of the k-times smaller result; a numpy reduction
    over a strided middle axis would be 4x slower.
    """
    height, width = mosaic.shape
    rows, cols = height // (2 * k), width // (2 * k)
    bands = mosaic[: rows * 2 * k].reshape(rows, 2 * k, width)
    narrow = k * white <= np.iinfo(np.uint16).max
    acc = bands[:, 0:2].astype(np.uint16 if narrow else np.uint32)
    for j in range(1, k):
        acc += bands[:, 2 * j : 2 * j + 2]
    pairs = acc[:, :, : cols * 2 * k].reshape(rows, 2, cols, 2 * k)
    out = pairs[..., 0:2].astype(np.uint32)
    for j in range(1, k):
        out += pairs[..., 2 * j : 2 * j + 2]
    return out


class _Development:
    """LibRaw's half-size development steps (``scale_colors``, green mixing, ``convert_to_rgb``) on cell means."""

    def __init__(self, raw: Any, layout: tuple[tuple[int, int], ...], top: int) -> None:
        self.layout = layout
        self.black = np.asarray(raw.black_level_per_channel, np.float32)
        white = float(raw.white_level)
        data_max = top - float(self.black.min())
        span = white - self.black
        if ADJUST_MAXIMUM * float(span.max()) < data_max < float(span.max()):
            span = np.full_like(span, data_max)
        self.scale = _white_balance(raw) / np.maximum(span, 1.0)
        self.matrix = _camera_to_srgb(raw)

    def linear(self, cells: np.ndarray) -> np.ndarray:
        """rows x 2 x cols x 2 raw cell values -> rows x cols x 3 linear sRGB (1.0: the sensor's white)."""
        rgb = np.zeros((cells.shape[0], cells.shape[2], 3), np.float32)
        for position, (channel, index) in enumerate(self.layout):
            values = cells[:, position // 2, :, position % 2] - self.black[index]
            values *= self.scale[index] / (2.0 if channel == 1 else 1.0)  # the two greens are averaged
            np.clip(values, 0.0, 1.0 / (2.0 if channel == 1 else 1.0), out=values)
            rgb[..., channel] += values
        rgb = rgb @ self.matrix.T
        return np.clip(rgb, 0.0, 1.0, out=rgb)

    @staticmethod
    def auto_white(rgb: np.ndarray) -> float:
        """LibRaw's auto-brightness: the level that :data:`AUTO_BRIGHT_SHARE` of the pixels of some channel reach."""
        flat = rgb.reshape(-1, 3)
        kth = min(len(flat) - 1, int(len(flat) * (1 - AUTO_BRIGHT_SHARE)))
        level = max(float(np.partition(flat[:, c], kth)[kth]) for c in range(3))
        return max(level, 256 / 65535)  # LibRaw's histogram stops at its 32nd bin


def _white_balance(raw: Any) -> np.ndarray:
    """The camera's multipliers (LibRaw's ``use_camera_wb``), the daylight ones when it has none, min 1."""
    for source in (raw.camera_whitebalance, raw.daylight_whitebalance):
        wb = np.asarray(source, np.float32)
        if len(wb) == 4 and wb[0] > 0 and wb[1] > 0 and np.all(np.isfinite(wb)):
            break
    else:
        wb = np.ones(4, np.float32)
    if wb[_GREEN_SECOND] <= 0:
        wb[_GREEN_SECOND] = wb[1]
    return wb / wb[wb > 0].min()


def _camera_to_srgb(raw: Any) -> np.ndarray:
    """LibRaw's ``rgb_cam`` (camera RGB -> linear sRGB, rows summing to 1); identity when LibRaw has none."""
    matrix = np.asarray(raw.color_matrix, np.float32)[:3, :3]
    if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)) or not matrix.any():
        return np.eye(3, dtype=np.float32)
    return matrix


def _encoded(rgb: np.ndarray, white: float) -> np.ndarray:
    """Linear -> 8-bit through LibRaw's BT.709 curve with ``white`` mapped to 255."""
    x = rgb * np.float32(1.0 / white)
    np.minimum(x, 1.0, out=x)
    curved = np.where(x < _TOE, x * 4.5, np.power(x, 0.45) * (1 + _OFFSET) - _OFFSET)
    return (curved * 255.0 + 0.5).astype(np.uint8)
