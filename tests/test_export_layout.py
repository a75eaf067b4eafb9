"""Export layouts: folder templates like ``{category}/{year}/{month}``, made safe level by level.

Most tests plan and run exports on plain files with the capture facts given
directly (no model), so they are fast; the command-line tests at the end go
through indexing with EXIF written by Pillow.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from photo_factory import draw_photo
from PIL import Image

from photosort.core.capture import DATE_TIME_ORIGINAL, EXIF_IFD, MAKE, MODEL
from photosort.core.errors import UsageError
from photosort.core.export import (
    DEFAULT_LAYOUT,
    ExportItem,
    ExportStopped,
    Layout,
    LayoutError,
    folder_tree,
    plan_export,
    resume_or_recover,
    run_export,
    undo_move,
)
from photosort.core.export.layout import PhotoFacts
from photosort.core.export.marker import MARKER_NAME, exported_copies
from photosort.core.progress import CancelToken
from photosort.core.scan import scan_folder

# --------------------------------------------------------------------------- helpers

JULY = "2019-07-14T18:03:21.250"


def facts(category: str | None = "Cats", when: str | None = JULY, camera: str | None = "Canon EOS 80D",
          folder: str = "/photos/Holiday") -> PhotoFacts:
    return PhotoFacts(category, when, camera, folder)


def folders(template: str, photo: PhotoFacts, unsure: str = "Unsure") -> list[str]:
    return [name for _key, name in Layout.parse(template).folder_levels(photo, unsure)]


def photo(folder: Path, name: str, index: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(f"photo {name} #{index}".encode() * (index + 1))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MARKER_NAME}


@pytest.fixture
def library(tmp_path: Path) -> list[ExportItem]:
    """Five photos in two folders: two cats (2019 and 2020, two cameras), a dog, an unsure one, one without EXIF."""
    lib = tmp_path / "lib" / "Holiday"
    return [
        ExportItem(photo(lib, "IMG_1.JPG", 1), "Cats", 0.9, "2019-07-14T18:03:21", "Canon EOS 80D"),
        ExportItem(photo(lib, "IMG_2.JPG", 2), "Cats", 0.9, "2020-01-02T09:00:00", "Apple iPhone 12"),
        ExportItem(photo(lib, "IMG_3.JPG", 3), "Dogs", 0.9, "2019-12-24T20:00:00", "Canon EOS 80D"),
        ExportItem(photo(lib, "IMG_4.JPG", 4), None, 0.3, "2019-07-15T10:00:00", None),
        ExportItem(photo(tmp_path / "lib" / "Scans", "scan.png", 5), "Dogs", 0.9, "2018-03-03T03:03:03", None),
    ]


class CancelAfter(CancelToken):
    """Cancels itself when polled before photo ``photos + 1`` (the work polls once before each photo)."""

    def __init__(self, photos: int) -> None:
        super().__init__()
        self._left = photos

    @property
    def cancelled(self) -> bool:
        if self._left == 0:
            self.cancel()
        self._left -= 1
        return super().cancelled


# --------------------------------------------------------------------------- the template


@pytest.mark.parametrize(("template", "expected"), [
    ("{category}", ["Cats"]),
    ("{year}", ["2019"]),
    ("{month}", ["07"]),
    ("{day}", ["14"]),
    ("{camera}", ["Canon EOS 80D"]),
    ("{original_folder}", ["Holiday"]),
    ("{category}/{year}/{month}", ["Cats", "2019", "07"]),
    ("{year}-{month}-{day} {camera}", ["2019-07-14 Canon EOS 80D"]),
    ("Photos {year}\\{category}", ["Photos 2019", "Cats"]),
    (" {category} / {year} ", ["Cats", "2019"]),
])
def test_each_placeholder_fills_its_folder_level(template: str, expected: list[str]) -> None:
    assert folders(template, facts()) == expected


def test_the_default_layout_is_one_folder_per_category_and_unsure_takes_the_categorys_place() -> None:
    assert DEFAULT_LAYOUT == "{category}"
    assert folders(DEFAULT_LAYOUT, facts(category=None)) == ["Unsure"]
    assert folders("{year}/{month}/{category}", facts(category=None)) == ["2019", "07", "Unsure"]


def test_missing_facts_become_stated_placeholders() -> None:
    assert folders("{camera}", facts(camera=None)) == ["Unknown camera"]
    assert folders("{camera}", facts(camera=" ... ")) == ["Unknown camera"], "nothing usable left is missing too"
    assert folders("{year}/{month}/{day}", facts(when=None)) == ["Unknown year", "Unknown month", "Unknown day"]
    assert folders("{original_folder}", facts(folder="/")) == ["Unknown folder"]


@pytest.mark.parametrize(("camera", "expected"), [
    ("../../etc", "_._etc"),
    ("CON", "CON_"),
    ("com1.jpg", "com1_.jpg"),
    ("Canon/EOS 80D", "Canon_EOS 80D"),
    ("Canon\\EOS", "Canon_EOS"),
    ("..", "Unknown camera"),
])
def test_an_unsafe_camera_name_is_one_harmless_folder(camera: str, expected: str) -> None:
    [name] = folders("{camera}", facts(camera=camera))
    assert name == expected
    assert "/" not in name and "\\" not in name and ".." not in name


def test_long_values_are_cut_to_the_folder_name_limits() -> None:
    [name] = folders("{camera} {original_folder}", facts(camera="x" * 300, folder="/p/" + "é" * 300))
    assert len(name) <= 100 and len(name.encode()) <= 255


def test_a_folder_name_that_is_not_utf8_stays_readable() -> None:
    [name] = folders("{original_folder}", facts(folder=os.fsdecode(b"/photos/caf\xe9")))
    assert name == "caf\ufffd"


@pytest.mark.parametrize(("template", "says"), [
    ("{category}/{yaer}", "Unknown placeholder {yaer}"),
    ("{Category}", "Unknown placeholder {Category}"),
    ("{}", "Unknown placeholder {}"),
    ("{category", "does not enclose a placeholder"),
    ("category}", "does not enclose a placeholder"),
    ("{{category}}", "does not enclose a placeholder"),
    ("{category}//{year}", "empty folder level"),
    ("/{category}", "empty folder level"),
    ("{category}/", "empty folder level"),
    ("", "is empty"),
    ("{category}/../{year}", "'..' level"),
    ("./{category}", "'.' level"),
    ("/".join(["{day}"] * 9), "at most 8"),
])
def test_a_bad_template_is_a_usage_error_that_names_the_allowed_placeholders(template: str, says: str) -> None:
    with pytest.raises(LayoutError) as caught:
        Layout.parse(template)
    assert says in str(caught.value)
    assert isinstance(caught.value, UsageError)
    if "placeholder" in says:
        assert "{category}, {year}, {month}, {day}, {camera}, {original_folder}" in str(caught.value)


def test_the_folder_tree_counts_every_level_in_natural_order() -> None:
    counts = {"Cats/2019/10": 1, "Cats/2019/9": 2, "Dogs/2020/01": 4, "Cats/2020/01": 3}
    assert folder_tree(counts) == [
        (0, "Cats", 6), (1, "2019", 3), (2, "9", 2), (2, "10", 1), (1, "2020", 3), (2, "01", 3),
        (0, "Dogs", 4), (1, "2020", 4), (2, "01", 4),
    ]


# --------------------------------------------------------------------------- plans


def test_a_plan_nests_folders_by_category_and_date(library: list[ExportItem], tmp_path: Path) -> None:
    plan = plan_export(library, tmp_path / "dest", layout="{category}/{year}/{month}")
    assert plan.layout == "{category}/{year}/{month}"
    assert plan.counts() == {"Cats/2019/07": 1, "Cats/2020/01": 1, "Dogs/2019/12": 1, "Unsure/2019/07": 1,
                             "Dogs/2018/03": 1}
    by_name = {m.source.name: m.destination for m in plan.moves}
    assert by_name["IMG_1.JPG"] == tmp_path / "dest" / "Cats" / "2019" / "07" / "IMG_1.JPG"
    assert not (tmp_path / "dest").exists(), "planning writes nothing"


def test_a_photo_without_a_date_goes_by_its_file_time(tmp_path: Path) -> None:
    source = photo(tmp_path / "lib", "a.jpg", 0)
    stamp = 1_300_000_000  # 2011-03-13 in every time zone
    os.utime(source, (stamp, stamp))
    plan = plan_export([ExportItem(source, "Cats")], tmp_path / "dest", layout="{year}/{month}")
    assert plan.counts() == {"2011/03": 1}


def test_different_values_that_look_alike_on_disk_never_share_a_folder(tmp_path: Path) -> None:
    items = [
        ExportItem(photo(tmp_path / "a" / "Holiday", "1.jpg", 1), "Cats", camera="Canon/EOS"),
        ExportItem(photo(tmp_path / "a" / "Holiday", "2.jpg", 2), "Cats", camera="Canon_EOS"),
        ExportItem(photo(tmp_path / "b" / "Holiday", "3.jpg", 3), "Cats", camera="Canon_EOS"),
    ]
    assert plan_export(items, tmp_path / "d1", layout="{camera}").counts() == {"Canon_EOS": 1, "Canon_EOS (2)": 2}
    by_folder = plan_export(items, tmp_path / "d2", layout="{original_folder}").counts()
    assert by_folder == {"Holiday": 2, "Holiday (2)": 1}, "two open folders of one name stay apart"


def test_a_file_in_the_way_at_a_nested_level_gets_a_numbered_folder(library: list[ExportItem], tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    (dest / "Cats").mkdir(parents=True)
    (dest / "Cats" / "2019").write_text("someone's file")
    plan = plan_export(library, dest, layout="{category}/{year}")
    assert plan.counts()["Cats/2019 (2)"] == 1 and "Cats/2019" not in plan.counts()
    assert (dest / "Cats" / "2019").read_text() == "someone's file"


def test_unsure_photos_can_be_left_out_of_a_layout_without_category(library: list[ExportItem], tmp_path: Path) -> None:
    plan = plan_export(library, tmp_path / "dest", unsure="skip", layout="{year}")
    assert plan.counts() == {"2018": 1, "2019": 2, "2020": 1}
    assert [(p.name, why) for p, why in plan.skipped] == [("IMG_4.JPG", "unsure, left out")]


# --------------------------------------------------------------------------- running


def test_a_templated_copy_export_writes_every_photo_once_and_marks_the_copies(library, tmp_path: Path) -> None:
    originals = snapshot(tmp_path / "lib")
    dest = tmp_path / "dest"
    plan = plan_export(library, dest, layout="{camera}/{year}")
    result = run_export(plan)
    assert result.done == 5 and not result.failed
    assert snapshot(tmp_path / "lib") == originals
    copied = snapshot(dest)
    assert set(copied) == {"Canon EOS 80D/2019/IMG_1.JPG", "Canon EOS 80D/2019/IMG_3.JPG",
                           "Apple iPhone 12/2020/IMG_2.JPG", "Unknown camera/2019/IMG_4.JPG",
                           "Unknown camera/2018/scan.png"}
    assert sorted(copied.values()) == sorted(originals.values())
    listed = exported_copies(str(dest))
    assert listed == {str(dest / name) for name in copied}, "indexing a folder around it leaves the copies out"

    again = run_export(plan_export(library, dest, layout="{camera}/{year}"))
    assert again.done == 0 and len(again.already) == 5 and snapshot(dest) == copied


def test_nested_copies_inside_the_library_are_left_out_of_indexing(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    items = [ExportItem(photo(library / "2019", f"IMG_{i}.jpg", i), "Cats", taken=f"201{i}-01-01T00:00:00")
             for i in range(3)]
    assert run_export(plan_export(items, library / "Sorted", layout="{category}/{year}")).done == 3
    assert len(list((library / "Sorted").rglob("*.jpg"))) == 3
    assert sorted(Path(f.path).name for f in scan_folder(library)) == ["IMG_0.jpg", "IMG_1.jpg", "IMG_2.jpg"]
    assert all("Sorted" not in f.path for f in scan_folder(library))


def test_leftovers_of_a_killed_run_in_nested_folders_are_removed(library, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    (dest / "Cats" / "2019").mkdir(parents=True)
    leftover = dest / "Cats" / "2019" / ".photosort-0123456789abcdef.partial"
    leftover.write_bytes(b"half a photo")
    run_export(plan_export(library, dest, layout="{category}/{year}"))
    assert not leftover.exists()


def test_a_link_planted_at_a_nested_level_after_planning_stops_the_export(library, tmp_path: Path) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    outside.mkdir()
    plan = plan_export(library, dest, layout="{category}/{year}")
    dest.mkdir()
    (dest / "Cats").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ExportStopped, match="not a plain folder"):
        run_export(plan)
    assert list(outside.iterdir()) == [], "nothing was written through the link"


def test_a_templated_move_is_undone_completely(library, tmp_path: Path) -> None:
    originals = snapshot(tmp_path / "lib")
    dest, journals = tmp_path / "dest", tmp_path / "data" / "journals"
    dest.mkdir()
    result = run_export(plan_export(library, dest, mode="move", layout="{category}/{year}/{month}"), journal_dir=journals)
    assert result.done == 5 and snapshot(tmp_path / "lib") == {}
    assert set(snapshot(dest)) == {"Cats/2019/07/IMG_1.JPG", "Cats/2020/01/IMG_2.JPG", "Dogs/2019/12/IMG_3.JPG",
                                   "Unsure/2019/07/IMG_4.JPG", "Dogs/2018/03/scan.png"}
    now_at = {placed.source: placed.destination for placed in result.placed}
    again = plan_export([replace(item, source=now_at[item.source]) for item in library], dest, mode="move",
                        layout="{category}/{year}/{month}")
    assert not again.moves and {why for _, why in again.skipped} == {
        "already in the folder 'Cats/2019/07'", "already in the folder 'Cats/2020/01'",
        "already in the folder 'Dogs/2019/12'", "already in the folder 'Unsure/2019/07'",
        "already in the folder 'Dogs/2018/03'"}, "moving again is a no-op"

    undone = undo_move(result.journal)

    assert undone.restored == 5 and not undone.failed and not undone.renamed
    assert snapshot(tmp_path / "lib") == originals
    assert list(dest.iterdir()) == [], "every folder the move made, at every level, is gone again"


def test_an_interrupted_templated_move_is_finished_then_undone(library, tmp_path: Path) -> None:
    originals = snapshot(tmp_path / "lib")
    dest, journals = tmp_path / "dest", tmp_path / "data" / "journals"
    plan = plan_export(library, dest, mode="move", layout="{year}/{category}")
    partial = run_export(plan, journal_dir=journals, cancel=CancelAfter(2))
    assert partial.cancelled and partial.done == 2

    finished = resume_or_recover(partial.journal)
    assert partial.done + finished.done == 5 and snapshot(tmp_path / "lib") == {}
    assert undo_move(partial.journal).restored == 5
    assert snapshot(tmp_path / "lib") == originals and list(dest.iterdir()) == []


# --------------------------------------------------------------------------- the command line


def exif_photo(path: Path, taken: str | None, make: str | None = None, model: str | None = None, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    if make:
        exif[MAKE] = make
    if model:
        exif[MODEL] = model
    if taken:
        exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] = taken
    draw_photo("beach", (64, 48), seed=seed).save(path, "JPEG", exif=exif.tobytes())
    return path


@pytest.fixture
def camera_roll(tmp_path: Path) -> Path:
    root = tmp_path / "roll"
    exif_photo(root / "a.jpg", "2019:07:14 18:03:21", "Canon", "Canon EOS 80D", seed=1)
    exif_photo(root / "b.jpg", "2020:01:02 09:00:00", "Evil", "../../etc", seed=2)
    exif_photo(root / "c.jpg", None, seed=3)
    stamp = 1_300_000_000  # 2011-03-13 in every time zone
    os.utime(root / "c.jpg", (stamp, stamp))
    return root


def test_the_cli_dry_run_shows_the_folder_tree_and_writes_nothing(cli, camera_roll: Path, tmp_path: Path) -> None:
    dest = tmp_path / "sorted"
    args = ("export", str(camera_roll), str(dest), "--categories", "beach", "--threshold", "0",
            "--layout", "{camera}/{year}", "--dry-run")
    code, plan, _ = cli(*args)
    assert code == 0 and plan["layout"] == "{camera}/{year}"
    assert plan["folders"] == {"Canon EOS 80D/2019": 1, "Evil ._._etc/2020": 1, "Unknown camera/2011": 1}
    code, text, _ = cli(*args, as_json=False)
    assert code == 0 and "as {camera}/{year}:" in text
    assert "      1  Canon EOS 80D/\n      1    2019/\n" in text
    assert "Nothing was written (dry run)." in text
    assert not dest.exists()


def test_the_cli_exports_by_capture_date(cli, camera_roll: Path, tmp_path: Path) -> None:
    dest = tmp_path / "sorted"
    code, done, _ = cli("export", str(camera_roll), str(dest), "--categories", "beach", "--threshold", "0",
                        "--layout", "{year}/{month}/{category}")
    assert code == 0 and done["done"] == 3
    assert set(snapshot(dest)) == {"2019/07/beach/a.jpg", "2020/01/beach/b.jpg", "2011/03/beach/c.jpg"}


def test_a_bad_layout_on_the_cli_is_a_usage_error_before_anything_runs(cli, tmp_path: Path) -> None:
    code, _, err = cli("export", str(tmp_path / "nowhere"), str(tmp_path / "sorted"), "--categories", "beach",
                       "--layout", "{category}/{yaer}", as_json=False)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "Unknown placeholder {yaer}" in err and "{year}" in err
