"""Fast decode paths: a HEIC's embedded thumbnail serves when big enough, never when too small, and each fast
path can be checked against a full decode (photosort bench's fidelity figures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from photo_factory import draw_photo
from PIL import Image

from photosort.bench.fidelity import compare_decodes, fast_path_fidelity
from photosort.bench.formats import family, group_by_format
from photosort.core.decode import Preprocess, decode_photo, heif_available, model_input

PREP = Preprocess(size=224, crop=224)


def scene(size: tuple[int, int] = (800, 600), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = draw_photo("forest", (160, 120), seed).resize(size, Image.Resampling.BICUBIC)
    noisy = np.asarray(base, np.int16) + rng.normal(0, 3, (size[1], size[0], 3)).astype(np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def pixel_embed(batch: np.ndarray) -> np.ndarray:
    """A deterministic stand-in for the encoder: the centred pixels as one unit vector per photo."""
    flat = batch.reshape(len(batch), -1).astype(np.float32)
    flat -= flat.mean(axis=1, keepdims=True)
    return flat / np.linalg.norm(flat, axis=1, keepdims=True)


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.fixture(scope="module")
def heics(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not heif_available():
        pytest.skip("pillow-heif is not installed")
    folder = tmp_path_factory.mktemp("heic")
    photo = scene()
    paths = {}
    for name, thumbnails in (("phone", [320]), ("tiny-thumbnail", [128]), ("no-thumbnail", [])):
        paths[name] = folder / f"{name}.HEIC"
        photo.save(paths[name], "HEIF", quality=90, thumbnails=thumbnails, enc_params={"preset": "ultrafast"})
    return paths


def test_a_heic_is_decoded_from_its_thumbnail_when_that_is_big_enough(heics: dict[str, Path]) -> None:
    fast = decode_photo(str(heics["phone"]), PREP)
    full = decode_photo(str(heics["phone"]), PREP, fast=False)
    assert fast.source == "heif-thumbnail" and full.source == "full"
    assert (fast.width, fast.height) == (full.width, full.height) == (800, 600)
    assert mean_abs_diff(fast.pixels, full.pixels) < 4.0
    assert mean_abs_diff(fast.pixels, model_input(scene(), PREP)) < 4.0


@pytest.mark.parametrize("name", ["tiny-thumbnail", "no-thumbnail"])
def test_a_heic_thumbnail_too_small_for_the_encoder_is_not_used(heics: dict[str, Path], name: str) -> None:
    decoded = decode_photo(str(heics[name]), PREP)
    assert decoded.source == "full"
    assert mean_abs_diff(decoded.pixels, model_input(scene(), PREP)) < 4.0


def test_jpeg_draft_is_a_fast_path_and_a_small_png_is_decoded_in_full(tmp_path: Path) -> None:
    scene((1600, 1200)).save(tmp_path / "big.jpg", quality=92)
    scene((300, 240)).save(tmp_path / "small.png")
    assert decode_photo(str(tmp_path / "big.jpg"), PREP).source == "jpeg-draft"
    assert decode_photo(str(tmp_path / "big.jpg"), PREP, fast=False).source == "full"
    assert decode_photo(str(tmp_path / "small.png"), PREP).source == "full"


def test_fidelity_compares_each_fast_path_with_a_full_decode(tmp_path: Path, heics: dict[str, Path]) -> None:
    for i in range(2):
        scene((1600, 1200), seed=i).save(tmp_path / f"IMG_{i}.jpg", quality=92)
    scene((300, 240)).save(tmp_path / "small.png")
    paths = [str(tmp_path / "IMG_0.jpg"), str(tmp_path / "IMG_1.jpg"), str(tmp_path / "small.png"),
             str(heics["phone"]), str(heics["no-thumbnail"])]
    found = fast_path_fidelity(paths, PREP, pixel_embed)
    assert sorted(found) == ["heif-thumbnail", "jpeg-draft"]  # photos decoded in full have no fast path to check
    assert (found["jpeg-draft"].photos, found["heif-thumbnail"].photos) == (2, 1)
    for fidelity in found.values():
        assert 0.99 < fidelity.cosine_worst <= fidelity.cosine_mean <= 1.0 + 1e-6
        assert 0 < fidelity.pixel_diff < 4.0


def test_fidelity_of_a_decode_against_itself_is_perfect_and_a_wrong_photo_shows(tmp_path: Path) -> None:
    scene(seed=0).save(tmp_path / "a.jpg", quality=92)
    scene(seed=0).rotate(90, expand=True).save(tmp_path / "b.jpg", quality=92)
    a = decode_photo(str(tmp_path / "a.jpg"), PREP)
    b = decode_photo(str(tmp_path / "b.jpg"), PREP)
    same = compare_decodes([a], [a], pixel_embed)
    assert same.cosine_mean == pytest.approx(1.0, abs=1e-5) and same.pixel_diff == 0.0
    wrong = compare_decodes([a], [b], pixel_embed)
    assert wrong.cosine_mean < 0.9 and wrong.pixel_diff > 10


def test_bench_groups_photos_by_format_as_people_name_them() -> None:
    assert [family(p) for p in ("a.JPG", "b.jpeg", "c.HEIC", "d.heif", "e.CR2", "f.dng", "g.png", "h.webp")] == [
        "JPEG", "JPEG", "HEIC", "HEIC", "RAW", "RAW", "PNG", "WEBP"]
    assert list(group_by_format(["x.png", "y.NEF", "z.jpg", "w.HEIC"])) == ["JPEG", "HEIC", "PNG", "RAW"]


@pytest.mark.slow
def test_bench_reports_a_rate_per_format_and_the_fidelity_of_each_fast_path(tiny_model: Path, capsys) -> None:
    import json

    from photosort.bench.format_photos import available_formats
    from photosort.cli import main

    assert main(["bench", "--quick", "--json", "--precision", "fp32", "--model", str(tiny_model),
                 "--device", "cpu"]) == 0
    formats = json.loads(capsys.readouterr().out)["formats"]
    assert [f["format"] for f in formats] == list(available_formats())
    for row in formats:
        assert row["decode_rate"] > 0 and row["index_rate"] > 0 and row["decode_cpu_ms"] > 0, row["format"]
        assert sum(row["sources"].values()) == row["distinct"]
        for fidelity in row["fidelity"]:
            assert fidelity["source"] in row["sources"] and fidelity["source"] != "full"
            assert 0.99 < fidelity["cosine_worst"] <= fidelity["cosine_mean"] <= 1.0 + 1e-6
    by_format = {row["format"]: row for row in formats}
    assert by_format["JPEG"]["vs_jpeg"] == pytest.approx(1.0)
    assert by_format["PNG"]["sources"] == {"full": by_format["PNG"]["distinct"]}
    if "RAW" in by_format:
        assert set(by_format["RAW"]["sources"]) == {"raw-preview"}
