"""An export carries a photo's XMP sidecars along: same operation, renamed as the photo is, undone with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from photosort.core.export import ExportItem, plan_export, resume_or_recover, run_export, undo_move
from photosort.core.scan import is_photo_name

DRIVER = Path(__file__).with_name("export_driver.py")
REPO = Path(__file__).resolve().parent.parent


def _shoot(tmp_path: Path) -> Path:
    shoot = tmp_path / "shoot"
    shoot.mkdir()
    for name, data in {"IMG_1.CR2": b"raw1", "IMG_1.JPG": b"jpg1", "IMG_1.xmp": b"<pair/>",
                       "IMG_2.JPG": b"jpg2", "IMG_2.JPG.xmp": b"<two/>", "IMG_3.JPG": b"jpg3",
                       "IMG_3.xmp": b"<three/>"}.items():
        (shoot / name).write_bytes(data)
    return shoot


def _items(shoot: Path) -> list[ExportItem]:
    return [ExportItem(shoot / n, "Beach") for n in ("IMG_1.CR2", "IMG_1.JPG", "IMG_2.JPG", "IMG_3.JPG")]


def test_a_copy_carries_both_namings_and_a_shared_sidecar_once(tmp_path: Path) -> None:
    shoot = _shoot(tmp_path)
    plan = plan_export(_items(shoot), tmp_path / "out")
    assert plan.sidecar_count() == 3 and len(plan.moves) == 4
    result = run_export(plan)
    beach = tmp_path / "out" / "Beach"
    assert result.done == 4 and result.sidecars == 3 and not result.sidecars_failed
    assert (beach / "IMG_1.xmp").read_bytes() == b"<pair/>"
    assert (beach / "IMG_2.JPG.xmp").read_bytes() == b"<two/>"
    assert (beach / "IMG_3.xmp").read_bytes() == b"<three/>"
    assert (shoot / "IMG_2.JPG.xmp").exists()  # a copy leaves the original
    again = run_export(plan_export(_items(shoot), tmp_path / "out"))  # a re-run writes nothing twice
    assert again.done == 0 and len(again.already) == 4 and again.sidecars == 0 and not again.sidecars_failed
    assert sorted(p.name for p in beach.iterdir()) == sorted(p.name for p in shoot.iterdir())
    assert not is_photo_name("IMG_2.JPG.xmp") and not is_photo_name("IMG_1.XMP")  # indexing leaves sidecars out


def test_a_renamed_photo_renames_its_sidecar_and_a_stranger_is_never_overwritten(tmp_path: Path) -> None:
    shoot = _shoot(tmp_path)
    beach = tmp_path / "out" / "Beach"
    beach.mkdir(parents=True)
    (beach / "IMG_2.JPG").write_bytes(b"someone else")
    (beach / "IMG_3.xmp").write_bytes(b"orphan")  # a photo named IMG_3.JPG would take this sidecar: it is renamed
    result = run_export(plan_export(_items(shoot), tmp_path / "out"))
    assert (beach / "IMG_2 (2).JPG").read_bytes() == b"jpg2"
    assert (beach / "IMG_2 (2).JPG.xmp").read_bytes() == b"<two/>"
    assert (beach / "IMG_3 (2).xmp").read_bytes() == b"<three/>" and (beach / "IMG_3.xmp").read_bytes() == b"orphan"
    assert (beach / "IMG_2.JPG").read_bytes() == b"someone else" and result.sidecars == 3


def test_dry_run_plans_sidecars_and_writes_nothing(tmp_path: Path) -> None:
    plan = plan_export(_items(_shoot(tmp_path)), tmp_path / "out", mode="move")
    assert plan.sidecar_count() == 3 and not (tmp_path / "out").exists()


def test_move_and_undo_take_sidecars_there_and_back(tmp_path: Path) -> None:
    shoot = _shoot(tmp_path)
    before = sorted(p.name for p in shoot.iterdir())
    result = run_export(plan_export(_items(shoot), tmp_path / "out", mode="move"), journal_dir=tmp_path / "j")
    beach = tmp_path / "out" / "Beach"
    assert result.done == 4 and result.sidecars == 3
    assert sorted(p.name for p in shoot.iterdir()) == []
    assert (beach / "IMG_1.xmp").exists() and (beach / "IMG_2.JPG.xmp").exists()
    assert result.journal is not None
    undone = undo_move(result.journal)
    assert undone.restored == 4 and undone.sidecars == 3
    assert sorted(p.name for p in shoot.iterdir()) == before


def test_a_move_killed_between_photo_and_sidecar_is_finished_then_undone(tmp_path: Path) -> None:
    shoot = _shoot(tmp_path)
    spec = {"op": "export", "mode": "move", "journal_dir": str(tmp_path / "j"), "destination": str(tmp_path / "out"),
            "items": [[str(shoot / "IMG_2.JPG"), "Beach"]], "kill_op": "link", "kill_at": 2}  # the sidecar's link
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(DRIVER), json.dumps(spec)], capture_output=True, env=env, timeout=120)
    assert done.returncode == -9
    beach = tmp_path / "out" / "Beach"
    assert (beach / "IMG_2.JPG").exists() and (shoot / "IMG_2.JPG.xmp").exists()  # the photo went, its sidecar not yet
    journal = next((tmp_path / "j").glob("move-*.jsonl"))
    result = resume_or_recover(journal)
    assert result.done == 0 and result.sidecars == 1
    assert (beach / "IMG_2.JPG.xmp").read_bytes() == b"<two/>" and not (shoot / "IMG_2.JPG.xmp").exists()
    undone = undo_move(journal)
    assert undone.restored == 1 and undone.sidecars == 1
    assert (shoot / "IMG_2.JPG.xmp").read_bytes() == b"<two/>" and (shoot / "IMG_2.JPG").read_bytes() == b"jpg2"


def test_undo_leaves_a_sidecar_changed_since_the_move_and_says_so(tmp_path: Path) -> None:
    shoot = _shoot(tmp_path)
    result = run_export(plan_export(_items(shoot)[2:3], tmp_path / "out", mode="move"), journal_dir=tmp_path / "j")
    moved = tmp_path / "out" / "Beach" / "IMG_2.JPG.xmp"
    moved.write_bytes(b"<edited later/>")
    assert result.journal is not None
    undone = undo_move(result.journal)
    assert undone.restored == 1 and undone.sidecars == 0 and len(undone.sidecars_failed) == 1
    assert moved.read_bytes() == b"<edited later/>" and not (shoot / "IMG_2.JPG.xmp").exists()


def test_a_sidecar_name_taken_after_planning_is_reported_never_overwritten(tmp_path: Path) -> None:
    shoot = _shoot(tmp_path)
    plan = plan_export(_items(shoot)[2:3], tmp_path / "out", mode="link")
    (tmp_path / "out" / "Beach").mkdir(parents=True)
    (tmp_path / "out" / "Beach" / "IMG_2.JPG.xmp").write_bytes(b"another program's")
    result = run_export(plan)
    assert result.done == 1 and result.sidecars == 0
    assert [path for path, _ in result.sidecars_failed] == [shoot / "IMG_2.JPG.xmp"]
    assert (tmp_path / "out" / "Beach" / "IMG_2.JPG.xmp").read_bytes() == b"another program's"


def test_a_move_leaves_a_shared_sidecar_with_the_raw_that_stays(tmp_path: Path) -> None:
    shoot = _shoot(tmp_path)
    plan = plan_export([ExportItem(shoot / "IMG_1.JPG", "Beach")], tmp_path / "out", mode="move")
    assert plan.sidecar_count() == 0
    copy = plan_export([ExportItem(shoot / "IMG_1.JPG", "Beach")], tmp_path / "out")
    assert [s.name for s in copy.moves[0].sidecars] == ["IMG_1.xmp"]  # a copy takes it along, harming nothing
