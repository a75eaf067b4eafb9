"""Export engine: plan first, then do; never overwrite, never lose, never escape."""

from __future__ import annotations

import builtins
import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from photosort.core.errors import Cancelled, ExportError
from photosort.core.export import (
    ExportItem,
    ExportStopped,
    fileops,
    journal_info,
    journal_state,
    pending_journals,
    plan_export,
    resume_or_recover,
    run_export,
    safe_folder_name,
    undo_move,
)
from photosort.core.export.journal import move_record
from photosort.core.export.marker import MARKER_NAME
from photosort.core.progress import CancelToken, Progress

# --------------------------------------------------------------------------- helpers


def make_photos(folder: Path, names: list[str]) -> list[Path]:
    """Small files with distinct bytes, and distinct old mtimes to check copystat."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, name in enumerate(names):
        path = folder / name
        path.write_bytes(f"photo {name} #{index}".encode() * (index + 1))
        os.utime(path, (1_000_000 + index, 1_000_000 + index))
        paths.append(path)
    return paths


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), links not followed; the
    marker a copy export leaves in its destination is not a photo, so it is left out."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.name != MARKER_NAME:
            files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".photosort-") and p.name != MARKER_NAME]


def items_for(paths: list[Path], categories: list[str | None]) -> list[ExportItem]:
    return [ExportItem(path, category) for path, category in zip(paths, categories, strict=True)]


class PollHook(CancelToken):
    """A cancel token that calls ``hook(n)`` on its n-th poll; the work polls it once
    before each photo, so the hook runs between two photos (it may also cancel)."""

    def __init__(self, hook: Callable[[int], None]) -> None:
        super().__init__()
        self.polls = 0
        self._hook = hook

    @property
    def cancelled(self) -> bool:
        self.polls += 1
        self._hook(self.polls)
        return super().cancelled


def crash_before(poll: int) -> PollHook:
    """The process dies (KeyboardInterrupt) just before photo number ``poll``."""

    def hook(n: int) -> None:
        if n == poll:
            raise KeyboardInterrupt

    return PollHook(hook)


def ends(reports: list[Progress]) -> list[tuple[str, int, int]]:
    """The first and the last report, which always arrive (the rest are throttled)."""
    return [(r.phase, r.done, r.total) for r in (reports[0], reports[-1])]


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    return make_photos(tmp_path / "src", ["a.jpg", "b.jpg", "c.png", "d.jpg", "e.heic"])


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    return tmp_path / "journals"


def fail_open_for_writing(monkeypatch: pytest.MonkeyPatch, error: OSError, after: int = 0) -> None:
    """Make creating a copy's temp file fail with ``error`` after ``after`` successes."""
    calls = {"n": 0}

    def fake_open(file, mode="r", *args, **kwargs):
        if mode == "xb" and Path(file).name.startswith(".photosort-"):
            calls["n"] += 1
            if calls["n"] > after:
                raise error
        return builtins.open(file, mode, *args, **kwargs)

    monkeypatch.setattr(fileops, "open", fake_open, raising=False)


# --------------------------------------------------------------------------- copy


def test_copy_puts_every_photo_in_its_category_with_identical_bytes(tmp_path: Path, photos: list[Path]) -> None:
    before = snapshot(tmp_path / "src")
    plan = plan_export(items_for(photos, ["Cats", "Dogs", "Cats", None, "Dogs"]), tmp_path / "out")
    assert plan.counts() == {"Cats": 2, "Dogs": 2, "Unsure": 1}

    result = run_export(plan, journal_dir=tmp_path / "journals")

    assert result.done == 5 and not result.failed and not result.cancelled
    assert result.journal is None
    out = tmp_path / "out"
    assert snapshot(out) == {
        "Cats/a.jpg": before["a.jpg"],
        "Cats/c.png": before["c.png"],
        "Dogs/b.jpg": before["b.jpg"],
        "Dogs/e.heic": before["e.heic"],
        "Unsure/d.jpg": before["d.jpg"],
    }
    assert snapshot(tmp_path / "src") == before
    assert (out / "Cats" / "c.png").stat().st_mtime == photos[2].stat().st_mtime
    assert temp_files(out) == []
    assert result.methods() == {"copy": 5}
    json.dumps(result.to_json())


def test_planning_writes_nothing(tmp_path: Path, photos: list[Path]) -> None:
    out = tmp_path / "out"
    plan = plan_export(items_for(photos, ["Cats"] * 5), out, mode="move")
    assert not out.exists()
    assert len(plan.moves) == 5
    assert all(move.destination.parent == out / "Cats" for move in plan.moves)
    assert [p.exists() for p in photos] == [True] * 5


def test_name_collisions_get_suffixes_and_nothing_is_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "Cats").mkdir(parents=True)
    (out / "Cats" / "IMG_0001.JPG").write_bytes(b"already there")
    sources = [
        make_photos(tmp_path / "one", ["IMG_0001.JPG"])[0],
        make_photos(tmp_path / "two", ["img_0001.jpg"])[0],
        make_photos(tmp_path / "three", ["IMG_0001.JPG"])[0],
    ]
    sources[2].write_bytes(b"a third photo with the same name")  # not the bytes of the first: not "already there"

    plan = plan_export(items_for(sources, ["Cats"] * 3), out)
    names = [move.destination.name for move in plan.moves]
    assert names == ["IMG_0001 (2).JPG", "img_0001 (3).jpg", "IMG_0001 (4).JPG"]

    result = run_export(plan)
    assert result.done == 3
    assert (out / "Cats" / "IMG_0001.JPG").read_bytes() == b"already there"
    for source, name in zip(sources, names, strict=True):
        assert (out / "Cats" / name).read_bytes() == source.read_bytes()


def test_file_appearing_after_planning_is_not_overwritten(tmp_path: Path, photos: list[Path]) -> None:
    out = tmp_path / "out"
    plan = plan_export(items_for(photos[:1], ["Cats"]), out)
    (out / "Cats").mkdir(parents=True)
    (out / "Cats" / "a.jpg").write_bytes(b"intruder")

    result = run_export(plan)

    assert (out / "Cats" / "a.jpg").read_bytes() == b"intruder"
    assert result.placed[0].destination == out / "Cats" / "a (2).jpg"
    assert (out / "Cats" / "a (2).jpg").read_bytes() == photos[0].read_bytes()


def test_existing_folder_in_other_case_is_reused_and_files_beside_are_kept(tmp_path: Path, photos: list[Path]) -> None:
    out = tmp_path / "out"
    (out / "cats").mkdir(parents=True)
    (out / "cats" / "old.jpg").write_bytes(b"old")
    plan = plan_export(items_for(photos[:2], ["Cats", "Cats"]), out)
    assert {move.folder for move in plan.moves} == {"cats"}
    run_export(plan)
    assert sorted(p.name for p in (out / "cats").iterdir()) == ["a.jpg", "b.jpg", "old.jpg"]


# --------------------------------------------------------------------------- folders and names


def test_unsure_photos_go_to_unsure_folder(tmp_path: Path, photos: list[Path]) -> None:
    plan = plan_export(items_for(photos[:2], [None, "Dogs"]), tmp_path / "out")
    assert plan.counts() == {"Unsure": 1, "Dogs": 1}


def test_category_named_unsure_keeps_the_unsure_photos_apart(tmp_path: Path, photos: list[Path]) -> None:
    plan = plan_export(items_for(photos[:3], ["unsure", None, "Dogs"]), tmp_path / "out")
    folders = [move.folder for move in plan.moves]
    assert folders == ["unsure", "Unsure (photosort)", "Dogs"]


def test_unsure_skip_leaves_unsure_photos_out(tmp_path: Path, photos: list[Path]) -> None:
    plan = plan_export(items_for(photos[:3], [None, "Dogs", None]), tmp_path / "out", unsure="skip")
    assert [move.source for move in plan.moves] == [photos[1]]
    assert [path for path, _ in plan.skipped] == [photos[0], photos[2]]
    result = run_export(plan)
    assert result.done == 1 and len(result.skipped) == 2
    assert not (tmp_path / "out" / "Unsure").exists()


def test_categories_with_colliding_safe_names_are_not_merged(tmp_path: Path, photos: list[Path]) -> None:
    plan = plan_export(items_for(photos[:4], ["Cats", "cats", "a/b", "a_b"]), tmp_path / "out")
    folders = {move.source.name: move.folder for move in plan.moves}
    assert len(set(map(str.casefold, folders.values()))) == 4
    assert folders["a.jpg"] == "Cats" and folders["b.jpg"] == "cats (2)"
    assert {folders["c.png"], folders["d.jpg"]} == {"a_b", "a_b (2)"}


HOSTILE = ["../x", "/abs", "..", "", "CON", "a/b\\c", "x" * 300, "📷🐈‍⬛" * 80, "nul\x00char", ".", "con.txt", " . "]


@pytest.mark.parametrize("name", HOSTILE)
def test_safe_folder_name_is_harmless(name: str) -> None:
    safe = safe_folder_name(name)
    assert safe not in ("", ".", "..")
    assert not set(safe) & set('/\\:*?"<>|\x00')
    assert len(safe) <= 101 and len(safe.encode()) <= 255
    assert safe == safe.strip(" .")
    assert safe.split(".")[0].upper() not in {"CON", "NUL", "PRN", "AUX"}
    assert safe_folder_name(safe) == safe


def test_safe_folder_name_examples() -> None:
    assert safe_folder_name("Cats") == "Cats"
    assert safe_folder_name("CON") == "CON_"
    assert safe_folder_name("con.txt") == "con_.txt"
    assert safe_folder_name("lpt9") == "lpt9_"
    assert safe_folder_name("") == "Unnamed"
    assert safe_folder_name("..") == "Unnamed"
    assert safe_folder_name("../x") == "_x"
    assert safe_folder_name("a/b\\c") == "a_b_c"
    assert safe_folder_name("Cafe\u0301") == "Café"
    assert safe_folder_name("🐈 cats") == "🐈 cats"
    assert len(safe_folder_name("x" * 300)) == 100


def test_hostile_category_names_all_land_inside_the_destination(tmp_path: Path) -> None:
    sources = make_photos(tmp_path / "src", [f"p{i}.jpg" for i in range(len(HOSTILE))])
    out = tmp_path / "box" / "out"
    plan = plan_export(items_for(sources, HOSTILE), out)
    root = os.path.realpath(out)
    for move in plan.moves:
        assert os.path.dirname(os.path.realpath(move.destination.parent)) == root
    assert len({move.folder.casefold() for move in plan.moves}) == len(HOSTILE)

    result = run_export(plan)

    assert result.done == len(HOSTILE)
    assert sorted(p.name for p in (tmp_path / "box").iterdir()) == ["out"]
    assert len(snapshot(out)) == len(HOSTILE)


def test_missing_unreadable_and_duplicate_sources_are_skipped(tmp_path: Path, photos: list[Path]) -> None:
    missing = tmp_path / "src" / "gone.jpg"
    folder = tmp_path / "src" / "a_folder"
    folder.mkdir()
    items = [*items_for([missing, folder, photos[0], photos[0]], ["Cats"] * 4)]
    plan = plan_export(items, tmp_path / "out")
    assert [move.source for move in plan.moves] == [photos[0]]
    reasons = dict(plan.skipped)
    assert "missing" in reasons[missing]
    assert "regular file" in reasons[folder]
    assert reasons[photos[0]] == "listed twice"


def test_photo_already_in_its_folder_is_skipped(tmp_path: Path) -> None:
    out = tmp_path / "out"
    inside = make_photos(out / "Cats", ["a.jpg"])
    plan = plan_export(items_for(inside, ["Cats"]), out, mode="move")
    assert plan.moves == [] and "already" in plan.skipped[0][1]


def test_destination_that_is_a_file_is_refused(tmp_path: Path, photos: list[Path]) -> None:
    with pytest.raises(ExportError, match="is a file"):
        plan_export(items_for(photos[:1], ["Cats"]), photos[1])


# --------------------------------------------------------------------------- link


def test_link_mode_makes_hard_links(tmp_path: Path, photos: list[Path]) -> None:
    result = run_export(plan_export(items_for(photos[:2], ["Cats", "Dogs"]), tmp_path / "out", mode="link"))
    assert result.methods() == {"hardlink": 2}
    assert os.path.samefile(tmp_path / "out" / "Cats" / "a.jpg", photos[0])


def test_link_mode_falls_back_to_symlinks_across_disks(
    tmp_path: Path, photos: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_hard_links(src, dst, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_hard_links)
    result = run_export(plan_export(items_for(photos[:2], ["Cats", "Cats"]), tmp_path / "out", mode="link"))
    assert result.methods() == {"symlink": 2}
    link = tmp_path / "out" / "Cats" / "a.jpg"
    assert link.is_symlink() and link.read_bytes() == photos[0].read_bytes()


# --------------------------------------------------------------------------- move and undo


def test_move_then_undo_restores_every_photo_byte_identical(tmp_path: Path, photos: list[Path], journal_dir: Path) -> None:
    before = snapshot(tmp_path / "src")
    plan = plan_export(items_for(photos, ["Cats", "Dogs", "Cats", None, "Dogs"]), tmp_path / "out", mode="move")

    result = run_export(plan, journal_dir=journal_dir)

    assert result.done == 5 and result.methods() == {"move": 5}
    assert snapshot(tmp_path / "src") == {}
    assert sorted(snapshot(tmp_path / "out").values()) == sorted(before.values())
    assert result.journal is not None and journal_state(result.journal) == "finished"
    assert pending_journals(journal_dir) == [result.journal]
    info = journal_info(result.journal)
    assert (info.path, info.state, info.destination, info.total) == (str(result.journal), "finished", str(tmp_path / "out"), 5)
    assert info.describe().startswith(f"Move of 5 photos to {tmp_path / 'out'}, 2")
    records = [json.loads(line) for line in result.journal.read_text().splitlines()]
    assert [r["state"] for r in records if r.get("state") == "planned"] == ["planned"] * 5

    undone = undo_move(result.journal)

    assert undone.restored == 5 and not undone.failed and not undone.renamed
    assert snapshot(tmp_path / "src") == before
    assert not any((tmp_path / "out").iterdir()), "the category folders it made are removed"
    assert journal_state(result.journal) == "undone"
    assert pending_journals(journal_dir) == []
    again = undo_move(result.journal)
    assert again.restored == 0 and not again.failed
    assert snapshot(tmp_path / "src") == before


def test_undo_does_not_overwrite_a_reoccupied_original_place(tmp_path: Path, photos: list[Path], journal_dir: Path) -> None:
    original = photos[0].read_bytes()
    result = run_export(
        plan_export(items_for(photos[:2], ["Cats", "Cats"]), tmp_path / "out", mode="move"), journal_dir=journal_dir
    )
    photos[0].write_bytes(b"a new file took the place")
    assert result.journal is not None

    undone = undo_move(result.journal)

    assert photos[0].read_bytes() == b"a new file took the place"
    assert undone.renamed == [(photos[0], photos[0].with_name("a (2).jpg"))]
    assert photos[0].with_name("a (2).jpg").read_bytes() == original
    assert undone.restored == 2


def forbid_hard_links(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every hard link fail as it does across disks, so moves must copy, verify and delete."""

    def cross_device(src, dst, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)


def test_move_across_disks_copies_verified_then_removes_and_undoes(
    tmp_path: Path, photos: list[Path], journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(tmp_path / "src")

    forbid_hard_links(monkeypatch)
    plan = plan_export(items_for(photos, ["Cats"] * 5), tmp_path / "out", mode="move")
    result = run_export(plan, journal_dir=journal_dir)

    assert result.methods() == {"copy+delete": 5}
    assert snapshot(tmp_path / "src") == {}
    assert sorted(snapshot(tmp_path / "out").values()) == sorted(before.values())
    assert temp_files(tmp_path) == []
    assert result.journal is not None
    assert undo_move(result.journal).restored == 5
    assert snapshot(tmp_path / "src") == before
    assert temp_files(tmp_path) == []


def test_move_that_cannot_remove_a_source_keeps_it_once(
    tmp_path: Path, photos: list[Path], journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_unlink = os.unlink

    def stubborn(path, *args, **kwargs):
        if Path(path) == photos[2]:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", stubborn)
    result = run_export(plan_export(items_for(photos, ["Cats"] * 5), tmp_path / "out", mode="move"), journal_dir=journal_dir)

    assert result.done == 4
    assert [path for path, _ in result.failed] == [photos[2]]
    assert "left where it was" in result.failed[0][1]
    assert photos[2].exists() and not (tmp_path / "out" / "Cats" / "c.png").exists()
    assert sorted(snapshot(tmp_path / "src")) == ["c.png"]


def test_move_interrupted_halfway_is_resumed_without_loss(tmp_path: Path, photos: list[Path], journal_dir: Path) -> None:
    before = snapshot(tmp_path / "src")
    plan = plan_export(items_for(photos, ["Cats", "Dogs", "Cats", "Dogs", "Cats"]), tmp_path / "out", mode="move")

    with pytest.raises(KeyboardInterrupt):
        run_export(plan, journal_dir=journal_dir, cancel=crash_before(3))  # the process dies after two photos

    [journal] = pending_journals(journal_dir)
    assert journal_state(journal) == "interrupted"
    assert len(snapshot(tmp_path / "src")) == 3 and len(snapshot(tmp_path / "out")) == 2

    result = resume_or_recover(journal)

    assert result.done == 3 and not result.failed
    assert snapshot(tmp_path / "src") == {}
    assert sorted(snapshot(tmp_path / "out").values()) == sorted(before.values())
    assert journal_state(journal) == "finished"
    assert undo_move(journal).restored == 5
    assert snapshot(tmp_path / "src") == before


def test_undo_interrupted_midway_can_simply_run_again(tmp_path: Path, photos: list[Path], journal_dir: Path) -> None:
    before = snapshot(tmp_path / "src")
    result = run_export(plan_export(items_for(photos, ["Cats"] * 5), tmp_path / "out", mode="move"), journal_dir=journal_dir)
    assert result.journal is not None

    with pytest.raises(KeyboardInterrupt):
        undo_move(result.journal, cancel=crash_before(3))
    assert pending_journals(journal_dir) == [result.journal]

    again = undo_move(result.journal)

    assert again.restored == 3 and not again.failed
    assert snapshot(tmp_path / "src") == before


def test_undo_reports_a_photo_deleted_since_the_export(tmp_path: Path, photos: list[Path], journal_dir: Path) -> None:
    result = run_export(plan_export(items_for(photos[:2], ["Cats"] * 2), tmp_path / "out", mode="move"), journal_dir=journal_dir)
    assert result.journal is not None
    (tmp_path / "out" / "Cats" / "a.jpg").unlink()

    undone = undo_move(result.journal)

    assert undone.restored == 1
    assert [path for path, _ in undone.failed] == [photos[0]]
    assert "no longer" in undone.failed[0][1]
    assert photos[1].exists()
    json.dumps(undone.to_json())


def write_mixed_journal(tmp_path: Path, journal_dir: Path) -> tuple[Path, dict[str, bytes], list[Path]]:
    """A journal as a killed process leaves it: one photo moved and recorded, one
    moved but not recorded, one with both names (killed between link and unlink),
    one never started, one cross-disk copy killed mid-write (a temp file remains)."""
    sources = make_photos(tmp_path / "src", ["done.jpg", "moved.jpg", "both.jpg", "todo.jpg", "copying.jpg"])
    before = snapshot(tmp_path / "src")
    folder = tmp_path / "out" / "Cats"
    folder.mkdir(parents=True)
    targets = [folder / p.name for p in sources]
    os.rename(sources[0], targets[0])
    os.rename(sources[1], targets[1])
    os.link(sources[2], targets[2])
    temp = folder / ".photosort-0123456789abcdef.partial"
    temp.write_bytes(b"half a pho")
    records = [{"op": "begin", "version": 1, "destination": str(tmp_path / "out"), "total": 5}]
    records += [move_record(s, t, "planned") for s, t in zip(sources, targets, strict=True)]
    records += [
        move_record(sources[0], targets[0], "done", method="move"),
        {"op": "move", "src": str(sources[4]), "tmp": str(temp), "state": "copying"},
    ]
    journal_dir.mkdir()
    journal = journal_dir / "move-20240101-000000-abcd.jsonl"
    journal.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"op": "move", "sr')
    return journal, before, sources


def test_hand_written_interrupted_journal_is_completed(tmp_path: Path, journal_dir: Path) -> None:
    journal, before, _ = write_mixed_journal(tmp_path, journal_dir)
    assert pending_journals(journal_dir) == [journal]
    assert journal_state(journal) == "interrupted"
    info = journal_info(journal)
    assert info.state == "interrupted" and info.describe() == f"Move of 5 photos to {tmp_path / 'out'}"

    result = resume_or_recover(journal)

    assert result.done == 4 and not result.failed
    assert snapshot(tmp_path / "src") == {}
    assert snapshot(tmp_path / "out") == {f"Cats/{name}": data for name, data in before.items()}
    assert temp_files(tmp_path) == []
    assert undo_move(journal).restored == 5
    assert snapshot(tmp_path / "src") == before


def test_hand_written_interrupted_journal_can_be_rolled_back(tmp_path: Path, journal_dir: Path) -> None:
    journal, before, _ = write_mixed_journal(tmp_path, journal_dir)

    undone = undo_move(journal)

    assert not undone.failed and undone.restored == 3  # done, moved, and both names
    assert snapshot(tmp_path / "src") == before
    assert snapshot(tmp_path / "out") == {}
    assert temp_files(tmp_path) == []
    assert journal_state(journal) == "undone"


def test_resume_does_not_take_a_foreign_file_for_the_photo(tmp_path: Path, journal_dir: Path) -> None:
    """A file that appeared at the planned name is someone else's: keep both."""
    [source] = make_photos(tmp_path / "src", ["a.jpg"])
    target = tmp_path / "out" / "Cats" / "a.jpg"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"someone else's")
    journal_dir.mkdir()
    journal = journal_dir / "move-1.jsonl"
    header = {"op": "begin", "destination": str(tmp_path / "out")}
    journal.write_text(json.dumps(header) + "\n" + json.dumps(move_record(source, target, "planned")) + "\n")
    original = source.read_bytes()

    resume_or_recover(journal)

    assert target.read_bytes() == b"someone else's"
    assert (target.parent / "a (2).jpg").read_bytes() == original
    assert not source.exists()


# --------------------------------------------------------------------------- errors


def test_permission_denied_on_destination_stops_with_a_readable_message(
    tmp_path: Path, photos: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(tmp_path / "src")
    plan = plan_export(items_for(photos, ["Cats"] * 5), tmp_path / "out")
    fail_open_for_writing(monkeypatch, PermissionError(errno.EACCES, "Permission denied"))

    with pytest.raises(ExportError, match="permission denied") as caught:
        run_export(plan)

    assert "choose another folder" in str(caught.value)
    assert isinstance(caught.value, ExportStopped) and caught.value.result.done == 0
    assert snapshot(tmp_path / "src") == before
    assert snapshot(tmp_path / "out") == {}


def test_disk_full_mid_copy_stops_cleans_up_and_keeps_sources(
    tmp_path: Path, photos: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(tmp_path / "src")
    plan = plan_export(items_for(photos, ["Cats"] * 5), tmp_path / "out")
    real_open = builtins.open
    opened = {"n": 0}

    class FullDisk:
        """A file whose writes fail with ENOSPC, like a disk that just filled up."""

        def __init__(self, handle):
            self._handle = handle

        def write(self, data):
            self._handle.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._handle.close()

    def fake_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if mode == "xb":
            opened["n"] += 1
            if opened["n"] == 3:
                return FullDisk(handle)
        return handle

    monkeypatch.setattr(fileops, "open", fake_open, raising=False)

    with pytest.raises(ExportError, match="disk is full") as caught:
        run_export(plan)

    assert "nothing was lost" in str(caught.value)
    assert caught.value.result.done == 2
    assert temp_files(tmp_path) == []
    assert snapshot(tmp_path / "src") == before
    assert sorted(snapshot(tmp_path / "out")) == ["Cats/a.jpg", "Cats/b.jpg"]


def test_disk_full_during_a_cross_disk_move_loses_nothing_and_can_be_undone(
    tmp_path: Path, photos: list[Path], journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(tmp_path / "src")

    forbid_hard_links(monkeypatch)
    plan = plan_export(items_for(photos, ["Cats"] * 5), tmp_path / "out", mode="move")
    fail_open_for_writing(monkeypatch, OSError(errno.ENOSPC, "No space left on device"), after=2)

    with pytest.raises(ExportStopped, match="disk is full") as caught:
        run_export(plan, journal_dir=journal_dir)

    journal = caught.value.result.journal
    assert journal is not None and journal_state(journal) == "stopped"
    assert "can be undone" in str(caught.value)
    assert temp_files(tmp_path) == []
    assert "2 photos moved so far" in str(caught.value)
    assert len(snapshot(tmp_path / "src")) == 3 and len(snapshot(tmp_path / "out")) == 2
    monkeypatch.undo()
    assert undo_move(journal).restored == 2
    assert snapshot(tmp_path / "src") == before


def test_photo_vanishing_mid_export_fails_alone(tmp_path: Path, photos: list[Path]) -> None:
    plan = plan_export(items_for(photos, ["Cats"] * 5), tmp_path / "out")

    def delete_second(poll: int) -> None:
        if poll == 2:
            photos[1].unlink()

    result = run_export(plan, cancel=PollHook(delete_second))

    assert result.done == 4
    assert result.failed == [(photos[1], "the photo disappeared during the export (moved or deleted meanwhile)")]
    assert temp_files(tmp_path) == []


def test_cancel_stops_between_photos_and_keeps_what_was_done(tmp_path: Path, photos: list[Path], journal_dir: Path) -> None:
    plan = plan_export(items_for(photos, ["Cats"] * 5), tmp_path / "out", mode="move")

    def cancel_after_two(poll: int) -> None:
        if poll == 3:
            token.cancel()  # as the Cancel button does, while the second photo is being moved

    token = PollHook(cancel_after_two)
    result = run_export(plan, journal_dir=journal_dir, cancel=token)

    assert result.cancelled and result.done == 2 and not result.failed
    assert len(snapshot(tmp_path / "out")) == 2 and len(snapshot(tmp_path / "src")) == 3
    assert result.journal is not None and journal_state(result.journal) == "cancelled"
    reports: list[Progress] = []
    assert resume_or_recover(result.journal, progress=reports.append).done == 3
    assert ends(reports) == [("finishing", 0, 3), ("finishing", 3, 3)]
    assert snapshot(tmp_path / "src") == {}


def test_a_token_cancelled_before_the_start_changes_nothing(tmp_path: Path, photos: list[Path], journal_dir: Path) -> None:
    before = snapshot(tmp_path / "src")
    token = CancelToken()
    token.cancel()

    result = run_export(plan_export(items_for(photos, ["Cats"] * 5), tmp_path / "out", mode="move"),
                        journal_dir=journal_dir, cancel=token)

    assert result.cancelled and result.done == 0
    assert snapshot(tmp_path / "src") == before and snapshot(tmp_path / "out") == {}
    assert result.journal is None, "a move that moved nothing leaves no journal to undo"
    assert pending_journals(journal_dir) == [] and list((tmp_path / "out").iterdir()) == []


def test_cancelled_raised_by_progress_is_a_clean_stop(tmp_path: Path, photos: list[Path]) -> None:
    def stop(report: Progress) -> None:
        raise Cancelled  # e.g. a runner calling cancel.raise_if_cancelled() in its callback

    result = run_export(plan_export(items_for(photos, ["Cats"] * 5), tmp_path / "out"), progress=stop)
    assert result.cancelled and result.done == 0
    assert temp_files(tmp_path) == []
    assert snapshot(tmp_path / "out") == {}


def test_progress_reports_first_and_last_of_each_phase(tmp_path: Path, photos: list[Path], journal_dir: Path) -> None:
    reports: list[Progress] = []
    plan = plan_export(items_for(photos, ["Cats"] * 5), tmp_path / "out", mode="move")

    result = run_export(plan, journal_dir=journal_dir, progress=reports.append)

    assert ends(reports) == [("exporting", 0, 5), ("exporting", 5, 5)]
    assert [r.done for r in reports] == sorted(r.done for r in reports)
    assert reports[-1].fraction == 1.0
    reports.clear()
    assert result.journal is not None
    assert undo_move(result.journal, progress=reports.append).restored == 5
    assert ends(reports) == [("undoing", 0, 5), ("undoing", 5, 5)]


def test_symlink_planted_in_destination_is_never_written_through(tmp_path: Path, photos: list[Path]) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "Cats").symlink_to(outside, target_is_directory=True)

    plan = plan_export(items_for(photos[:2], ["Cats", "Cats"]), out)
    assert {move.folder for move in plan.moves} == {"Cats (2)"}
    run_export(plan)
    assert list(outside.iterdir()) == []

    plan = plan_export(items_for(photos[2:4], ["Dogs", "Dogs"]), out)
    (out / "Dogs").symlink_to(outside, target_is_directory=True)  # planted after planning
    with pytest.raises(ExportError, match="not a plain folder"):
        run_export(plan)
    assert list(outside.iterdir()) == []


def test_move_needs_a_journal_dir(tmp_path: Path, photos: list[Path]) -> None:
    with pytest.raises(ValueError, match="journal_dir"):
        run_export(plan_export(items_for(photos[:1], ["Cats"]), tmp_path / "out", mode="move"))
