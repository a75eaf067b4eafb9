"""Near-duplicates and bursts: found, split by time, a keeper with its reason, rejects leave exports, trash."""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from duplicate_photos import blurred, resized_copy, save, scene

T0 = dt.datetime(2024, 5, 1, 10, 0, 0)


def group_names(groups) -> list[tuple[str, list[str]]]:
    return [(g.kind.value, [Path(p).name for p in g.paths]) for g in groups]


def open_indexed(engine, *folders: Path):
    for folder in folders:
        engine.index(folder)
    return engine.open_library(list(folders))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """14 unrelated detailed scenes an hour apart, a resized re-encoded copy and a blurred copy; two bursts."""
    root = tmp_path_factory.mktemp("mixed")
    for i in range(14):
        save(scene(i), root / "scenes" / f"P{i:02d}.jpg", T0 + dt.timedelta(hours=i))
    save(resized_copy(scene(3)), root / "scenes" / "P03_small.jpg", T0 + dt.timedelta(hours=3), quality=80)
    save(blurred(scene(5)), root / "scenes" / "P05_blurred.jpg", T0 + dt.timedelta(hours=5))
    day = T0 + dt.timedelta(days=1)
    for k, x in enumerate((0.2, 0.35, 0.5)):  # seconds apart
        save(scene(100, ball=(x, 0.5)), root / "bursts" / f"B1_{k}.jpg", day + dt.timedelta(seconds=k))
    for k, x in enumerate((0.3, 0.6)):  # five minutes later
        save(scene(100, ball=(x, 0.3)), root / "bursts" / f"B2_{k}.jpg", day + dt.timedelta(minutes=5, seconds=k))
    save(scene(100, ball=(0.8, 0.7)), root / "bursts" / "B3.jpg", day + dt.timedelta(minutes=30))
    return root


@pytest.fixture
def photos(mixed: Path, tmp_path: Path) -> Path:
    """A private copy of the mixed photos (tests reject, trash and edit them)."""
    return Path(shutil.copytree(mixed, tmp_path / "photos"))


# ---- finding ---------------------------------------------------------------------------------------------
def test_copies_are_found_and_unrelated_scenes_are_not_grouped(engine, photos: Path) -> None:
    from photosort.core.duplicates import review

    groups = review(open_indexed(engine, photos))
    assert group_names(groups) == [
        ("burst", ["B1_0.jpg", "B1_1.jpg", "B1_2.jpg"]),
        ("burst", ["B2_0.jpg", "B2_1.jpg"]),
        ("duplicate", ["P03.jpg", "P03_small.jpg"]),
        ("duplicate", ["P05.jpg", "P05_blurred.jpg"]),
    ]


def test_bursts_are_split_by_time_and_can_be_left_out(engine, photos: Path) -> None:
    from photosort.core.duplicates import find_groups

    library = open_indexed(engine, photos)
    bursts = [g for g in find_groups(library) if g.kind.value == "burst"]
    assert [[Path(p).name for p in g.paths] for g in bursts] == [["B1_0.jpg", "B1_1.jpg", "B1_2.jpg"],
                                                                 ["B2_0.jpg", "B2_1.jpg"]]
    assert all(g.kind.value == "duplicate" for g in find_groups(library, bursts=False))


def test_photos_without_a_capture_time_make_no_burst(engine, tmp_path: Path) -> None:
    """Copied files share meaningless file times: only EXIF capture times make bursts."""
    from photosort.core.duplicates import find_groups

    for k, x in enumerate((0.2, 0.35, 0.5)):
        save(scene(100, ball=(x, 0.5)), tmp_path / "p" / f"B{k}.jpg", None)
    assert find_groups(open_indexed(engine, tmp_path / "p")) == []


def test_byte_identical_copies_are_one_photo_twice(engine, photos: Path) -> None:
    from photosort.core.duplicates import find_groups, reject_others, review
    from photosort.core.rejects import rejected

    shutil.copy2(photos / "scenes" / "P07.jpg", photos / "scenes" / "P07 (2).jpg")
    library = open_indexed(engine, photos)
    assert ("duplicate", ["P07 (2).jpg", "P07.jpg"]) in group_names(find_groups(library))
    group = next(g for g in review(library) if len(g.photos) == 2 and "P07.jpg" in [Path(p).name for p in g.paths])
    assert Path(group.keep_path).name == "P07.jpg" and group.reason == "as good as the others; the shortest name"
    reject_others(library, [group])  # the copy shares the original's identity: only the copy is rejected
    assert [Path(r.path).name for r in rejected(library)] == ["P07 (2).jpg"]


def test_make_library_near_duplicates_are_found(engine, shared_dir: Path, tmp_path: Path) -> None:
    """Every IMG_n_edited.jpg (re-encoded at a quarter size) is grouped with its IMG_n.JPG, which is kept."""
    from photosort.core.duplicates import review

    root = tmp_path / "library"
    subprocess.run([sys.executable, str(shared_dir / "tools" / "make_library.py"), str(root), "--count", "30",
                    "--megapixels", "0.3", "--seed", "3"], check=True, capture_output=True)
    with open(root / "labels.csv", newline="") as f:
        kinds = {os.path.realpath(root / r[0]): r[1] for r in csv.reader(f) if r[0] != "path"}
    edited = sorted(p for p in kinds if p.endswith("_edited.jpg"))
    assert len(edited) == 4  # this seed makes four
    groups = review(open_indexed(engine, root))
    for copy in edited:
        original = copy.replace("_edited.jpg", ".JPG")
        group = next(g for g in groups if copy in [p.path for p in g.photos])
        assert original in [p.path for p in group.photos] and group.kind.value == "duplicate"
        assert group.keep_path == original and group.reason.startswith("largest (624×468 vs 156×117")
    for group in groups:  # nothing of another kind is taken for a copy
        assert len({kinds[p.path] for p in group.photos}) == 1


def test_signatures_are_computed_once_and_again_when_the_thumbnail_changes(engine, photos: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from photosort.core import perceptual
    from photosort.core.duplicates import find_groups

    read = []
    original = perceptual.grey_of_thumbnail
    monkeypatch.setattr(perceptual, "grey_of_thumbnail", lambda jpeg: read.append(1) or original(jpeg))
    library = open_indexed(engine, photos)
    find_groups(library)
    assert len(read) == len(library)
    find_groups(library)
    assert len(read) == len(library)  # all cached
    target = photos / "scenes" / "P09.jpg"
    save(scene(9).rotate(180), target, T0)
    library = open_indexed(engine, photos)
    find_groups(library)
    assert len(read) == len(library) + 1  # only the photo whose thumbnail was written again


def test_sensitivity_is_checked(engine, photos: Path) -> None:
    from photosort.core.duplicates import Criteria
    from photosort.core.errors import UsageError

    with pytest.raises(UsageError, match="between 0 and 1"):
        Criteria.at(1.5)
    assert Criteria.at(0.0).look < Criteria.at(0.5).look < Criteria.at(1.0).look


def test_neighbours_of_the_inverted_file_match_the_exact_ones() -> None:
    from photosort.core.neighbours import nearest_neighbours

    rng = np.random.default_rng(1)
    centres = rng.standard_normal((40, 32))
    x = centres[rng.integers(0, 40, 2000)] + 0.3 * rng.standard_normal((2000, 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    exact = nearest_neighbours(x, 5)
    truth = np.argsort(1 - x.astype(np.float64) @ x.T.astype(np.float64) + np.eye(2000) * 9, axis=1)[:, :5]
    assert np.mean(np.sort(exact.index, 1) == np.sort(truth, 1)) > 0.999
    approx = nearest_neighbours(x, 5, exact_limit=100)
    assert np.mean([len(set(a) & set(t)) / 5 for a, t in zip(approx.index, truth, strict=True)]) > 0.98
    few = nearest_neighbours(x[:3], 5)
    assert sorted(few.index[0][:2].tolist()) == [1, 2] and few.index[0][2:].tolist() == [-1, -1, -1]


# ---- the keeper -------------------------------------------------------------------------------------------
def test_the_sharp_photo_is_kept_over_its_blurred_copy(engine, photos: Path) -> None:
    from photosort.core.duplicates import review

    group = next(g for g in review(open_indexed(engine, photos)) if "P05.jpg" in [Path(p.path).name for p in g.photos])
    assert Path(group.keep_path).name == "P05.jpg"
    assert group.reason.startswith("sharpest (focus ")


def test_a_photo_that_cannot_be_read_is_not_kept(engine, photos: Path) -> None:
    from photosort.core.duplicates import review

    library = open_indexed(engine, photos)
    (photos / "scenes" / "P03.jpg").unlink()  # gone since indexing
    group = next(g for g in review(library) if "P03_small.jpg" in [Path(p.path).name for p in g.photos])
    assert Path(group.keep_path).name == "P03_small.jpg"
    assert group.reason == "the only one that can be read now"


def test_a_photo_you_keep_is_the_keeper_and_is_never_rejected(engine, photos: Path) -> None:
    from photosort.core.duplicates import reject_others, review
    from photosort.core.rejects import Decision, rejected, set_decisions

    library = open_indexed(engine, photos)
    small = next(pid for pid in library.ids.tolist() if Path(library.path_of(pid)).name == "P03_small.jpg")
    set_decisions(library, {small: Decision.KEEP})
    groups = review(library)
    group = next(g for g in groups if g.keep == small)
    assert group.reason == "you chose to keep it"
    reject_others(library, groups)
    assert small not in {r.id for r in rejected(library)}
    assert "P03.jpg" in {Path(r.path).name for r in rejected(library)}


# ---- rejecting and exporting ----------------------------------------------------------------------------------
def test_reject_others_is_idempotent_and_rejected_photos_leave_exports(cli, photos: Path, tmp_path: Path) -> None:
    code, doc, _ = cli("duplicates", str(photos), "--reject-others")
    assert code == 0 and doc["newly_rejected"] == 5  # B1_1, B1_2, B2_1, P03_small, P05_blurred
    code, again, _ = cli("duplicates", str(photos), "--reject-others")
    assert code == 0 and again["newly_rejected"] == 0 and again["groups"] == doc["groups"]
    rejected = {Path(p).name for g in doc["groups"] for p in g["rejected"]}
    assert rejected == {"B1_1.jpg", "B1_2.jpg", "B2_1.jpg", "P03_small.jpg", "P05_blurred.jpg"}

    code, plan, _ = cli("export", str(photos), str(tmp_path / "out"), "--categories", "a, b", "--dry-run")
    planned = {Path(m["source"]).name for m in plan["moves"]}
    skipped = {Path(s["path"]).name: s["reason"] for s in plan["skipped"]}
    assert code == 0 and not planned & rejected
    assert all(skipped[name] == "rejected as a duplicate" for name in rejected)
    code, plan, _ = cli("export", str(photos), str(tmp_path / "out"), "--categories", "a, b", "--dry-run",
                        "--include-rejected")
    assert rejected <= {Path(m["source"]).name for m in plan["moves"]}


def test_a_decision_follows_a_renamed_photo(engine, photos: Path) -> None:
    from photosort.core.duplicates import reject_others, review
    from photosort.core.rejects import rejected

    library = open_indexed(engine, photos)
    reject_others(library, review(library))
    (photos / "scenes" / "P05_blurred.jpg").rename(photos / "scenes" / "renamed.jpg")
    assert "renamed.jpg" in {Path(r.path).name for r in rejected(open_indexed(engine, photos))}


# ---- trashing -------------------------------------------------------------------------------------------------
@pytest.fixture
def trash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """send2trash replaced by a move into <tmp>/trash; returns the paths it was handed."""
    import send2trash

    handed: list[Path] = []
    bin_ = tmp_path / "trash"
    bin_.mkdir()

    def fake(path: str) -> None:
        handed.append(Path(path))
        shutil.move(path, bin_ / Path(path).name)

    monkeypatch.setattr(send2trash, "send2trash", fake)
    return handed


def test_trash_rejected_goes_through_send2trash_only(cli, photos: Path, trash: list[Path], tmp_path: Path) -> None:
    cli("duplicates", str(photos), "--reject-others")
    before = {p.name for p in photos.rglob("*.jpg")}
    code, report, _ = cli("trash-rejected", str(photos), "--yes")
    gone = {"B1_1.jpg", "B1_2.jpg", "B2_1.jpg", "P03_small.jpg", "P05_blurred.jpg"}
    assert code == 0 and {Path(p).name for p in report["trashed"]} == gone and not report["refused"]
    assert {p.name for p in trash} == gone  # every removal was send2trash's
    assert {p.name for p in photos.rglob("*.jpg")} == before - gone
    assert {p.name for p in (tmp_path / "trash").iterdir()} == gone
    code, doc, _ = cli("duplicates", str(photos))  # the cache forgot them: no group is left
    assert code == 0 and doc["groups"] == []
    code, again, _ = cli("trash-rejected", str(photos), "--yes")
    assert code == 0 and again["trashed"] == [] and len(trash) == len(gone)


def test_trash_without_yes_off_a_terminal_refuses_in_one_line(cli, photos: Path, trash: list[Path]) -> None:
    cli("duplicates", str(photos), "--reject-others")
    code, _, err = cli("trash-rejected", str(photos), as_json=False)
    assert code == 2 and "--yes" in err and len(err.strip().splitlines()) == 1
    assert trash == [] and (photos / "scenes" / "P03_small.jpg").exists()


def test_a_photo_changed_since_it_was_rejected_is_refused(engine, photos: Path, trash: list[Path]) -> None:
    from photosort.core.duplicates import reject_others, review
    from photosort.core.rejects import trash_rejected

    library = open_indexed(engine, photos)
    reject_others(library, review(library))
    changed = photos / "scenes" / "P03_small.jpg"
    save(resized_copy(scene(3)).rotate(90), changed, T0, quality=70)  # edited after rejecting, not indexed since
    report = trash_rejected(library)
    assert (str(changed.resolve()), "its content changed since it was rejected; look at it again") in \
        [(str(Path(p).resolve()), r) for p, r in report.refused]
    assert changed.exists() and changed.resolve() not in [p.resolve() for p in trash]
    assert len(report.trashed) == 4


def test_a_failure_to_trash_one_photo_does_not_stop_the_rest(engine, photos: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import send2trash

    from photosort.core.duplicates import reject_others, review
    from photosort.core.rejects import rejected, trash_rejected

    def fake(path: str) -> None:
        if path.endswith("P03_small.jpg"):
            raise OSError(13, "Permission denied")
        os.replace(path, path + ".trashed")  # stands in for the trash

    monkeypatch.setattr(send2trash, "send2trash", fake)
    library = open_indexed(engine, photos)
    reject_others(library, review(library))
    report = trash_rejected(library)
    assert [(Path(p).name, r) for p, r in report.failed] == [("P03_small.jpg", "Permission denied")]
    assert len(report.trashed) == 4
    assert [Path(r.path).name for r in rejected(library)] == ["P03_small.jpg"]  # still rejected, still there


# ---- the command line ----------------------------------------------------------------------------------------
def test_duplicates_json_document(cli, photos: Path) -> None:
    code, doc, _ = cli("duplicates", str(photos), "--no-bursts")
    assert code == 0 and set(doc) == {"groups"}
    assert [set(g) >= {"kind", "photos", "keep", "reason"} for g in doc["groups"]] == [True, True]
    first = doc["groups"][0]
    assert first["kind"] == "duplicate" and first["keep"] == str((photos / "scenes" / "P03.jpg").resolve())
    assert [Path(p).name for p in first["photos"]] == ["P03.jpg", "P03_small.jpg"]
    assert first["reason"] == "largest (480×360 vs 160×120)"


def test_duplicates_text_and_usage_errors(cli, photos: Path) -> None:
    code, out, _ = cli("duplicates", str(photos), as_json=False)
    assert code == 0 and "keep " in out and "sharpest (focus" in out and "--reject-others" in out
    code, _, err = cli("duplicates", str(photos), "--sensitivity", "2", as_json=False)
    assert code == 2 and "between 0 and 1" in err


def test_grouping_can_be_cancelled_and_keeps_the_signatures_it_computed(engine, photos: Path) -> None:
    from photosort.core.duplicates import find_groups
    from photosort.core.errors import Cancelled
    from photosort.core.progress import CancelToken

    library = open_indexed(engine, photos)
    cancel = CancelToken()
    seen = []

    def progress(p) -> None:
        seen.append(p.phase)
        cancel.cancel()

    with pytest.raises(Cancelled):
        find_groups(library, progress=progress, cancel=cancel)
    assert seen == ["comparing looks"]
    assert len(engine.cache.signatures_for_ids(library.ids.tolist())) == len(library)  # one batch: all kept
