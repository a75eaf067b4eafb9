"""Issue 10 through the command line: re-runs say "already there", exports into the library are not
indexed again, a second export is refused in one line, undo after an empty move undoes the real one."""

from __future__ import annotations

from pathlib import Path

import pytest

from photosort.core.export.lock import export_lock

CATEGORIES = ("--categories", "beach, night", "--threshold", "0")


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def test_a_second_copy_export_writes_nothing_and_says_already_there(cli, make_photos, tmp_path: Path) -> None:
    root = make_photos(2)
    dest = tmp_path / "sorted"
    code, first, _ = cli("export", str(root), str(dest), *CATEGORIES)
    assert code == 0 and first["done"] == 10 and first["already_there"] == []
    exported = files(dest)

    code, again, _ = cli("export", str(root), str(dest), *CATEGORIES)
    assert code == 0 and again["done"] == 0 and len(again["already_there"]) == 10
    code, text, _ = cli("export", str(root), str(dest), *CATEGORIES, as_json=False)
    assert text.splitlines()[0] == f"Copied 0 photos into {dest}; 10 photos already there."
    assert files(dest) == exported


def test_copies_exported_into_the_library_are_not_indexed_as_new_photos(
    cli, make_photos, caplog: pytest.LogCaptureFixture
) -> None:
    root = make_photos(2)
    code, first, _ = cli("index", str(root))
    assert code == 0 and first["total"] == 10

    assert cli("export", str(root), str(root / "Sorted"), *CATEGORIES)[1]["done"] == 10
    with caplog.at_level("WARNING", logger="photosort.core.scan"):
        code, again, _ = cli("index", str(root))

    assert code == 0 and (again["total"], again["indexed"]) == (10, 0)
    assert any("not indexing the 10 copies" in r.getMessage() for r in caplog.records)
    code, twice, _ = cli("export", str(root), str(root / "Sorted"), *CATEGORIES)
    assert (twice["done"], len(twice["already_there"])) == (0, 10)


def test_a_move_export_while_another_runs_is_refused_in_one_line(cli, make_photos, tmp_path: Path) -> None:
    root = make_photos(1)
    before = files(root)
    with export_lock(tmp_path / "data" / "journals"):  # as a second photosort in the middle of its export holds it
        code, _, err = cli("export", str(root), str(tmp_path / "sorted"), *CATEGORIES, "--mode", "move")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "Another photosort export" in err and "try again" in err
    assert files(root) == before and not (tmp_path / "sorted").exists()


def test_undo_after_a_move_that_moved_nothing_undoes_the_real_move(cli, make_photos, tmp_path: Path) -> None:
    real = make_photos(1, folder=tmp_path / "real")
    before = files(real)
    assert cli("export", str(real), str(tmp_path / "sorted"), *CATEGORIES, "--mode", "move")[1]["done"] == 5
    other = make_photos(1, folder=tmp_path / "other")
    code, empty, _ = cli("export", str(other), str(tmp_path / "sorted2"), "--categories", "beach, night", "--threshold", "1",
                         "--unsure", "skip", "--mode", "move")
    assert code == 0 and empty["done"] == 0 and empty["journal"] is None

    code, undone, _ = cli("undo")

    assert code == 0 and undone["restored"] == 5
    assert files(real) == before


def test_a_journal_folder_that_cannot_be_written_is_one_line_and_moves_nothing(cli, make_photos, tmp_path: Path) -> None:
    root = make_photos(1)
    before = files(root)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "journals").write_text("not a folder")

    code, _, err = cli("export", str(root), str(tmp_path / "sorted"), *CATEGORIES, "--mode", "move")

    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err and "nothing was" in err
    assert files(root) == before
