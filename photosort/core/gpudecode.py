"""JPEG decoding on the GPU (nvJPEG through torchvision), for when CPU threads cannot feed the model.

On a GPU the model embeds thousands of photos a second and Pillow's draft
decode (~30-40 ms of one core per 12 MP JPEG) is the limit. Here the decode
threads only read the file and its header (size, EXIF orientation, pixel
cap, fingerprint: well under a millisecond); the model thread decodes the
JPEG bytes in batches with ``torchvision.io.decode_jpeg(device="cuda")``,
turns them upright, and makes the model input (bicubic, antialiased, like
CLIP's processor) and the thumbnail on the GPU. Anything else (PNG, HEIC,
CMYK JPEGs, an MPF preview that is cheaper still, a file nvJPEG rejects)
goes through the CPU path of :mod:`.decode`, which also words the errors.

torchvision is optional; without it (or without CUDA) this module is unused.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass

import torch

from .capture import NO_FACTS, CaptureFacts, capture_facts
from .decode import (
    DEFAULT_MAX_PIXELS,
    THUMB_SIZE,
    DecodedPhoto,
    DecodeError,
    Preprocess,
    decode_or_reason,
    decode_photo,
    encode_thumbnail,
    fingerprint_file,
    open_checked,
    orientation_of,
)
from .raw import is_raw_name

log = logging.getLogger(__name__)

GPU_CHUNK = 32  # photos decoded at once: 12 MP RGB is 36 MB on the GPU each


@dataclass
class EncodedPhoto:
    """A JPEG read but not decoded: what the GPU needs, plus the facts the cache stores."""

    path: str
    data: bytes
    orientation: int
    width: int  # upright size of the original
    height: int
    fingerprint: str
    facts: CaptureFacts = NO_FACTS


def available(device: torch.device) -> bool:
    """True when torchvision can decode JPEGs on ``device`` (a CUDA device)."""
    if device.type != "cuda":
        return False
    try:
        from torchvision.io import decode_jpeg  # noqa: F401
    except Exception:  # ImportError, or a torchvision built for another torch
        return False
    return True


def read_encoded(path: str, prep: Preprocess, max_pixels: int = DEFAULT_MAX_PIXELS) -> EncodedPhoto | DecodedPhoto:
    """The file's bytes for the GPU when it is a plain JPEG; otherwise the CPU decode of it."""
    if is_raw_name(path):  # a RAW's TIFF header is not the photo: LibRaw reads it (core/raw.py)
        return decode_photo(path, prep, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open(path, "rb") as f:
                image = open_checked(f, max_pixels)
                w, h = image.size
                # An MPO's small preview is cheaper on the CPU than the full photo on the GPU.
                gpu_ready = image.format == "JPEG" and image.mode in ("RGB", "L")
                orientation = orientation_of(image) if gpu_ready else 1
                facts = capture_facts(image) if gpu_ready else NO_FACTS
                if gpu_ready:
                    size = os.fstat(f.fileno()).st_size
                    f.seek(0)
                    data = f.read()
                    identity = fingerprint_file(f, size)
    except DecodeError:
        raise
    except (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError) as exc:
        # Let the CPU path decide, and word, what is wrong with this file.
        log.debug("header read failed for %s: %s", path, exc)
        return decode_photo(path, prep, max_pixels)
    if not gpu_ready:
        return decode_photo(path, prep, max_pixels)
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return EncodedPhoto(path, data, orientation, w, h, identity, facts)


def decode_on_gpu(photos: list[EncodedPhoto], prep: Preprocess, device: torch.device,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> list[DecodedPhoto | str]:
    """Decode JPEGs on ``device`` into model inputs and thumbnails; a reason string for each failure."""
    out: list[DecodedPhoto | str] = []
    for start in range(0, len(photos), GPU_CHUNK):
        out.extend(_decode_chunk(photos[start : start + GPU_CHUNK], prep, device, max_pixels))
    return out


def _decode_chunk(photos: list[EncodedPhoto], prep: Preprocess, device: torch.device,
                  max_pixels: int) -> list[DecodedPhoto | str]:
    from torchvision.io import ImageReadMode, decode_jpeg

    datas = [torch.frombuffer(bytearray(p.data), dtype=torch.uint8) for p in photos]
    try:
        images: list[torch.Tensor | None] = list(decode_jpeg(datas, mode=ImageReadMode.RGB, device=device))
    except RuntimeError:
        # One bad file fails the whole batch: decode one by one to find it.
        images = [_decode_one(d, device) for d in datas]
    results: list[DecodedPhoto | str] = []
    for photo, image in zip(photos, images, strict=True):
        if image is None:
            results.append(decode_or_reason(photo.path, prep, max_pixels))
            continue
        upright = orient(image, photo.orientation)
        resized = resize_shortest(upright, prep.size)
        pixels = centre_crop(resized, prep.crop).permute(1, 2, 0).cpu().numpy()
        # The thumbnail comes from the small resized image when it is big enough: far less work than 12 MP.
        source = resized if max(resized.shape[1:]) >= THUMB_SIZE else upright
        thumb = thumbnail_tensor(source).permute(1, 2, 0).cpu().numpy()
        results.append(DecodedPhoto(
            pixels, encode_thumbnail(thumb), photo.width, photo.height, photo.fingerprint, photo.facts))
    return results


def _decode_one(data: torch.Tensor, device: torch.device) -> torch.Tensor | None:
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        return None


def orient(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """Turn a C x H x W image upright for its EXIF orientation, as Pillow's exif_transpose does."""
    if orientation == 2:
        return image.flip(2)
    if orientation == 3:
        return image.flip(1).flip(2)
    if orientation == 4:
        return image.flip(1)
    if orientation == 5:
        return image.transpose(1, 2)
    if orientation == 6:
        return image.transpose(1, 2).flip(2)
    if orientation == 7:
        return image.transpose(1, 2).flip(1).flip(2)
    if orientation == 8:
        return image.transpose(1, 2).flip(1)
    return image


def _resize(image: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Antialiased resize of a uint8 C x H x W image to (height, width), rounded back to uint8."""
    x = image.unsqueeze(0).float()
    y = torch.nn.functional.interpolate(x, size=size, mode=mode, antialias=True, align_corners=False)
    return y.round_().clamp_(0, 255).to(torch.uint8)[0]


def model_input_tensor(image: torch.Tensor, prep: Preprocess) -> torch.Tensor:
    """Shortest side to ``prep.size`` (bicubic) and a centre crop, on whatever device ``image`` is."""
    return centre_crop(resize_shortest(image, prep.size), prep.crop)


def resize_shortest(image: torch.Tensor, size: int) -> torch.Tensor:
    """Bicubic, antialiased resize of a C x H x W image so its shortest side is ``size`` (as CLIP's processor)."""
    _, h, w = image.shape
    if w <= h:
        new_w, new_h = size, max(1, int(size * h / w))
    else:
        new_w, new_h = max(1, int(size * w / h)), size
    return _resize(image, (new_h, new_w), "bicubic")


def centre_crop(image: torch.Tensor, crop: int) -> torch.Tensor:
    """The centre ``crop`` x ``crop`` square, padded with black where the image is smaller."""
    _, h, w = image.shape
    top, left = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
    out = image[:, top : top + crop, left : left + crop]
    if out.shape[1:] != (crop, crop):
        padded = out.new_zeros((3, crop, crop))
        padded[:, : out.shape[1], : out.shape[2]] = out
        out = padded
    return out


def thumbnail_tensor(image: torch.Tensor) -> torch.Tensor:
    """The grid thumbnail's pixels: longest side :data:`THUMB_SIZE`, never enlarged."""
    _, h, w = image.shape
    scale = min(1.0, THUMB_SIZE / max(w, h))
    if scale >= 1.0:
        return image
    return _resize(image, (max(1, round(h * scale)), max(1, round(w * scale))), "bilinear")
