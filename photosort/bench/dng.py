"""Camera-like DNG files: a real RAW that LibRaw reads, written without a camera.

A DNG is a TIFF: IFD0 holds a small RGB thumbnail and the camera's facts
(make, model, orientation, the EXIF capture time, the DNG colour tags), and
its SubIFDs hold the sensor data as a Bayer (RGGB) colour filter array of
12-bit values in 16-bit words, and a JPEG preview as cameras embed one. The
sensor data is the scene made linear again (see :func:`bayer_mosaic`), and
the colour matrix says the "sensor" sees linear sRGB, so a RAW developer
(LibRaw's demosaic) renders it close to the scene, as a camera's own JPEG
preview shows it (a real camera's preview carries its picture style, which
LibRaw's neutral development does not). Product code, not a test helper: ``photosort bench``
measures RAW indexing on these, and the tests read them through rawpy.

Sizes and the preview are choices, so both the fast path (a preview big
enough for the encoder) and the slow one (a tiny or no preview: LibRaw
develops the sensor data at half size) can be measured.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

WHITE_LEVEL = 4095  # 12-bit sensor
THUMB_LONG_SIDE = 256  # IFD0's thumbnail, as Adobe's converter writes it
# XYZ (D65) -> linear sRGB: a "sensor" that sees linear sRGB, so developing the file gives back the scene.
XYZ_TO_LINEAR_SRGB = ((3.2406, -1.5372, -0.4986), (-0.9689, 1.8758, 0.0415), (0.0557, -0.2040, 1.0570))
# Upright scene -> the pixels a camera held that way stores (EXIF orientation), as photos.py does for JPEGs.
STORED_AS = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}

_BYTE, _ASCII, _SHORT, _LONG, _RATIONAL, _UNDEFINED, _SRATIONAL = 1, 2, 3, 4, 5, 7, 10
_TYPE_SIZE = {_BYTE: 1, _ASCII: 1, _SHORT: 2, _LONG: 4, _RATIONAL: 8, _UNDEFINED: 1, _SRATIONAL: 8}


@dataclass(frozen=True)
class DngOptions:
    """What the "camera" writes: its name, when, how it was held, and how big a preview it embeds."""

    make: str = "photosort"
    model: str = "DNG bench camera"
    taken: dt.datetime | None = dt.datetime(2023, 5, 17, 14, 30, 5)
    orientation: int = 1  # EXIF orientation of the stored pixels (1, 3, 6 or 8)
    preview_long_side: int | None = 1620  # the embedded JPEG preview; None: none
    thumbnail: bool = True  # IFD0's small RGB thumbnail
    preview_quality: int = 90


def write_dng(path: Path, scene: Image.Image, options: DngOptions = DngOptions()) -> Path:
    """Write ``scene`` (upright RGB) as a DNG a camera held ``options.orientation`` would have written."""
    stored = scene.convert("RGB")
    if options.orientation in STORED_AS:
        stored = stored.transpose(STORED_AS[options.orientation])
    w, h = stored.size
    stored = stored.crop((0, 0, w - w % 2, h - h % 2))  # a Bayer mosaic has whole 2 x 2 cells
    tiff = _Tiff()
    subifds = [tiff.ifd(_raw_tags(tiff, stored))]
    if options.preview_long_side:
        subifds.append(tiff.ifd(_preview_tags(tiff, stored, options)))
    exif = tiff.ifd(_exif_tags(options)) if options.taken else None
    tiff.finish(tiff.ifd(_ifd0_tags(tiff, stored, options, subifds, exif)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tiff.data)
    return path


def bayer_mosaic(image: Image.Image) -> np.ndarray:
    """The RGGB sensor values (12-bit, linear) a camera would have recorded for ``image``."""
    # The inverse of the curve LibRaw develops with by default (BT.709: gamma 0.45, slope 4.5), so that the
    # developed file looks like the preview this camera embeds, as a camera's own rendering looks like its JPEG.
    encoded = np.asarray(image, np.float32) / 255.0
    linear = np.where(encoded < 0.081, encoded / 4.5, ((encoded + 0.099) / 1.099) ** (1 / 0.45))
    values = np.round(linear * WHITE_LEVEL).astype(np.uint16)
    mosaic = np.empty(values.shape[:2], np.uint16)
    mosaic[0::2, 0::2] = values[0::2, 0::2, 0]  # R
    mosaic[0::2, 1::2] = values[0::2, 1::2, 1]  # G
    mosaic[1::2, 0::2] = values[1::2, 0::2, 1]  # G
    mosaic[1::2, 1::2] = values[1::2, 1::2, 2]  # B
    return mosaic


def _raw_tags(tiff: _Tiff, stored: Image.Image) -> list[_Tag]:
    w, h = stored.size
    strip = tiff.blob(bayer_mosaic(stored).astype("<u2").tobytes())
    return [
        _Tag(254, _LONG, [0]), _Tag(256, _LONG, [w]), _Tag(257, _LONG, [h]), _Tag(258, _SHORT, [16]),
        _Tag(259, _SHORT, [1]), _Tag(262, _SHORT, [32803]), _Tag(273, _LONG, [strip]), _Tag(277, _SHORT, [1]),
        _Tag(278, _LONG, [h]), _Tag(279, _LONG, [w * h * 2]), _Tag(284, _SHORT, [1]),
        _Tag(33421, _SHORT, [2, 2]), _Tag(33422, _BYTE, [0, 1, 1, 2]),
        _Tag(50714, _LONG, [0]), _Tag(50717, _LONG, [WHITE_LEVEL]),
    ]


def _preview_tags(tiff: _Tiff, stored: Image.Image, options: DngOptions) -> list[_Tag]:
    preview = _scaled(stored, options.preview_long_side or 0)
    out = io.BytesIO()
    preview.save(out, "JPEG", quality=options.preview_quality)
    data = out.getvalue()
    w, h = preview.size
    return [
        _Tag(254, _LONG, [1]), _Tag(256, _LONG, [w]), _Tag(257, _LONG, [h]), _Tag(258, _SHORT, [8, 8, 8]),
        _Tag(259, _SHORT, [7]), _Tag(262, _SHORT, [6]), _Tag(273, _LONG, [tiff.blob(data)]),
        _Tag(277, _SHORT, [3]), _Tag(278, _LONG, [h]), _Tag(279, _LONG, [len(data)]), _Tag(284, _SHORT, [1]),
    ]


def _ifd0_tags(tiff: _Tiff, stored: Image.Image, options: DngOptions, subifds: list[int],
               exif: int | None) -> list[_Tag]:
    thumb = _scaled(stored, THUMB_LONG_SIDE) if options.thumbnail else Image.new("RGB", (2, 2))
    w, h = thumb.size
    tags = [
        _Tag(254, _LONG, [1]), _Tag(256, _LONG, [w]), _Tag(257, _LONG, [h]), _Tag(258, _SHORT, [8, 8, 8]),
        _Tag(259, _SHORT, [1]), _Tag(262, _SHORT, [2]), _Tag(271, _ASCII, options.make),
        _Tag(272, _ASCII, options.model), _Tag(273, _LONG, [tiff.blob(thumb.tobytes())]),
        _Tag(274, _SHORT, [options.orientation]), _Tag(277, _SHORT, [3]), _Tag(278, _LONG, [h]),
        _Tag(279, _LONG, [w * h * 3]), _Tag(284, _SHORT, [1]),
        _Tag(330, _LONG, subifds),
        _Tag(50706, _BYTE, [1, 4, 0, 0]), _Tag(50707, _BYTE, [1, 1, 0, 0]),
        _Tag(50708, _ASCII, f"{options.make} {options.model}"),
        _Tag(50721, _SRATIONAL, [n for row in XYZ_TO_LINEAR_SRGB for c in row for n in (round(c * 10000), 10000)]),
        _Tag(50728, _RATIONAL, [1, 1, 1, 1, 1, 1]), _Tag(50778, _SHORT, [21]),  # AsShotNeutral, D65
    ]
    if options.taken:
        tags.append(_Tag(306, _ASCII, options.taken.strftime("%Y:%m:%d %H:%M:%S")))
    if exif is not None:
        tags.append(_Tag(34665, _LONG, [exif]))
    return tags


def _exif_tags(options: DngOptions) -> list[_Tag]:
    when = options.taken.strftime("%Y:%m:%d %H:%M:%S") if options.taken else ""
    return [_Tag(36864, _UNDEFINED, list(b"0231")), _Tag(36867, _ASCII, when), _Tag(36868, _ASCII, when)]


def _scaled(image: Image.Image, long_side: int) -> Image.Image:
    w, h = image.size
    scale = min(1.0, long_side / max(w, h))
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


@dataclass
class _Tag:
    tag: int
    kind: int
    values: list[int] | str = field(default_factory=list)

    def payload(self) -> tuple[int, bytes]:
        """(count, little-endian bytes) of the value."""
        if isinstance(self.values, str):
            raw = self.values.encode("ascii", "replace") + b"\0"
            return len(raw), raw
        if self.kind in (_RATIONAL, _SRATIONAL):
            fmt = "<" + ("i" if self.kind == _SRATIONAL else "I") * len(self.values)
            return len(self.values) // 2, struct.pack(fmt, *self.values)
        fmt = {_BYTE: "B", _UNDEFINED: "B", _SHORT: "H", _LONG: "I"}[self.kind]
        return len(self.values), struct.pack("<" + fmt * len(self.values), *self.values)


class _Tiff:
    """A little-endian TIFF built front to back: blobs and IFDs appended, IFD0 named last."""

    def __init__(self) -> None:
        self.data = bytearray(b"II*\0\0\0\0\0")

    def blob(self, payload: bytes) -> int:
        """Append ``payload`` (word-aligned) and return its offset."""
        if len(self.data) % 2:
            self.data.append(0)
        offset = len(self.data)
        self.data += payload
        return offset

    def ifd(self, tags: list[_Tag]) -> int:
        """Append one IFD (its long values first) and return its offset."""
        entries = []
        for tag in sorted(tags, key=lambda t: t.tag):
            count, raw = tag.payload()
            assert count * _TYPE_SIZE[tag.kind] == len(raw), tag
            value = raw.ljust(4, b"\0") if len(raw) <= 4 else struct.pack("<I", self.blob(raw))
            entries.append(struct.pack("<HHI", tag.tag, tag.kind, count) + value)
        return self.blob(struct.pack("<H", len(entries)) + b"".join(entries) + b"\0\0\0\0")

    def finish(self, first_ifd: int) -> None:
        self.data[4:8] = struct.pack("<I", first_ifd)
