"""The command line: JSON documents, one-line errors, exit codes, settings precedence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from photosort.cli import main
from photosort.core.config import Settings


def test_index_then_reindex_json(cli, make_photos) -> None:
    root = make_photos(2)
    (root / "bad.jpg").write_bytes(b"garbage")
    code, doc, _ = cli("index", str(root))
    assert code == 0
    assert doc["indexed"] == 10 and doc["unchanged"] == 0
    assert doc["failed"] == [{"path": os.path.realpath(root / "bad.jpg"), "error": doc["failed"][0]["error"]}]
    code, doc, _ = cli("index", str(root))
    assert (code, doc["indexed"], doc["unchanged"]) == (0, 0, 10)


def test_sort_by_categories_gives_every_photo_a_category_or_null(cli, make_photos) -> None:
    root = make_photos(2)
    code, doc, _ = cli("sort", str(root), "--categories", "beach, forest, pets=a photo of a cat", "--threshold", "0")
    assert code == 0
    assert len(doc["photos"]) == 10
    for photo in doc["photos"]:
        assert os.path.isabs(photo["path"])
        assert photo["category"] in ("beach", "forest", "pets")
        assert 0.0 <= photo["score"] <= 1.0
    code, doc, _ = cli("sort", str(root), "--categories", "beach, forest", "--threshold", "1")
    assert {p["category"] for p in doc["photos"]} == {None}


def test_usage_errors_are_one_line_with_exit_code_2(cli, make_photos) -> None:
    root = make_photos(1)
    for args in (("sort", str(root), "--categories", "beach", "--threshold", "1.5"),
                 ("search", str(root), "snow", "--limit", "0"),
                 ("search", str(root), "snow", "--like", "x.jpg")):
        code, _, err = cli(*args)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err


def test_train_then_sort_by_head(cli, make_photos, tmp_path: Path) -> None:
    root = make_photos(4)
    labels = tmp_path / "labels.csv"
    rows = ["path,label"] + [f"{kind}/{kind}_{i:03d}.jpg,{kind}" for kind in ("beach", "night") for i in range(3)]
    labels.write_text("\n".join(rows) + "\n")
    code, doc, _ = cli("train", str(root), "--head", "trips", "--labels", str(labels))
    assert code == 0 and doc["labels"] == 6 and doc["classes"] == ["beach", "night"]
    code, doc, _ = cli("sort", str(root), "--head", "trips")
    assert code == 0
    by_name = {Path(p["path"]).name: p["category"] for p in doc["photos"]}
    assert by_name["beach_003.jpg"] == "beach" and by_name["night_003.jpg"] == "night"


def test_search_text_and_like(cli, make_photos) -> None:
    root = make_photos(2)
    code, doc, _ = cli("search", str(root), "a sunny beach", "--limit", "3")
    assert code == 0 and len(doc["results"]) == 3
    scores = [r["score"] for r in doc["results"]]
    assert scores == sorted(scores, reverse=True)
    code, doc, _ = cli("search", str(root), "--like", "beach/beach_000.jpg", "--limit", "4")
    assert code == 0 and len(doc["results"]) == 4
    assert os.path.realpath(root / "beach" / "beach_000.jpg") not in [r["path"] for r in doc["results"]]


def test_errors_are_one_line_with_nonzero_exit(cli, tmp_path: Path, make_photos) -> None:
    code, _, err = cli("index", str(tmp_path / "missing"))
    assert code == 1 and err.count("\n") == 1 and "not found" in err
    root = make_photos(1)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("../../etc/passwd,beach\n")
    code, _, err = cli("train", str(root), "--head", "x", "--labels", str(bad_csv))
    assert code == 1 and err.count("\n") == 1 and "outside the folder" in err


def test_model_that_cannot_load_is_one_line_with_a_fix(tmp_path: Path, make_photos, capsys) -> None:
    root = make_photos(1)
    code = main(["index", str(root), "--model", str(tmp_path / "no-such-model"), "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "Traceback" not in err and "model" in err.lower()


def test_flag_wins_over_environment_which_wins_over_default(tmp_path: Path) -> None:
    env = {"PHOTOSORT_MODEL": "env/model", "PHOTOSORT_DEVICE": "cuda", "PHOTOSORT_CACHE_DIR": str(tmp_path)}
    assert Settings.resolve(environ=env).model == "env/model"
    assert Settings.resolve(environ=env).cache_path == tmp_path / "cache.db"
    assert Settings.resolve(environ=env).library_path == tmp_path / "library.db"
    assert Settings.resolve(model="flag/model", device="cpu", environ=env).model == "flag/model"
    assert Settings.resolve(model="flag/model", device="cpu", environ=env).device == "cpu"
    assert Settings.resolve(environ={}).model == "openai/clip-vit-base-patch32"


def test_engine_and_cli_never_import_qt() -> None:
    code = (
        "import sys, photosort.cli, photosort.core.engine, photosort.core.indexer, photosort.core.export;"
        "assert not any(m.startswith(('PySide6', 'shiboken6')) for m in sys.modules), 'Qt imported by the core'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_console_script_runs_help() -> None:
    result = subprocess.run([sys.executable, "-m", "photosort", "--help"], capture_output=True, text=True, check=True)
    for command in ("index", "sort", "train", "search", "export", "bench", "gui"):
        assert command in result.stdout


def _files(root: Path) -> dict[str, bytes]:
    """The photos under ``root``; a copy export's list of its copies (``.photosort-export``) is not one."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".photosort-export"}


def test_export_dry_run_writes_nothing_then_copy_exports_everything(cli, make_photos, tmp_path: Path) -> None:
    root = make_photos(2)
    (root / "broken.jpg").write_bytes(b"nope")
    before = _files(root)
    dest = tmp_path / "sorted"
    code, plan, _ = cli("export", str(root), str(dest), "--categories", "beach, night", "--threshold", "0", "--dry-run")
    assert code == 0 and not dest.exists()
    assert sum(plan["folders"].values()) == 10
    assert [s["path"] for s in plan["skipped"]] == [os.path.realpath(root / "broken.jpg")]
    code, done, _ = cli("export", str(root), str(dest), "--categories", "beach, night", "--threshold", "0")
    assert code == 0 and done["done"] == 10
    exported = _files(dest)
    assert len(exported) == 10 and set(exported) <= {f"{c}/{Path(n).name}" for c in ("beach", "night") for n in before}
    assert _files(root) == before  # copy never touches the originals


def test_export_move_then_undo_restores_every_photo(cli, make_photos, tmp_path: Path) -> None:
    root = make_photos(2)
    before = _files(root)
    dest = tmp_path / "sorted"
    code, done, _ = cli("export", str(root), str(dest), "--categories", "beach, night", "--threshold", "1",
                        "--mode", "move")
    assert code == 0 and done["done"] == 10
    assert _files(root) == {}
    assert [p.name for p in dest.iterdir()] == ["Unsure"]  # nobody is sure: nothing forced into a category
    code, undone, _ = cli("undo")
    assert code == 0 and undone["restored"] == 10
    assert _files(root) == before


def test_a_move_export_and_its_undo_keep_the_labels(cli, make_photos, tmp_path: Path) -> None:
    root = make_photos(3)
    labels = tmp_path / "labels.csv"
    labels.write_text("".join(f"{k}/{k}_000.jpg,{k}\n" for k in ("beach", "night", "forest")))
    assert cli("train", str(root), "--head", "kinds", "--labels", str(labels))[0] == 0
    dest = tmp_path / "sorted"
    code, done, _ = cli("export", str(root), str(dest), "--head", "kinds", "--mode", "move")
    assert code == 0 and done["done"] == 15
    code, doc, _ = cli("classifiers", "list")
    assert doc["classifiers"][0]["labels"] == 3
    code, _, _ = cli("index", str(root))  # the source folder is empty now: nothing may be forgotten
    code, _, _ = cli("index", str(dest))
    assert cli("classifiers", "list")[1]["classifiers"][0]["labels"] == 3
    assert cli("undo")[0] == 0
    code, doc, _ = cli("index", str(root))
    assert (doc["indexed"], doc["unchanged"]) == (0, 15), "put back with their vectors: nothing to index again"
    code, trained, _ = cli("train", str(root), "--head", "kinds", "--labels", str(labels))
    assert trained["labels"] == 3  # still the three labels, not six


def test_a_folder_where_the_cache_should_be_is_one_line_not_a_traceback(cli, make_photos, tmp_path: Path) -> None:
    root = make_photos(1)
    (tmp_path / "data" / "cache.db").mkdir(parents=True)
    code, _, err = cli("index", str(root))
    assert code == 1 and err.count("\n") == 1 and "is a folder" in err and "Traceback" not in err
    assert (tmp_path / "data" / "cache.db").is_dir()


def test_another_programs_database_as_the_cache_is_one_line_and_left_alone(cli, make_photos, tmp_path: Path) -> None:
    import sqlite3

    root = make_photos(1)
    foreign = tmp_path / "data" / "cache.db"
    foreign.parent.mkdir()
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.commit()
    conn.close()
    before = foreign.read_bytes()
    code, _, err = cli("index", str(root))
    assert code == 1 and err.count("\n") == 1 and "not photosort's cache" in err and "Traceback" not in err
    assert foreign.read_bytes() == before and not list(foreign.parent.glob("*damaged*"))


# ---- --target-accuracy: the confidence dial on the command line -----------------------------------
@pytest.fixture
def calibrated(cli, make_photos, tmp_path: Path) -> Path:
    """A folder of 30 photos whose classifier 'kinds' learned from 3 labels per kind (an accuracy estimate)."""
    root = make_photos(6)
    labels = tmp_path / "labels.csv"
    kinds = ("beach", "forest", "night", "document", "sunset")
    labels.write_text("path,label\n" + "".join(f"{k}/{k}_{i:03d}.jpg,{k}\n" for k in kinds for i in range(3)))
    code, trained, _ = cli("train", str(root), "--classifier", "kinds", "--labels", str(labels))
    assert code == 0 and trained["cross_validated_accuracy"] is not None
    return root


def test_sort_at_a_target_accuracy_says_how_many_are_filed_and_on_how_many_labels(cli, calibrated: Path) -> None:
    from photosort.core.calibration import EDGES

    for target in ("0.5", "0.95"):
        code, doc, _ = cli("sort", str(calibrated), "--classifier", "kinds", "--target-accuracy", target)
        assert code == 0
        filing = doc["auto_filing"]
        assert filing["target_accuracy"] == float(target) and filing["estimated_from_labels"] == 15
        assert set(filing["thresholds"]) == set(doc["classes"])
        assert all(t is None or float(t) in EDGES.round(6) for t in filing["thresholds"].values())
        assert filing["filed"] + filing["unsure"] == len(doc["photos"]) == 30
        assert filing["unsure"] == doc["counts"]["unsure"]
        assert all(p["category"] == Path(p["path"]).parent.name for p in doc["photos"] if p["labelled"])  # labels win
        for photo in doc["photos"]:
            if photo["category"] is not None and not photo["labelled"]:
                threshold = filing["thresholds"][photo["category"]]
                assert threshold is not None and photo["score"] >= threshold - 1e-4
    code, text, _ = cli("sort", str(calibrated), "--classifier", "kinds", "--target-accuracy", "0.95", as_json=False)
    assert code == 0
    assert (f"File automatically when at least 95 % likely right: {filing['filed']} filed, {filing['unsure']} to "
            "Unsure (estimated from 15 labels)") in text


def test_export_at_a_target_accuracy_plans_the_folders_sort_shows(cli, calibrated: Path, tmp_path: Path) -> None:
    code, doc, _ = cli("sort", str(calibrated), "--classifier", "kinds", "--target-accuracy", "0.9")
    code, plan, _ = cli("export", str(calibrated), str(tmp_path / "out"), "--classifier", "kinds",
                        "--target-accuracy", "0.9", "--dry-run")
    assert code == 0 and plan["auto_filing"] == doc["auto_filing"]
    expected = {("Unsure" if k == "unsure" else k): n for k, n in doc["counts"].items() if n}
    assert plan["folders"] == expected


def test_a_target_accuracy_that_cannot_apply_is_one_line_with_exit_code_2(cli, calibrated: Path) -> None:
    for args, says in ((("--classifier", "kinds", "--target-accuracy", "1.5"), "between 0 and 1"),
                       (("--classifier", "kinds", "--target-accuracy", "0"), "between 0 and 1"),
                       (("--categories", "beach, night", "--target-accuracy", "0.9"), "typed categories")):
        code, _, err = cli("sort", str(calibrated), *args)
        assert code == 2 and err.count("\n") == 1 and says in err and "Traceback" not in err, err
    with pytest.raises(SystemExit) as refused:  # argparse: the two rules do not go together
        cli("sort", str(calibrated), "--classifier", "kinds", "--target-accuracy", "0.9", "--threshold", "0.4")
    assert refused.value.code == 2


def test_a_classifier_without_an_estimate_is_refused_a_target_in_one_line(cli, make_photos, tmp_path: Path) -> None:
    root = make_photos(2)
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nbeach/beach_000.jpg,beach\nnight/night_000.jpg,night\n")  # one label each
    assert cli("train", str(root), "--classifier", "few", "--labels", str(labels))[0] == 0
    code, _, err = cli("export", str(root), str(tmp_path / "out"), "--classifier", "few", "--target-accuracy", "0.9")
    assert code == 2 and err.count("\n") == 1 and "no accuracy estimate yet" in err
    assert not (tmp_path / "out").exists()
