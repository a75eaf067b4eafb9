"""What the command line says in the cases an audit found it said too little or the wrong thing: one typed
category, a category typed twice, what link exports made, counts that add up, a --like photo that could not
be read, and "1 photo" never "1 photos"."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from photosort.cli import main
from photosort.core.export.results import ExportResult, Placed

ONE_CATEGORY_WARNING = ("photosort: warning: With one category ('beach'), every photo goes to it at 100 %: add at least "
                        "one more (e.g. 'other') so photos can be told apart.\n")


def sorting_commands(root: Path, tmp_path: Path) -> dict[str, tuple[str, ...]]:
    """Every command that sorts by --categories, as a user would type it (nothing is written)."""
    return {"sort": ("sort", str(root)),
            "export": ("export", str(root), str(tmp_path / "sorted"), "--dry-run"),
            "tag": ("tag", str(root), "--dry-run")}


@pytest.mark.parametrize("command", ["sort", "export", "tag"])
def test_one_category_is_warned_about_in_one_line_and_still_runs(cli, make_photos, tmp_path: Path, command: str) -> None:
    root = make_photos(1)
    args = sorting_commands(root, tmp_path)[command]

    code, _, err = cli(*args, "--categories", "beach")

    assert code == 0 and err == ONE_CATEGORY_WARNING


def test_one_category_files_every_photo_at_100_percent_which_is_why_it_is_warned(cli, make_photos) -> None:
    code, doc, err = cli("sort", str(make_photos(1)), "--categories", "beach")
    assert code == 0 and err == ONE_CATEGORY_WARNING
    assert {(p["category"], p["score"]) for p in doc["photos"]} == {("beach", 1.0)}


def test_two_categories_say_nothing_on_stderr(cli, make_photos) -> None:
    code, text, err = cli("sort", str(make_photos(1)), "--categories", "beach, other", as_json=False)
    assert code == 0 and err == "" and "beach" in text


@pytest.mark.parametrize(("typed", "said"), [
    ("a, a", "The category 'a' is typed twice: give each category once."),
    ("beach, forest, Beach", "The category 'beach' is typed twice ('beach', 'Beach'): give each category once."),
    ("pets = a cat\nnight\npets = a dog", "The category 'pets' is typed twice ('pets = a cat', 'pets = a dog'): "
                                          "give each category once."),
])
def test_a_category_typed_twice_is_a_usage_error_naming_it(cli, make_photos, tmp_path: Path, typed: str, said: str) -> None:
    root = make_photos(1)
    for args in sorting_commands(root, tmp_path).values():
        code, doc, err = cli(*args, "--categories", typed)
        assert (code, doc, err) == (2, "", f"photosort: error: {said}\n")


def test_no_categories_is_a_usage_error(cli, make_photos) -> None:
    code, _, err = cli("sort", str(make_photos(1)), "--categories", " , ")
    assert (code, err) == (2, 'photosort: error: No categories given: type at least two, e.g. "beach, city".\n')


# ---- index: every count adds up to the total ---------------------------------------------------------


def unreadable_folder(root: Path) -> Path:
    (root / "broken").mkdir(parents=True)
    (root / "broken" / "empty.jpg").write_bytes(b"")
    (root / "broken" / "garbage.jpg").write_bytes(b"not a jpeg")
    (root / "broken" / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 20)
    return root / "broken"


def test_index_of_only_unreadable_photos_counts_them_every_time(cli, tmp_path: Path) -> None:
    folder = unreadable_folder(tmp_path / "photos")

    code, first, _ = cli("index", str(folder), as_json=False)
    assert code == 0 and first.splitlines()[0].endswith(": 3 photos — 0 indexed, 0 unchanged, 3 could not be read")

    code, again, _ = cli("index", str(folder), as_json=False)
    assert code == 0 and again.splitlines()[0].endswith(
        ": 3 photos — 0 indexed, 0 unchanged, 3 could not be read (3 known from before)")
    code, doc, _ = cli("index", str(folder))
    assert (doc["total"], doc["known_failures"], doc["failed"]) == (3, 3, [])


def test_index_counts_add_up_with_new_known_and_unchanged_photos(cli, make_photos, tmp_path: Path) -> None:
    root = make_photos(1)
    unreadable_folder(root)
    cli("index", str(root))
    (root / "late.jpg").write_bytes(b"")  # a new unreadable photo beside the 3 known ones

    code, text, _ = cli("index", str(root), as_json=False)

    assert code == 0 and text.splitlines()[0].endswith(
        ": 9 photos — 0 indexed, 5 unchanged, 4 could not be read (3 known from before)")


def test_one_photo_is_one_photo(cli, make_photos) -> None:
    root = make_photos(1, kinds=("beach",))
    code, text, _ = cli("index", str(root), as_json=False)
    assert code == 0 and ": 1 photo — 1 indexed, 0 unchanged, 0 could not be read" in text.splitlines()[0]
    code, text, _ = cli("export", str(root), str(root.parent / "sorted"), "--categories", "beach, night", "--threshold", "0",
                        as_json=False)
    assert code == 0 and text.startswith("Copied 1 photo into ")
    assert "1 photos" not in text


# ---- export --mode link: what was made, said ----------------------------------------------------------


def test_link_help_says_hard_links_on_the_same_disk_and_symbolic_ones_across(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "hard links where the destination is on the same disk as the photo" in help_text
    assert "symbolic links where it is on another disk" in help_text


def test_a_link_export_on_the_same_disk_says_it_made_hard_links(cli, make_photos, tmp_path: Path) -> None:
    root = make_photos(1, kinds=("beach", "night"))
    dest = tmp_path / "linked"

    code, text, _ = cli("export", str(root), str(dest), "--categories", "beach, night", "--threshold", "0",
                        "--mode", "link", as_json=False)

    assert code == 0 and text.splitlines()[0] == f"Linked 2 photos (2 hard links) into {dest}."
    assert all(p.stat().st_nlink == 2 for p in dest.rglob("*.jpg"))


def test_a_link_export_says_how_many_photos_on_another_disk_got_symbolic_links(
    cli, make_photos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_photos(1, kinds=("beach", "night", "forest"))
    dest = tmp_path / "linked"
    monkeypatch.setattr(os, "link", across_disks(os.link, lambda source: "night" in Path(source).parts))

    code, doc, _ = cli("export", str(root), str(dest), "--categories", "beach, night", "--threshold", "0", "--mode", "link")
    assert code == 0 and doc["methods"] == {"hardlink": 2, "symlink": 1}
    code, text, _ = cli("export", str(root), str(tmp_path / "again"), "--categories", "beach, night", "--threshold", "0",
                        "--mode", "link", as_json=False)
    assert text.splitlines()[0] == (f"Linked 3 photos (2 hard links, 1 symbolic link to another disk) into "
                                    f"{tmp_path / 'again'}.")


def across_disks(link: Callable[..., None], elsewhere: Callable[[str], bool]) -> Callable[..., None]:
    """``os.link`` as it behaves when the photos ``elsewhere`` says are on another disk."""

    def linking(source: str, target: str, **kwargs: object) -> None:
        if elsewhere(os.fspath(source)):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        link(source, target, **kwargs)

    return linking


def test_the_export_headline_both_faces_show_counts_each_kind_of_link() -> None:
    def placed(*methods: str) -> list[Placed]:
        return [Placed(Path(f"{i}.jpg"), Path(f"out/{i}.jpg"), m) for i, m in enumerate(methods)]

    mixed = ExportResult(done=3, mode="link", placed=placed("hardlink", "symlink", "symlink"), sidecars=1)
    assert mixed.summary() == "Linked 3 photos (1 hard link, 2 symbolic links to another disk) and 1 sidecar"
    assert ExportResult(done=0, mode="link").summary() == "Linked 0 photos"
    assert ExportResult(done=1, mode="copy", placed=placed("copy")).summary() == "Copied 1 photo"
    assert ExportResult(done=2, mode="move", placed=placed("move", "copy+delete")).summary() == "Moved 2 photos"


# ---- search --like a photo that could not be read -------------------------------------------------------


def test_search_like_a_photo_that_could_not_be_read_says_why(cli, make_photos) -> None:
    root = make_photos(1)
    unreadable_folder(root)

    code, _, err = cli("search", str(root), "--like", "broken/empty.jpg")

    assert code == 1 and err.count("\n") == 1
    assert err.startswith("photosort: error: broken/empty.jpg could not be read when indexed: empty file (0 bytes)")
