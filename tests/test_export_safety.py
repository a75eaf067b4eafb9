"""Issue 10, export side: re-runs, exports into the library, two at once, undo after the world moved on, kills.

Each test here failed before its fix; the randomised interleaving of all of
them is ``tests/test_export_invariant.py``.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from photosort.core.errors import ExportBusyError, ExportError, user_message
from photosort.core.export import (
    ExportItem,
    fileops,
    pending_journals,
    plan_export,
    resume_or_recover,
    run_export,
    undo_move,
)
from photosort.core.export.fileops import FileProblem, open_regular
from photosort.core.export.journal import Journal, move_record, read_journal
from photosort.core.export.lock import export_lock
from photosort.core.export.marker import MARKER_NAME
from photosort.core.scan import scan_folder

DRIVER = Path(__file__).with_name("export_driver.py")
REPO = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- helpers


def make_photos(folder: Path, names: list[str]) -> list[Path]:
    """Small files with distinct bytes (what these tests need of a photo)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, name in enumerate(names):
        path = folder / name
        path.write_bytes(f"photo {folder.name}/{name} #{index}".encode() * (index + 2))
        paths.append(path)
    return paths


def tree(folder: Path) -> dict[str, bytes]:
    """Every plain file under ``folder`` (relative path -> bytes), the export marker left out."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.name != MARKER_NAME}


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if fileops.is_temp_name(p.name) or fileops.is_placeholder(p)]


def items_for(paths: list[Path], category: str | None = "Cats") -> list[ExportItem]:
    return [ExportItem(path, category) for path in paths]


def drive(spec: dict) -> subprocess.CompletedProcess[str]:
    """Run tests/export_driver.py (an export, finish or undo in its own process, maybe SIGKILLed)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(DRIVER), json.dumps(spec)], capture_output=True, text=True, env=env,
                          timeout=300)


def forbid_hard_links(monkeypatch: pytest.MonkeyPatch) -> None:
    def cross_device(src, dst, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    return make_photos(tmp_path / "src", ["a.jpg", "b.jpg", "c.png", "d.jpg", "e.heic"])


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "journals"


# --------------------------------------------------------------------------- 1. re-running an export


def test_a_second_copy_export_finds_every_photo_already_there(tmp_path: Path, photos: list[Path]) -> None:
    out = tmp_path / "out"
    first = run_export(plan_export(items_for(photos), out))
    assert first.done == 5 and first.already == []
    written = tree(out)

    again = run_export(plan_export(items_for(photos), out))

    assert again.done == 0 and not again.failed
    assert again.already == [(p, out / "Cats" / p.name) for p in photos]
    assert tree(out) == written, "nothing written twice: no 'a (2).jpg'"
    document = again.to_json()
    assert [entry["source"] for entry in document["already_there"]] == [str(p) for p in photos]


def test_already_there_is_found_under_its_numbered_name(tmp_path: Path, photos: list[Path]) -> None:
    out = tmp_path / "out"
    make_photos(out / "Cats", ["a.jpg"])[0].write_bytes(b"a stranger named a.jpg")
    first = run_export(plan_export(items_for(photos[:1]), out))
    assert first.placed[0].destination == out / "Cats" / "a (2).jpg"

    again = run_export(plan_export(items_for(photos[:1]), out))

    assert again.done == 0 and again.already == [(photos[0], out / "Cats" / "a (2).jpg")]
    assert sorted(tree(out)) == ["Cats/a (2).jpg", "Cats/a.jpg"]


def test_two_identical_photos_in_one_run_are_written_once(tmp_path: Path) -> None:
    one = make_photos(tmp_path / "one", ["IMG.JPG"])[0]
    two = tmp_path / "two" / "IMG.JPG"
    two.parent.mkdir()
    two.write_bytes(one.read_bytes())

    result = run_export(plan_export(items_for([one, two]), tmp_path / "out"))

    assert result.done == 1 and result.already == [(two, tmp_path / "out" / "Cats" / "IMG.JPG")]


def test_only_files_of_the_photos_size_are_read(tmp_path: Path, photos: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-run compares sizes first: a file of another size is never hashed."""
    out = tmp_path / "out"
    run_export(plan_export(items_for(photos[:1]), out))
    (out / "Cats" / "a (7).jpg").write_bytes(b"x" * 10_000)  # same name family, other size
    hashed: list[Path] = []
    real_hash = fileops.hash_file

    def counting(path: Path) -> bytes:
        hashed.append(Path(path))
        return real_hash(path)

    monkeypatch.setattr(fileops, "hash_file", counting)
    again = run_export(plan_export(items_for(photos[:1]), out))

    assert again.already == [(photos[0], out / "Cats" / "a.jpg")]
    assert sorted(hashed) == sorted([photos[0], out / "Cats" / "a.jpg"]), "the photo and its one same-size candidate"


def test_a_killed_copy_leaves_its_partial_file_only_until_the_next_run(tmp_path: Path, photos: list[Path],
                                                                       journal_dir: Path) -> None:
    out = tmp_path / "out"
    spec = {"op": "export", "items": [[str(p), "Cats"] for p in photos], "destination": str(out), "mode": "copy",
            "journal_dir": str(journal_dir), "kill_op": "fsync", "kill_at": 3}  # dies flushing the third copy
    assert drive(spec).returncode == -9
    [partial] = leftovers(out)
    assert sorted(tree(out)) == sorted(["Cats/a.jpg", "Cats/b.jpg", f"Cats/{partial.name}"]), "two done, one partial"
    user_file = out / "Cats" / ".photosort-notes.partial"  # named like ours, but not ours: kept
    user_file.write_bytes(b"mine")

    again = run_export(plan_export(items_for(photos), out), journal_dir=journal_dir)

    assert leftovers(out) == [] and user_file.exists()
    assert (again.done, len(again.already)) == (3, 2)
    assert sorted(tree(out)) == sorted([f"Cats/{p.name}" for p in photos] + ["Cats/.photosort-notes.partial"])


def test_a_name_reserved_by_a_killed_copy_on_a_disk_without_hard_links_is_removed(
    tmp_path: Path, photos: list[Path], journal_dir: Path
) -> None:
    out = tmp_path / "out"
    spec = {"op": "export", "items": [[str(p), "Cats"] for p in photos[:2]], "destination": str(out),
            "mode": "copy", "journal_dir": str(journal_dir), "no_hardlinks": True, "kill_op": "replace", "kill_at": 1}
    assert drive(spec).returncode == -9
    assert fileops.is_placeholder(out / "Cats" / "a.jpg"), "killed between reserving a.jpg and filling it"

    run_export(plan_export(items_for(photos[:2]), out), journal_dir=journal_dir)

    assert leftovers(out) == []
    assert sorted(tree(out).values()) == sorted(p.read_bytes() for p in photos[:2])


# --------------------------------------------------------------------------- 2. exporting into the library


def library_items(library: Path) -> list[ExportItem]:
    return [ExportItem(Path(f.path), "Cats" if "a" in Path(f.path).stem else "Dogs") for f in scan_folder(library)]


def test_copies_exported_into_the_library_are_not_indexed_nor_copied_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    library = tmp_path / "Pictures"
    make_photos(library / "2024", ["a1.jpg", "a2.jpg", "b1.jpg"])
    before = [f.path for f in scan_folder(library)]
    run_export(plan_export(library_items(library), library / "Sorted"))
    assert len(tree(library / "Sorted")) == 3

    exports: list[str] = []
    with caplog.at_level("WARNING", logger="photosort.core.scan"):
        after = [f.path for f in scan_folder(library, exports=exports)]

    assert after == before, "the copies are not new photos"
    assert exports == [str(library / "Sorted")]
    [said] = [r.getMessage() for r in caplog.records if "not indexing" in r.getMessage()]
    assert "3 copies" in said and str(library / "Sorted") in said
    again = run_export(plan_export(library_items(library), library / "Sorted"))
    assert (again.done, len(again.already)) == (0, 3)
    assert len(tree(library / "Sorted")) == 3


def test_photos_moved_into_the_library_stay_indexed_beside_the_copies(tmp_path: Path, journal_dir: Path) -> None:
    library = tmp_path / "Pictures"
    moved, copied = make_photos(library / "2024", ["a1.jpg", "b1.jpg"])
    sorted_folder = library / "Sorted"
    run_export(plan_export(items_for([moved], "Cats"), sorted_folder, mode="move"), journal_dir=journal_dir)
    run_export(plan_export(items_for([copied], "Cats"), sorted_folder), journal_dir=journal_dir)

    paths = sorted(Path(f.path).relative_to(library).as_posix() for f in scan_folder(library))

    assert paths == ["2024/b1.jpg", "Sorted/Cats/a1.jpg"], "the moved original is a photo; the copy is not"


def test_the_folder_asked_for_is_indexed_even_when_it_is_an_export(tmp_path: Path, photos: list[Path]) -> None:
    run_export(plan_export(items_for(photos), tmp_path / "out"))
    assert len(scan_folder(tmp_path / "out")) == 5


def test_a_copy_never_takes_a_photo_already_inside_its_destination(tmp_path: Path, photos: list[Path]) -> None:
    out = tmp_path / "out"
    inside = make_photos(out / "Dogs", ["old.jpg"])[0]

    plan = plan_export(items_for([*photos[:1], inside]), out)

    assert [m.source for m in plan.moves] == photos[:1]
    assert dict(plan.skipped)[inside].startswith("it already lies inside the destination")
    in_place = plan_export(items_for([inside]), out, mode="move")
    assert [m.destination for m in in_place.moves] == [out / "Cats" / "old.jpg"], "a move still sorts in place"


# --------------------------------------------------------------------------- 3. two exports at once


def test_an_export_finish_or_undo_while_another_runs_is_refused_and_changes_nothing(
    tmp_path: Path, photos: list[Path], journal_dir: Path
) -> None:
    moved = run_export(plan_export(items_for(photos[:2]), tmp_path / "out", mode="move"), journal_dir=journal_dir)
    assert moved.journal is not None
    before = tree(tmp_path)

    with export_lock(journal_dir):
        for attempt in (
            lambda: run_export(plan_export(items_for(photos[2:]), tmp_path / "out", mode="move"), journal_dir=journal_dir),
            lambda: run_export(plan_export(items_for(photos[2:]), tmp_path / "copies"), journal_dir=journal_dir),
            lambda: undo_move(moved.journal),
            lambda: resume_or_recover(moved.journal),
        ):
            with pytest.raises(ExportBusyError) as caught:
                attempt()
            message = user_message(caught.value)
            assert "\n" not in message.text and "Another photosort export" in message.text
            assert message.action.value == "retry"

    assert tree(tmp_path) == before and pending_journals(journal_dir) == [moved.journal]
    assert undo_move(moved.journal).restored == 2


def test_the_lock_of_another_process_refuses_and_dies_with_it(tmp_path: Path, photos: list[Path], journal_dir: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from photosort.core.export.lock import export_lock\n"
         "with export_lock(Path(sys.argv[1])):\n    print('locked', flush=True); sys.stdin.read()", str(journal_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        plan = plan_export(items_for(photos), tmp_path / "out", mode="move")
        with pytest.raises(ExportBusyError):
            run_export(plan, journal_dir=journal_dir)
        assert all(p.exists() for p in photos)
    finally:
        holder.kill()  # SIGKILL: no cleanup runs, the OS drops the lock
        holder.wait()

    assert run_export(plan, journal_dir=journal_dir).done == 5


# --------------------------------------------------------------------------- 4. undo after the world moved on


def test_every_moved_photo_is_recorded_with_its_size_and_hash(tmp_path: Path, photos: list[Path], journal_dir: Path) -> None:
    result = run_export(plan_export(items_for(photos), tmp_path / "out", mode="move"), journal_dir=journal_dir)
    assert result.journal is not None
    contents = read_journal(result.journal)
    assert contents.version == 2
    for entry, placed in zip(contents.entries, result.placed, strict=True):
        assert entry.content is not None and entry.content.is_at(placed.destination)


def test_undo_leaves_a_strangers_file_where_a_deleted_photo_was(tmp_path: Path, photos: list[Path], journal_dir: Path) -> None:
    result = run_export(plan_export(items_for(photos[:2]), tmp_path / "out", mode="move"), journal_dir=journal_dir)
    assert result.journal is not None
    exported = tmp_path / "out" / "Cats" / "a.jpg"
    exported.unlink()  # the user deleted the photo...
    exported.write_bytes(b"another file, later given the same name")  # ...and another file took its name

    undone = undo_move(result.journal)

    assert undone.restored == 1 and photos[1].exists()
    assert not photos[0].exists(), "the stranger is not brought into the library"
    assert exported.read_bytes() == b"another file, later given the same name"
    [(path, reason)] = undone.failed
    assert path == photos[0] and "no longer the exported photo" in reason


def test_undo_leaves_a_photo_edited_since_the_export(tmp_path: Path, photos: list[Path], journal_dir: Path) -> None:
    result = run_export(plan_export(items_for(photos[:1]), tmp_path / "out", mode="move"), journal_dir=journal_dir)
    exported = tmp_path / "out" / "Cats" / "a.jpg"
    exported.write_bytes(exported.read_bytes() + b" rotated in an editor")
    assert result.journal is not None

    undone = undo_move(result.journal)

    assert undone.restored == 0 and exported.exists() and not photos[0].exists()
    assert "changed or replaced" in undone.failed[0][1]


def test_undo_killed_after_copying_back_across_disks_makes_no_duplicate(
    tmp_path: Path, photos: list[Path], journal_dir: Path
) -> None:
    before = {p.name: p.read_bytes() for p in photos}
    spec = {"op": "export", "items": [[str(p), "Cats"] for p in photos], "destination": str(tmp_path / "out"),
            "mode": "move", "journal_dir": str(journal_dir), "no_hardlinks": True}
    assert drive(spec).returncode == 0
    [journal] = pending_journals(journal_dir)
    # The undo copies the newest photo back, then dies just before deleting its copy in the destination.
    killed = drive({"op": "undo", "journal": str(journal), "journal_dir": str(journal_dir), "no_hardlinks": True,
                    "kill_op": "unlink", "kill_at": 2})
    assert killed.returncode == -9
    assert (tmp_path / "src" / "e.heic").exists() and (tmp_path / "out" / "Cats" / "e.heic").exists()

    undone = undo_move(journal)

    assert not undone.failed and not undone.renamed
    assert tree(tmp_path / "src") == before, "no 'e (2).heic'"
    assert tree(tmp_path / "out") == {} and leftovers(tmp_path) == []


def test_an_export_that_moved_nothing_is_never_the_last_move(tmp_path: Path, photos: list[Path], journal_dir: Path) -> None:
    real = run_export(plan_export(items_for(photos[:2]), tmp_path / "out", mode="move"), journal_dir=journal_dir)
    stale = plan_export(items_for(photos[:2]), tmp_path / "out2", mode="move")  # planned before...
    for photo in photos[:2]:
        assert not photo.exists()  # ...the photos it names were moved: it can move nothing

    empty = run_export(stale, journal_dir=journal_dir)

    assert empty.done == 0 and empty.journal is None
    assert pending_journals(journal_dir) == [real.journal]
    assert not (tmp_path / "out2" / "Cats").exists(), "the folder it made for nothing is gone"


def test_a_move_killed_before_touching_a_photo_is_not_listed(tmp_path: Path, photos: list[Path], journal_dir: Path) -> None:
    real = run_export(plan_export(items_for(photos[:1]), tmp_path / "out", mode="move"), journal_dir=journal_dir)
    journal = Journal.create(journal_dir)  # as a move killed right after writing its plan leaves it
    journal.write({"op": "begin", "version": 2, "destination": str(tmp_path / "out"), "total": 1},
                  move_record(photos[1], tmp_path / "out" / "Cats" / "b.jpg", "planned"))
    journal.close()

    assert pending_journals(journal_dir) == [real.journal]


def test_a_journal_folder_that_is_not_a_folder_gives_one_line_and_moves_nothing(tmp_path: Path, photos: list[Path]) -> None:
    not_a_folder = tmp_path / "journals"
    not_a_folder.write_text("a file where the journals should be")

    with pytest.raises(ExportError) as caught:
        run_export(plan_export(items_for(photos), tmp_path / "out", mode="move"), journal_dir=not_a_folder)

    assert "\n" not in str(caught.value) and "nothing was" in str(caught.value)
    assert all(p.exists() for p in photos) and not (tmp_path / "out").exists()


def test_a_full_journal_disk_gives_one_line_moves_nothing_and_leaves_no_journal(
    tmp_path: Path, photos: list[Path], journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(self, *records):
        raise FileProblem("journal", OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(Journal, "write", disk_full)

    with pytest.raises(ExportError, match="No space left") as caught:
        run_export(plan_export(items_for(photos), tmp_path / "out", mode="move"), journal_dir=journal_dir)

    assert "\n" not in str(caught.value) and "nothing was moved" in str(caught.value)
    assert all(p.exists() for p in photos)
    assert list(journal_dir.glob("move-*.jsonl")) == [], "no half-written journal poses as the last move"


# --------------------------------------------------------------------------- 6. reads never block


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        open_regular(fifo)


def test_a_photo_replaced_by_a_fifo_fails_alone(tmp_path: Path, photos: list[Path]) -> None:
    plan = plan_export(items_for(photos[:2]), tmp_path / "out")
    photos[0].unlink()
    os.mkfifo(photos[0])

    result = run_export(plan)

    assert result.done == 1 and result.failed == [(photos[0], "could not read the photo (not a regular file)")]


def test_a_fifo_named_like_a_photo_in_the_destination_is_never_opened(tmp_path: Path, photos: list[Path]) -> None:
    out = tmp_path / "out"
    (out / "Cats").mkdir(parents=True)
    os.mkfifo(out / "Cats" / "a.jpg")

    result = run_export(plan_export(items_for(photos[:1]), out))

    assert result.placed[0].destination == out / "Cats" / "a (2).jpg"


def test_a_second_link_export_finds_its_links_already_there(tmp_path: Path, photos: list[Path]) -> None:
    out = tmp_path / "out"
    assert run_export(plan_export(items_for(photos), out, mode="link")).done == 5

    again = run_export(plan_export(items_for(photos), out, mode="link"))

    assert (again.done, len(again.already)) == (0, 5) and len(tree(out)) == 5


def test_finishing_a_move_never_takes_a_strangers_file_for_a_photo_that_vanished(
    tmp_path: Path, photos: list[Path], journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_link = os.link

    def killed_before_linking(src, dst, **kwargs):
        if Path(src) == photos[1]:
            raise KeyboardInterrupt  # the process dies after recording the photo, before touching it
        return real_link(src, dst, **kwargs)

    monkeypatch.setattr(os, "link", killed_before_linking)
    with pytest.raises(KeyboardInterrupt):
        run_export(plan_export(items_for(photos[:3]), tmp_path / "out", mode="move"), journal_dir=journal_dir)
    monkeypatch.undo()
    [journal] = pending_journals(journal_dir)
    photos[1].unlink()  # the user deleted the photo meanwhile, and another file took its planned name
    stranger = tmp_path / "out" / "Cats" / "b.jpg"
    stranger.write_bytes(b"not the photo")

    finished = resume_or_recover(journal)

    assert finished.done == 1 and [path for path, _ in finished.failed] == [photos[1]]
    assert stranger.read_bytes() == b"not the photo"
    undone = undo_move(journal)
    assert undone.restored == 2 and stranger.read_bytes() == b"not the photo" and not photos[1].exists()
