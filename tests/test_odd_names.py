"""Photos whose names are not UTF-8, or longer than the system allows: indexed or reported, never a crash.

A path on Linux is bytes; copies from old Samba shares and FAT sticks carry
Latin-1 names (``caf\\xe9.jpg``). photosort keeps them exact from the scan to
SQLite to the export, and shows them readably (:func:`display_path`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from photo_factory import draw_photo

from photosort.cli import main
from photosort.core.library import Sorting
from photosort.core.paths import NAME_TOO_LONG, display_path, printable
from photosort.core.zeroshot import Category

LATIN1 = b"caf\xe9.jpg"  # "café.jpg" as an old Windows or Samba copy writes it: not UTF-8


def odd_photo(folder: Path, name: bytes = LATIN1, seed: int = 7) -> str:
    """A real JPEG under a name that is not UTF-8; returns its path as photosort holds it (os.fsdecode)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = os.fsencode(folder) + b"/" + name
    draw_photo("beach", seed=seed).save(path, "JPEG", quality=90)
    return os.fsdecode(path)


# ---- showing ---------------------------------------------------------------------------------------
def test_display_path_shows_undecodable_bytes_and_controls_as_escapes() -> None:
    assert display_path(os.fsdecode(b"/p/caf\xe9.jpg")) == "/p/caf\\xe9.jpg"
    assert display_path(b"/p/caf\xe9.jpg") == "/p/caf\\xe9.jpg"
    assert display_path(Path(os.fsdecode(b"/p/\xff\xfe"))) == "/p/\\xff\\xfe"
    assert display_path("/p/two\nlines.jpg") == "/p/two\\x0alines.jpg"
    assert display_path("/p/café 🏖️ 東京.jpg") == "/p/café 🏖️ 東京.jpg"  # real text is shown as it is
    reason = "cannot read " + os.fsdecode(LATIN1)
    assert printable(reason) == "cannot read caf\\xe9.jpg" and printable(reason).encode("utf-8")  # valid UTF-8


# ---- the engine ------------------------------------------------------------------------------------
def test_a_photo_whose_name_is_not_utf8_is_indexed_sorted_searched_and_labelled(engine, make_photos) -> None:
    root = make_photos(2, kinds=("beach", "night"))
    odd = odd_photo(root / "old-samba")
    report = engine.index(root)
    assert (report.indexed, report.failed) == (5, [])
    assert engine.index(root).unchanged == 5  # found again by its exact name: not indexed twice
    library = engine.open_library([root])
    assert odd in library.photos.paths
    result = library.sort(Sorting.by_categories([Category("beach"), Category("night")]), threshold=0.0)
    assert result.category_of(result.photos.paths.index(odd)) in ("beach", "night")
    assert odd in [p for p, _ in library.search_text("a beach", limit=10)]
    assert library.search_like(odd, limit=1)
    engine.classifiers.create("kinds", [Category("beach"), Category("night")])
    photo_id = int(library.ids[library.photos.paths.index(odd)])
    library.set_labels("kinds", {photo_id: "night"})
    records = engine.user.label_records(engine.classifiers.stored("kinds").id)
    assert [(r.label, r.path) for r in records] == [("night", odd)]
    assert library.sort(Sorting.by_classifier("kinds"), threshold=0.0).decision.labelled.sum() == 1


def test_such_a_photo_is_exported_under_its_own_name_and_moved_back_by_undo(engine, make_photos, tmp_path: Path) -> None:
    root = make_photos(1, kinds=("beach",))
    odd = odd_photo(root)
    content = Path(odd).read_bytes()
    engine.index(root)
    library = engine.open_library([root])
    result = library.sort(Sorting.by_categories([Category("beach")]), threshold=0.0)
    copied = engine.run_export(library.plan_export(result, tmp_path / "copies"))
    assert copied.done == 2 and not copied.failed
    assert (os.fsencode(tmp_path / "copies" / "beach") + b"/" + LATIN1) in _files(tmp_path / "copies")
    assert Path(os.fsdecode(os.fsencode(tmp_path / "copies" / "beach") + b"/" + LATIN1)).read_bytes() == content
    moved = engine.run_export(library.plan_export(result, tmp_path / "moved", mode="move"))
    assert moved.done == 2 and not os.path.lexists(odd)
    destination = os.fsdecode(os.fsencode(tmp_path / "moved" / "beach") + b"/" + LATIN1)
    assert Path(destination).read_bytes() == content
    assert engine.cache.photo_id_for_path(destination) is not None  # the cache followed it, with its vector
    undone = engine.undo_move(moved.journal)
    assert undone.restored == 2 and Path(odd).read_bytes() == content


def _files(folder: Path) -> set[bytes]:
    return {os.fsencode(os.path.join(d, f)) for d, _, names in os.walk(folder) for f in names
            if not f.startswith(".")}


# ---- the command line ------------------------------------------------------------------------------
@pytest.fixture
def cli(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """photosort's main() with a private data folder; stdout is strict UTF-8 (what a terminal in a UTF-8 locale is)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--model", str(tiny_model), "--data-dir", str(tmp_path / "data")])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_the_cli_indexes_sorts_and_searches_such_a_photo_and_prints_it_readably(cli, make_photos) -> None:
    root = make_photos(1, kinds=("beach",))
    odd = odd_photo(root)
    code, out, err = cli("index", str(root))
    assert code == 0 and "2 indexed" in out and "Traceback" not in err, err
    code, out, _ = cli("sort", str(root), "--categories", "beach, night", "--threshold", "0", "--list")
    assert code == 0 and display_path(odd) in out and "caf\\xe9.jpg" in out
    code, out, _ = cli("search", str(root), "a beach")
    assert code == 0 and display_path(odd) in out


def test_the_cli_json_keeps_such_a_path_exact(cli, make_photos) -> None:
    root = make_photos(1, kinds=("beach",))
    odd = odd_photo(root)
    code, out, _ = cli("sort", str(root), "--categories", "beach", "--threshold", "0", "--json")
    assert code == 0
    out.encode("utf-8")  # valid UTF-8 text: a lone surrogate is written as an escape
    paths = [photo["path"] for photo in json.loads(out)["photos"]]
    assert odd in paths and os.fsencode(odd) in [os.fsencode(p) for p in paths]
    assert "\\udce9" in out
    code, out, _ = cli("search", str(root), "--like", odd, "--json")
    assert code == 0 and json.loads(out)["results"]


def test_an_error_naming_such_a_folder_is_one_readable_line(cli, tmp_path: Path) -> None:
    missing = os.fsdecode(os.fsencode(tmp_path) + b"/gone-caf\xe9")
    code, _, err = cli("index", missing)
    assert code == 1 and err.count("\n") == 1 and "gone-caf\\xe9" in err and "Traceback" not in err


def test_categories_or_a_query_that_are_not_utf8_are_a_usage_error_not_a_crash(cli, make_photos) -> None:
    root = make_photos(1, kinds=("beach",))
    typed = os.fsdecode(b"caf\xe9")  # what argv holds when a Latin-1 terminal typed "café"
    for args in (("sort", str(root), "--categories", f"{typed}, beach"), ("search", str(root), typed)):
        code, _, err = cli(*args)
        assert code == 2 and err.count("\n") == 1 and "caf\\xe9" in err and "not UTF-8" in err, err


# ---- names longer than the system allows -------------------------------------------------------------
PATH_MAX = os.pathconf("/", "PC_PATH_MAX") if hasattr(os, "pathconf") else 260
needs_dir_fd = pytest.mark.skipif(not (os.mkdir in os.supports_dir_fd and os.open in os.supports_dir_fd),
                                  reason="builds the deep folders through folder handles (POSIX)")


@pytest.fixture
def deep(tmp_path: Path) -> Iterator[Path]:
    """tmp/deep/ and, below it, folders nested until paths get longer than the system takes; removed after."""
    top = tmp_path / "deep"
    top.mkdir()
    yield top
    shutil.rmtree(top)  # removes by folder handles: it copes with paths too long to name


def write_deep(top: Path, depth_chars: int, name: str, seed: int = 0) -> str:
    """A photo ``name`` in nested folders below ``top`` whose path is at least ``depth_chars`` long."""
    fd = os.open(top, os.O_RDONLY)
    path = str(top)
    try:
        while len(path) < depth_chars:
            part = "d" * min(200, max(1, depth_chars - len(path) - 1))
            _mkdir_at(part, fd)
            fd = _enter(part, fd)
            path = f"{path}/{part}"
        jpeg = _jpeg(seed)
        out = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        try:
            os.write(out, jpeg)
        finally:
            os.close(out)
    finally:
        os.close(fd)
    return f"{path}/{name}"


def _mkdir_at(name: str, fd: int) -> None:
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, dir_fd=fd)


def _enter(name: str, fd: int) -> int:
    inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    return inner


def _jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    draw_photo("night", seed=seed).save(out, "JPEG", quality=80)
    return out.getvalue()


@needs_dir_fd
def test_photos_whose_paths_are_too_long_are_reported_not_lost(engine, make_photos, deep: Path) -> None:
    root = make_photos(1, kinds=("beach",), folder=deep)  # one ordinary photo beside them
    name = "n" * 200 + ".jpg"
    file_too_long = write_deep(deep, PATH_MAX - 150, name)  # its folder can be listed, the file not opened
    assert len(file_too_long) > PATH_MAX
    in_folder_too_long = write_deep(deep, PATH_MAX + 50, "IMG_0001.jpg", seed=1)  # not even its folder opens
    report = engine.index(root)
    assert report.indexed == 1
    assert sorted(report.failed) == sorted([(file_too_long, NAME_TOO_LONG), (in_folder_too_long, NAME_TOO_LONG)])
    again = engine.index(root)
    assert (again.indexed, again.failed, again.known_failures) == (0, [], 2)  # reported once, not retried
    assert {path for path, _ in engine.open_library([root]).failures()} == {file_too_long, in_folder_too_long}


@needs_dir_fd
def test_the_cli_reports_a_too_long_path_in_one_line_each(cli, deep: Path) -> None:
    too_long = write_deep(deep, PATH_MAX - 150, "n" * 200 + ".jpg")
    code, out, err = cli("index", str(deep))
    assert code == 0 and "1 could not be read" in out and f"{too_long}: {NAME_TOO_LONG}" in out, err


if sys.platform == "win32":  # pragma: no cover - names there are UTF-16, never undecodable bytes
    pytestmark = pytest.mark.skip(reason="POSIX byte names")
