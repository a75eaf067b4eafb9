"""A labels CSV may come from anywhere: only paths inside the folder, bounded, UTF-8."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from photosort.core.errors import LabelsError
from photosort.core.labels_csv import parse_labels, read_labels_csv


def test_relative_and_absolute_paths_with_header(tmp_path: Path) -> None:
    root = os.path.realpath(tmp_path)
    rows = parse_labels(f"path,label\na/x.jpg,beach\n{root}/b.jpg, city \n", root)
    assert rows == [(f"{root}/a/x.jpg", "beach"), (f"{root}/b.jpg", "city")]


@pytest.mark.parametrize("text", ["../escape.jpg,beach", "/etc/passwd,beach", "a/../../x.jpg,beach"])
def test_paths_outside_the_folder_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(LabelsError, match="outside the folder"):
        parse_labels(text, os.path.realpath(tmp_path))


@pytest.mark.parametrize("raw_path", [".", "..", "./", "sub/..", "sub", "sub/", "./sub/.", "{root}", "{root}/sub"])
def test_paths_that_resolve_to_a_folder_are_refused(tmp_path: Path, raw_path: str) -> None:
    """Regression (found by hypothesis): `.,0` resolved to the labelled folder itself and was accepted."""
    root = os.path.realpath(tmp_path / "library")
    (Path(root) / "sub").mkdir(parents=True)
    (Path(root) / "photo.jpg").write_bytes(b"")
    with pytest.raises(LabelsError, match="line 2"):
        parse_labels(f"photo.jpg,beach\n{raw_path.format(root=root)},0\n", root)
    assert parse_labels("photo.jpg,beach\n", root) == [(f"{root}/photo.jpg", "beach")]


@pytest.mark.parametrize("text", ["", "path,label\n", "just-one-column\n", "x.jpg,\n", "x.jpg," + "l" * 500])
def test_malformed_rows_are_refused_with_the_line(tmp_path: Path, text: str) -> None:
    with pytest.raises(LabelsError):
        parse_labels(text, os.path.realpath(tmp_path))


def test_bad_encoding_and_binary_are_refused(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("photo.jpg,plage ensoleillée\n".encode("latin-1"))
    with pytest.raises(LabelsError, match="UTF-8"):
        read_labels_csv(latin, os.path.realpath(tmp_path))
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"a.jpg,x\x00\x00\n")
    with pytest.raises(LabelsError):
        read_labels_csv(binary, os.path.realpath(tmp_path))
    with pytest.raises(LabelsError, match="not found"):
        read_labels_csv(tmp_path / "missing.csv", os.path.realpath(tmp_path))


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "bom.csv"
    f.write_bytes("\ufeffpath,label\nx.jpg,plage ensoleillée\n".encode())
    assert read_labels_csv(f, os.path.realpath(tmp_path))[0][1] == "plage ensoleillée"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_any_text_is_either_parsed_safely_or_refused_cleanly(text: str) -> None:
    root = "/library/photos"
    try:
        rows = parse_labels(text, root)
    except LabelsError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    for path, label in rows:
        assert path.startswith(root + "/")
        assert label and label == label.strip() and len(label) <= 200


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40)), min_size=1, max_size=8))
def test_rows_with_relative_names_round_trip(rows: list[tuple[str, str]]) -> None:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out).writerows(rows)
    try:
        parsed = parse_labels(out.getvalue(), "/library/photos")
    except LabelsError:
        return
    assert all(path.startswith("/library/photos/") for path, _ in parsed)
