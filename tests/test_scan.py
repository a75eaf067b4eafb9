"""Scanning finds exactly the photos a person would expect, and always ends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from photosort.core.errors import FolderError
from photosort.core.scan import scan_folder


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def names(root: Path) -> list[str]:
    return sorted(os.path.relpath(f.path, os.path.realpath(root)) for f in scan_folder(root))


def test_finds_photos_recursively_with_any_case_extension(tmp_path: Path) -> None:
    for name in ["a.jpg", "b.JPG", "c.JpEg", "d.png", "e.webp", "f.TIFF", "g.bmp", "h.gif", "i.HEIC", "j.heif", "sub/deep/k.Png"]:
        touch(tmp_path / name)
    touch(tmp_path / "notes.txt")
    touch(tmp_path / "movie.mov")
    assert len(names(tmp_path)) == 11
    assert "sub/deep/k.Png" in names(tmp_path)


def test_skips_hidden_files_and_os_litter(tmp_path: Path) -> None:
    touch(tmp_path / "keep.jpg")
    for litter in [".hidden.jpg", "._keep.jpg", ".DS_Store", "@eaDir/x.jpg", ".thumbnails/t.jpg", ".git/y.jpg",
                   "Thumbs.db"]:
        touch(tmp_path / litter)
    assert names(tmp_path) == ["keep.jpg"]


def test_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    touch(tmp_path / "a" / "one.jpg")
    os.symlink(tmp_path / "a", tmp_path / "a" / "loop")
    os.symlink(tmp_path, tmp_path / "a" / "up")
    assert names(tmp_path) == ["a/one.jpg"]


def test_symlinked_photo_is_listed_once_by_real_path(tmp_path: Path) -> None:
    touch(tmp_path / "real.jpg")
    os.symlink(tmp_path / "real.jpg", tmp_path / "alias.jpg")
    assert names(tmp_path) == ["real.jpg"]


def test_symlinks_pointing_outside_the_folder_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    touch(outside / "secret.jpg")
    root = tmp_path / "root"
    touch(root / "mine.jpg")
    os.symlink(outside, root / "elsewhere")
    os.symlink(outside / "secret.jpg", root / "secret-link.jpg")
    assert names(root) == ["mine.jpg"]


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FolderError, match="not found"):
        scan_folder(tmp_path / "nope")
    touch(tmp_path / "file.jpg")
    with pytest.raises(FolderError, match="Not a folder"):
        scan_folder(tmp_path / "file.jpg")
