"""``photosort bench``: the smoke run CI does (tiny model, --quick), and its parts.

These check that the benchmark measures what it says, not how fast this
machine is: no test here asserts a speed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photosort.bench.naive import naive_pipeline
from photosort.bench.photos import generate_photos
from photosort.bench.scale import run_scale
from photosort.cli import main


@pytest.mark.slow
def test_quick_bench_measures_every_cpu_mode_and_its_fidelity(tiny_model: Path, tmp_path: Path, capsys) -> None:
    code = main(["bench", "--quick", "--json", "--model", str(tiny_model), "--device", "cpu",
                 "--cache-dir", str(tmp_path / "cache")])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    rows = document["results"]
    assert [(r["device"], r["mode"]) for r in rows] == [("cpu", "fp32"), ("cpu", "auto")]
    assert rows[0]["precision"] == "fp32"
    for row in rows:
        for rate in ("decode_rate", "model_rate", "index_rate", "naive_rate"):
            assert row[rate] > 0, rate
        assert row["speedup"] == pytest.approx(row["index_rate"] / row["naive_rate"])
        assert 0.99 <= row["cosine_mean"] <= 1.0001 and row["cosine_worst"] <= row["cosine_mean"]
    assert document["photos"]["source"] == "generated" and document["machine"]["cores"] >= 1
    assert not (tmp_path / "cache").exists()  # the benchmark never touches the user's cache


def test_bench_table_is_printed_for_people(tiny_model: Path, tmp_path: Path, capsys) -> None:
    assert main(["bench", "--quick", "--precision", "fp32", "--model", str(tiny_model), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "speed-up" in out and "cpu   fp32" in out


def test_bench_on_a_folder_reads_it_but_never_writes_there(tiny_model: Path, make_photos, capsys) -> None:
    root = make_photos(2)
    before = sorted((p, p.stat().st_mtime_ns) for p in root.rglob("*"))
    assert main(["bench", str(root), "--quick", "--json", "--precision", "fp32", "--count", "4",
                 "--model", str(tiny_model), "--device", "cpu"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["photos"]["count"] == 4
    assert document["results"][0]["cosine_worst"] > 0.99
    assert sorted((p, p.stat().st_mtime_ns) for p in root.rglob("*")) == before


def test_naive_reference_embeds_rotated_photos_upright(tiny_model: Path, tmp_path: Path) -> None:
    """The tutorial ignores EXIF orientation; the fidelity reference must not, or rotation would count as error."""
    upright = Image.new("RGB", (64, 48), (200, 30, 30))
    upright.paste((20, 20, 220), (0, 0, 64, 12))
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.save(tmp_path / "a.jpg", quality=95)
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "b.jpg", quality=95, exif=exif)
    rate, vectors = naive_pipeline(str(tiny_model), [str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")])
    a, b = vectors[str(tmp_path / "a.jpg")], vectors[str(tmp_path / "b.jpg")]
    assert rate > 0 and float(a @ b) > 0.999


def test_generated_photos_look_like_camera_jpegs(tmp_path: Path) -> None:
    paths = generate_photos(tmp_path, 6, megapixels=0.5)
    assert len(paths) == 6 and len({p.parent.name for p in paths}) == 5
    orientations = set()
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.width * image.height > 400_000
            orientations.add(image.getexif().get(0x0112))
            noise = np.asarray(image.convert("L"), np.float32)
            assert np.abs(np.diff(noise, axis=1)).mean() > 2  # sensor-like noise, not flat colour
    assert 1 in orientations and len(orientations) > 1


def test_at_scale_figures_are_measured_on_a_filled_cache(tiny_model: Path) -> None:
    figures = run_scale(str(tiny_model), 3000, labels=60)
    assert figures["photos"] == 3000
    for key in ("open_library_s", "rescore_categories_s", "text_search_s", "train_head_s"):
        assert figures[key] > 0, key
    assert 1000 < figures["cache_bytes_per_photo"] < 20_000
    assert figures["thumbnail_bytes_mean"] < figures["cache_bytes_per_photo"]
    assert figures["duplicates_group_s"] > 0 and figures["duplicates_signatures_s"] > 0
    assert figures["duplicates_copies_found"] == 1.0  # every planted near-copy is grouped with its original
