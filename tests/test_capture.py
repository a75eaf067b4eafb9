"""Capture dates and cameras: read from EXIF as cameras write it, kept in the cache, and read once for old caches."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from photo_factory import draw_photo
from PIL import Image

from photosort.core.cache import Cache
from photosort.core.capture import (
    DATE_TIME,
    DATE_TIME_ORIGINAL,
    EXIF_IFD,
    MAKE,
    MODEL,
    SUBSEC_TIME_ORIGINAL,
    camera_name,
    capture_facts,
    file_time,
    parse_exif_time,
    seconds_of,
)
from photosort.core.decode import Preprocess, decode_photo


def save_with_exif(path: Path, *, original: str | None = None, subsec: str | None = None, written: str | None = None,
                   make: str | None = None, model: str | None = None, fmt: str = "JPEG") -> Path:
    exif = Image.Exif()
    if make:
        exif[MAKE] = make
    if model:
        exif[MODEL] = model
    if written:
        exif[DATE_TIME] = written
    details = exif.get_ifd(EXIF_IFD)
    if original:
        details[DATE_TIME_ORIGINAL] = original
    if subsec:
        details[SUBSEC_TIME_ORIGINAL] = subsec
    draw_photo("beach", (64, 48)).save(path, fmt, exif=exif.tobytes())
    return path


def test_the_capture_time_is_the_cameras_wall_clock_time_with_its_fraction(tmp_path: Path) -> None:
    photo = save_with_exif(tmp_path / "a.jpg", original="2019:07:14 18:03:21", subsec="25", written="2020:01:01 00:00:00",
                           make="Canon", model="Canon EOS 80D")
    with Image.open(photo) as image:
        facts = capture_facts(image)
    assert facts.taken == "2019-07-14T18:03:21.250" and facts.camera == "Canon EOS 80D"


def test_a_photo_without_the_original_time_falls_back_to_the_time_it_was_written(tmp_path: Path) -> None:
    photo = save_with_exif(tmp_path / "a.jpg", written="2011:02:03 04:05:06", make="Apple", model="iPhone 4")
    with Image.open(photo) as image:
        assert capture_facts(image).taken == "2011-02-03T04:05:06"
        assert capture_facts(image).camera == "Apple iPhone 4"


def test_a_photo_with_no_exif_has_no_facts_and_is_still_a_photo(tmp_path: Path) -> None:
    draw_photo("night", (64, 48)).save(tmp_path / "plain.png")
    decoded = decode_photo(str(tmp_path / "plain.png"), Preprocess(32, 32))
    assert decoded.facts.taken is None and decoded.facts.camera is None


@pytest.mark.parametrize("value", ["0000:00:00 00:00:00", "    :  :     :  :  ", "2019:13:01 00:00:00", "garbage", "",
                                   None, b"\xff\xfe"])
def test_placeholder_and_impossible_times_mean_unknown(value: object) -> None:
    assert parse_exif_time(value) is None


def test_times_written_with_other_separators_are_understood() -> None:
    assert parse_exif_time("2019-07-14T18:03:21") == "2019-07-14T18:03:21"
    assert parse_exif_time(b"2019/07/14 18:03:21\x00") == "2019-07-14T18:03:21"


def test_camera_names_read_as_people_say_them() -> None:
    assert camera_name("NIKON CORPORATION", "NIKON D750") == "NIKON D750"
    assert camera_name("samsung", "SM-G991B") == "samsung SM-G991B"
    assert camera_name(b"Canon\x00\x00", None) == "Canon"
    assert camera_name(None, None) is None


def test_seconds_between_shots_are_measured_in_wall_clock_time() -> None:
    assert seconds_of("2019-07-14T18:03:21.500") - seconds_of("2019-07-14T18:03:20") == pytest.approx(1.5)


def test_decode_keeps_the_facts_of_png_whose_exif_follows_the_pixels(tmp_path: Path) -> None:
    photo = save_with_exif(tmp_path / "shot.png", original="2001:09:09 01:46:40", fmt="PNG")
    assert decode_photo(str(photo), Preprocess(32, 32)).facts.taken == "2001-09-09T01:46:40"


def test_file_time_is_local_wall_clock_time(tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"x")
    os.utime(photo, ns=(0, 1_000_000_000_000_000_000))
    assert file_time(photo.stat().st_mtime_ns).startswith("2001-09-0")


def test_indexing_stores_the_dates_and_reads_them_once_for_photos_cached_before(engine, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    save_with_exif(folder / "dated.jpg", original="2015:05:05 10:00:00", model="Pixel 3")
    draw_photo("forest", (64, 48)).save(folder / "undated.jpg")
    os.utime(folder / "undated.jpg", ns=(0, 1_000_000_000_000_000_000))
    engine.index(folder)
    library = engine.open_library([folder])
    dates = {Path(library.path_of(pid)).name: d for pid, d in library.dates().items()}
    assert dates["dated.jpg"].when == "2015-05-05T10:00:00" and dates["dated.jpg"].facts.camera == "Pixel 3"
    assert dates["undated.jpg"].facts.taken is None and dates["undated.jpg"].when.startswith("2001-09-0")

    # A cache from before dates were kept: the next run reads them (a header read) without re-embedding anything.
    with sqlite3.connect(engine.cache.path) as conn:
        conn.execute("UPDATE photos SET taken=NULL, camera=NULL, facts_read=0")
    report = engine.index(folder)
    assert report.indexed == 0 and report.unchanged == 2
    again = {Path(library.path_of(pid)).name: d for pid, d in engine.cache.dates_for_ids(library.ids.tolist()).items()}
    assert again["dated.jpg"].facts.taken == "2015-05-05T10:00:00" and again["dated.jpg"].facts.camera == "Pixel 3"
    assert not engine.cache.photos_without_facts(str(folder.resolve()))


def test_a_cache_of_schema_3_gains_empty_facts_that_indexing_fills(tmp_path: Path) -> None:
    from photosort.core.cache import _SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3, APPLICATION_ID

    path = tmp_path / "c.db"
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_V1 + _SCHEMA_V2 + _SCHEMA_V3)
    conn.execute("PRAGMA user_version=3")
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute("INSERT INTO photos(id, path, size, mtime_ns, fingerprint, added) VALUES (1, ?, 1, 2, 'f', 0)",
                 (b"/r/a.jpg",))
    conn.commit()
    conn.close()
    with Cache(path) as cache:
        assert cache.photos_without_facts("/r") == [(1, "/r/a.jpg")]
        assert cache.dates_for_ids([1])[1].facts.taken is None
