"""Decoding: one cheap decode gives an upright model input and a small thumbnail, from the cheapest source."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from photo_factory import draw_photo
from PIL import Image, ImageFile

from photosort.core import gpudecode
from photosort.core.decode import (
    THUMB_SIZE,
    DecodedPhoto,
    DecodeError,
    Preprocess,
    decode_photo,
    model_input,
    needed_size,
)

PREP = Preprocess(size=224, crop=224)


def camera_photo(size: tuple[int, int] = (1600, 1200), seed: int = 0) -> Image.Image:
    """A detailed, noisy scene (like a camera's), so that decoding shortcuts would show."""
    rng = np.random.default_rng(seed)
    scene = draw_photo("beach", (160, 120), seed).resize(size, Image.Resampling.BICUBIC)
    noisy = np.asarray(scene, np.int16) + rng.normal(0, 4, (size[1], size[0], 3)).astype(np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def reference_input(image: Image.Image) -> np.ndarray:
    """What CLIP's processor does to a fully decoded, upright photo."""
    return model_input(image.convert("RGB"), PREP)


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_draft_decode_of_a_big_jpeg_matches_the_full_decode(tmp_path: Path) -> None:
    photo = camera_photo()
    path = tmp_path / "big.jpg"
    photo.save(path, quality=92)
    decoded = decode_photo(str(path), PREP)
    assert decoded.pixels.shape == (224, 224, 3) and decoded.pixels.dtype == np.uint8
    assert (decoded.width, decoded.height) == (1600, 1200)
    assert mean_abs_diff(decoded.pixels, reference_input(Image.open(path))) < 2.0


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    upright = camera_photo((1200, 900))
    stored = upright.transpose({3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90,
                                8: Image.Transpose.ROTATE_270}[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "rotated.jpg"
    stored.save(path, quality=92, exif=exif)
    decoded = decode_photo(str(path), PREP)
    assert (decoded.width, decoded.height) == (1200, 900)
    assert mean_abs_diff(decoded.pixels, reference_input(upright)) < 3.0
    thumb = Image.open(io.BytesIO(decoded.thumb))
    assert thumb.width > thumb.height  # the thumbnail is upright too


def test_thumbnail_is_small_and_sized_for_the_grid(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    camera_photo((2000, 1500)).save(path, quality=95)
    decoded = decode_photo(str(path), PREP)
    thumb = Image.open(io.BytesIO(decoded.thumb))
    assert thumb.format == "JPEG" and max(thumb.size) == THUMB_SIZE
    assert len(decoded.thumb) < 20_000


def test_needed_size_covers_the_model_input_and_the_thumbnail() -> None:
    assert needed_size(PREP, 4000, 3000) == (299, 224)  # the model's short side decides
    wide = needed_size(PREP, 8000, 1000)
    assert wide[1] >= 224 and wide[0] >= THUMB_SIZE
    tall_tiny = needed_size(Preprocess(32, 32), 300, 3000)
    assert tall_tiny[1] >= THUMB_SIZE  # a tiny model still gets a grid-sized thumbnail


def save_with_preview(path: Path, primary: Image.Image, preview: Image.Image) -> None:
    primary.save(path, "MPO", save_all=True, append_images=[preview], quality=90)


def test_a_large_enough_mpf_preview_is_used_instead_of_the_primary(tmp_path: Path) -> None:
    primary = camera_photo()
    marker = Image.new("RGB", (640, 480), (255, 0, 0))  # a preview that is easy to recognise
    path = tmp_path / "camera.jpg"
    save_with_preview(path, primary, marker)
    decoded = decode_photo(str(path), PREP)
    assert (decoded.width, decoded.height) == (1600, 1200)  # the photo's own size is reported
    assert decoded.pixels[..., 0].mean() > 240 and decoded.pixels[..., 1].mean() < 15


def test_a_real_preview_gives_the_same_model_input(tmp_path: Path) -> None:
    primary = camera_photo()
    path = tmp_path / "camera.jpg"
    save_with_preview(path, primary, primary.resize((1024, 768), Image.Resampling.LANCZOS))
    assert mean_abs_diff(decode_photo(str(path), PREP).pixels, reference_input(primary)) < 2.0


@pytest.mark.parametrize("preview_size", [(200, 150), (640, 640), (1600, 1200)])
def test_small_odd_or_full_size_previews_are_ignored(tmp_path: Path, preview_size: tuple[int, int]) -> None:
    primary = camera_photo()
    path = tmp_path / "camera.jpg"
    save_with_preview(path, primary, Image.new("RGB", preview_size, (255, 0, 0)))
    assert mean_abs_diff(decode_photo(str(path), PREP).pixels, reference_input(primary)) < 2.0


def test_a_heic_thumbnail_is_used_when_big_enough(tmp_path: Path) -> None:
    pytest.importorskip("pillow_heif")
    from photosort.core.decode import heif_available

    assert heif_available()
    primary = camera_photo((800, 600))
    path = tmp_path / "phone.heic"
    primary.save(path, "HEIF", quality=90, thumbnails=[320])
    with Image.open(path) as image:
        image.draft("RGB", needed_size(PREP, *image.size))
        assert image.size == (320, 240)  # pillow-heif picked the embedded thumbnail
    decoded = decode_photo(str(path), PREP)
    assert (decoded.width, decoded.height) == (800, 600)
    assert mean_abs_diff(decoded.pixels, reference_input(primary)) < 4.0


def test_the_pixel_limit_is_checked_before_any_pixel_is_decoded(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (3000, 2000)).save(path)

    def no_decoding(self) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(DecodeError, match="too large: 6 megapixels"):
        decode_photo(str(path), PREP, max_pixels=5_000_000)


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "empty file (0 bytes)"),
    (b"\xff\xd8\xff\xe0" + b"\0" * 40, "not a readable image"),
    (b"PK\x03\x04 a zip, not a photo", "not a readable image"),
])
def test_a_photo_that_cannot_be_read_says_why_in_words(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "IMG_0001.JPG"
    path.write_bytes(content)
    with pytest.raises(DecodeError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        decode_photo(str(path), PREP)


# ---- the GPU decode path's geometry, checked on CPU tensors ------------------------------------
@pytest.mark.parametrize("orientation", range(1, 9))
def test_gpu_orientation_matches_pillow(orientation: int) -> None:
    from photosort.core.decode import _TRANSPOSE

    image = camera_photo((64, 48), seed=orientation)
    expected = image.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else image
    tensor = torch.from_numpy(np.array(image)).permute(2, 0, 1)
    turned = gpudecode.orient(tensor, orientation).permute(1, 2, 0).numpy()
    assert np.array_equal(turned, np.asarray(expected))


def test_gpu_model_input_matches_the_processor_on_a_full_size_image() -> None:
    image = camera_photo((2000, 1500))
    tensor = torch.from_numpy(np.array(image)).permute(2, 0, 1)
    ours = gpudecode.model_input_tensor(tensor, PREP).permute(1, 2, 0).numpy()
    assert ours.shape == (224, 224, 3)
    assert mean_abs_diff(ours, reference_input(image)) < 1.5
    thumb = gpudecode.thumbnail_tensor(tensor)
    assert max(thumb.shape[1:]) == THUMB_SIZE


def test_read_encoded_keeps_jpeg_bytes_and_decodes_other_formats(tmp_path: Path) -> None:
    jpeg, png = tmp_path / "a.jpg", tmp_path / "b.png"
    exif = Image.Exif()
    exif[0x0112] = 6
    camera_photo((800, 600)).save(jpeg, quality=90, exif=exif)
    camera_photo((800, 600)).save(png)
    encoded = gpudecode.read_encoded(str(jpeg), PREP)
    assert isinstance(encoded, gpudecode.EncodedPhoto)
    assert encoded.data == jpeg.read_bytes() and encoded.orientation == 6
    assert (encoded.width, encoded.height) == (600, 800)
    assert isinstance(gpudecode.read_encoded(str(png), PREP), DecodedPhoto)
    with pytest.raises(DecodeError, match="too large"):
        gpudecode.read_encoded(str(jpeg), PREP, max_pixels=1000)


def test_gpu_decode_is_unused_without_cuda() -> None:
    assert not gpudecode.available(torch.device("cpu"))


def fake_torchvision(monkeypatch) -> list[int]:
    """A stand-in for torchvision.io.decode_jpeg (full decode with Pillow) so the GPU path runs on a CPU."""
    import sys
    import types

    calls: list[int] = []

    def decode_jpeg(data, mode=None, device="cpu"):
        def one(t: torch.Tensor) -> torch.Tensor:
            image = Image.open(io.BytesIO(t.numpy().tobytes()))
            try:
                image.load()
            except OSError as exc:
                raise RuntimeError(f"nvjpeg: {exc}") from None  # what torchvision raises
            return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).to(device)

        if isinstance(data, list):
            calls.append(len(data))
            return [one(t) for t in data]
        return one(data)

    io_module = types.SimpleNamespace(decode_jpeg=decode_jpeg, ImageReadMode=types.SimpleNamespace(RGB="RGB"))
    monkeypatch.setitem(sys.modules, "torchvision", types.SimpleNamespace(io=io_module))
    monkeypatch.setitem(sys.modules, "torchvision.io", io_module)
    return calls


def test_gpu_decode_path_matches_the_cpu_decode_and_survives_a_broken_file(tmp_path: Path, monkeypatch) -> None:
    calls = fake_torchvision(monkeypatch)
    paths = []
    for i, orientation in enumerate((1, 6, 3)):
        exif = Image.Exif()
        exif[0x0112] = orientation
        paths.append(tmp_path / f"{i}.jpg")
        camera_photo(seed=i).save(paths[-1], quality=92, exif=exif)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(paths[0].read_bytes()[:4000])
    encoded = [gpudecode.read_encoded(str(p), PREP) for p in [*paths, broken]]
    assert all(isinstance(e, gpudecode.EncodedPhoto) for e in encoded)  # a broken body passes the header check
    results = gpudecode.decode_on_gpu(encoded, PREP, torch.device("cpu"))
    assert calls == [4]  # one batched call
    for path, result in zip(paths, results, strict=False):
        reference = decode_photo(str(path), PREP)
        assert isinstance(result, DecodedPhoto)
        assert (result.width, result.height, result.fingerprint) == (reference.width, reference.height,
                                                                       reference.fingerprint)
        assert mean_abs_diff(result.pixels, reference.pixels) < 2.0
        assert Image.open(io.BytesIO(result.thumb)).size == Image.open(io.BytesIO(reference.thumb)).size
    assert isinstance(results[3], str) and "truncated" in results[3]


def test_huge_bitmaps_are_decoded_one_at_a_time_and_shrunk_at_once(tmp_path: Path, monkeypatch) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from photosort.core import decode

    monkeypatch.setattr(decode, "BIG_DECODE_PIXELS", 1_000_000)  # so a 2 MP PNG counts as huge
    inside, most = [0], [0]
    guard = threading.Lock()

    class CountingLock:
        def __enter__(self) -> None:
            guard.acquire()
            inside[0] += 1
            most[0] = max(most[0], inside[0])

        def __exit__(self, *exc: object) -> None:
            inside[0] -= 1
            guard.release()

    monkeypatch.setattr(decode, "_big_decodes", CountingLock())
    photo = camera_photo()
    paths = [tmp_path / f"{i}.png" for i in range(4)]
    for path in paths:
        photo.save(path, compress_level=1)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda p: decode_photo(str(p), PREP), paths))
    assert most[0] == 1
    for result in results:
        assert (result.width, result.height) == (1600, 1200)
        assert mean_abs_diff(result.pixels, reference_input(photo)) < 2.0
