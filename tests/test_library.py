"""What the user sees of an open library: labels win everywhere, their data outlives the cache, old folders move over.

The photos are the conftest's synthetic kinds embedded by the tiny random CLIP; a few labels
sort them. The CLI runs in this process (``photosort.cli.main``) on the same data folder as
the ``engine`` fixture, so a test can ask the engine what the CLI left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photosort.core.cache import _SCHEMA_V1
from photosort.core.config import LEGACY_DB, Settings
from photosort.core.engine import Engine
from photosort.core.errors import StoreDamagedError, StoreError
from photosort.core.library import Library, Sorting

KINDS = ("beach", "night")


@pytest.fixture
def cli(settings: Settings, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, dict | None, str]]:
    """Run photosort on the ``settings`` fixture's model and data folder; returns (exit code, JSON or None, stderr)."""
    from photosort.cli import main

    def run(*args: str, data_dir: Path | None = None) -> tuple[int, dict | None, str]:
        code = main([*args, "--model", settings.model, "--device", "cpu", "--data-dir",
                     str(data_dir or settings.data_dir), "--json"])
        out, err = capsys.readouterr()
        return code, json.loads(out) if out.strip() else None, err

    return run


def one_line_error(err: str) -> bool:
    return err.startswith("photosort: error: ") and err.count("\n") == 1 and "Traceback" not in err


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("path,label\n" + "".join(f"{p},{label}\n" for p, label in rows))
    return path


def by_name(doc: dict) -> dict[str, dict]:
    return {Path(p["path"]).name: p for p in doc["photos"]}


def labels_by_path(engine: Engine, library: Library, classifier: str) -> dict[str, str]:
    """The classifier's labels as the user sees them: photo path -> class."""
    by_identity = engine.classifiers.labels(classifier)
    photos = library.photos
    return {path: by_identity[key] for path, key in zip(photos.paths, photos.keys, strict=True) if key in by_identity}


def labelled_library(engine: Engine, make_photos, n_per_kind: int = 4) -> tuple[Path, Library, dict[str, str]]:
    """An indexed folder with a trained classifier 'Kinds' and three labels per kind; returns its labels by path."""
    root = make_photos(n_per_kind, kinds=KINDS)
    engine.index(root)
    library = engine.open_library([root])
    engine.classifiers.create("Kinds", list(KINDS))
    library.set_labels("Kinds", {int(pid): Path(path).parent.name for pid, path in zip(library.photos.ids,
                                 library.photos.paths, strict=True) if not path.endswith("_003.jpg")})
    engine.classifiers.train("Kinds")
    return root, library, labels_by_path(engine, library, "Kinds")


# ---- labels win -------------------------------------------------------------------------------
MISLABELLED = "beach_003.jpg"  # a beach photo the user labels 'night': the classifier still says beach


@pytest.fixture
def disagreement(cli, engine: Engine, make_photos, tmp_path: Path) -> Path:
    """A folder whose classifier 'Kinds' predicts beach for beach_003.jpg, which the user labelled night."""
    root = make_photos(4, kinds=KINDS)
    rows = [(f"{k}/{k}_{i:03d}.jpg", k) for k in KINDS for i in range(3)] + [(f"beach/{MISLABELLED}", "night")]
    code, trained, _ = cli("train", str(root), "--classifier", "Kinds", "--labels", str(write_csv(tmp_path / "l.csv",
                                                                                                     rows)))
    assert code == 0 and trained["labels"] == 7
    result = engine.open_library([root]).sort(Sorting.by_classifier("Kinds"))
    row = [Path(p).name for p in result.photos.paths].index(MISLABELLED)
    assert result.classes[int(result.decision.predicted[row])] == "beach"  # the classifier disagrees with the label
    return root


@pytest.mark.parametrize("threshold", ["0.5", "1"])
def test_sort_by_classifier_puts_a_labelled_photo_where_its_label_says(cli, disagreement: Path, threshold: str) -> None:
    code, doc, _ = cli("sort", str(disagreement), "--classifier", "Kinds", "--threshold", threshold)
    assert code == 0
    photos = by_name(doc)
    assert (photos[MISLABELLED]["category"], photos[MISLABELLED]["score"], photos[MISLABELLED]["labelled"]) == (
        "night", 1.0, True)
    labelled = [p for p in doc["photos"] if p["labelled"]]
    assert len(labelled) == 7 and all(p["score"] == 1.0 for p in labelled)
    assert all(p["category"] == Path(p["path"]).parent.name for p in labelled if Path(p["path"]).name != MISLABELLED)
    if threshold == "1":  # a prediction needs certainty now; a label does not
        assert all(p["category"] is None or p["score"] == 1.0 for p in doc["photos"] if not p["labelled"])
    assert doc["counts"]["night"] == sum(p["category"] == "night" for p in doc["photos"])


def test_export_by_classifier_puts_a_labelled_photo_in_its_labels_folder(cli, disagreement: Path,
                                                                        tmp_path: Path) -> None:
    dest = tmp_path / "sorted"
    code, plan, _ = cli("export", str(disagreement), str(dest), "--classifier", "Kinds", "--dry-run")
    assert code == 0 and not dest.exists()
    planned = {Path(m["source"]).name: Path(m["destination"]).parent.name for m in plan["moves"]}
    assert planned[MISLABELLED] == "night"
    code, done, _ = cli("export", str(disagreement), str(dest), "--head", "Kinds")  # the old flag name
    assert code == 0 and done["done"] == 8
    assert (dest / "night" / MISLABELLED).is_file() and not (dest / "beach" / MISLABELLED).exists()
    exported = {p.relative_to(dest).as_posix() for p in dest.rglob("*.jpg")}
    assert {f"night/night_{i:03d}.jpg" for i in range(3)} | {f"beach/beach_{i:03d}.jpg" for i in range(3)} <= exported


def test_the_library_sorts_labelled_photos_by_their_label(engine: Engine, make_photos) -> None:
    root, library, labels = labelled_library(engine, make_photos)
    night = library.photos.paths.index(os.path.realpath(root / "night" / "night_000.jpg"))
    library.set_labels("Kinds", {int(library.photos.ids[night]): "beach"})  # the user changes their mind
    result = library.sort(Sorting.by_classifier("Kinds"))
    as_labelled = library.labels("Kinds")
    assert list(result.decision.labelled) == list(as_labelled >= 0) and int((as_labelled >= 0).sum()) == 6
    for i, path in enumerate(result.photos.paths):
        if as_labelled[i] >= 0:
            assert result.category_of(i) == ("beach" if i == night else labels[path])
            assert result.decision.score[i] == 1.0
        else:
            predicted = int(result.decision.predicted[i])
            assert result.category_of(i) == (result.classes[predicted] if predicted >= 0 else None)
    assert result.counts()["beach"] == 4 + sum(result.category_of(i) == "beach" for i in np.flatnonzero(as_labelled < 0))
    assert result.to_json()["photos"][night] == {"path": result.photos.paths[night], "category": "beach", "score": 1.0,
                                                "labelled": True}
    library.set_labels("Kinds", {int(library.photos.ids[night]): None})  # un-labelled: the classifier decides
    again = library.sort(Sorting.by_classifier("Kinds"))
    assert not again.decision.labelled[night] and again.category_of(night) == "night"


def test_a_label_changed_without_training_is_trained_on_before_the_next_sort(engine: Engine, make_photos) -> None:
    """The app killed between a click and its training: the same number of labels, one of them different."""
    root, library, _labels = labelled_library(engine, make_photos)
    stale = engine.classifiers.stored("Kinds").metrics["labels_digest"]
    night = library.photos.paths.index(os.path.realpath(root / "night" / "night_000.jpg"))
    library.set_labels("Kinds", {int(library.photos.ids[night]): "beach"})  # 6 labels before and after
    assert engine.classifiers.stored("Kinds").metrics["labels_digest"] == stale  # nothing trained yet
    library.sort(Sorting.by_classifier("Kinds"))
    assert engine.classifiers.stored("Kinds").metrics["labels_digest"] != stale  # trained on the new label first
    library.sort(Sorting.by_classifier("Kinds"))
    retrained = engine.classifiers.stored("Kinds").metrics
    library.sort(Sorting.by_classifier("Kinds"))
    assert engine.classifiers.stored("Kinds").metrics == retrained  # unchanged labels: not trained again


# ---- the user's data is apart from the cache --------------------------------------------------
def assert_everything_is_back(engine: Engine, root: Path, labels: dict[str, str]) -> None:
    library = engine.open_library([root])
    assert engine.classifiers.names() == ["Kinds"]
    assert labels_by_path(engine, library, "Kinds") == labels
    report = engine.classifiers.train("Kinds")
    assert report.labels == len(labels) and report.missing == []
    result = library.sort(Sorting.by_classifier("Kinds"), threshold=1.0)
    assert {result.photos.paths[i]: result.category_of(i) for i in np.flatnonzero(result.decision.labelled)} == labels


def test_clearing_the_cache_keeps_every_classifier_and_label(engine: Engine, make_photos) -> None:
    root, _, labels = labelled_library(engine, make_photos)
    deleted = engine.clear_cache()
    assert engine.settings.cache_path in deleted and engine.settings.library_path not in deleted
    assert not engine.settings.cache_path.exists() and engine.settings.library_path.is_file()
    assert engine.index(root).indexed == 8  # derived data: made again
    assert_everything_is_back(engine, root, labels)


def test_deleting_cache_db_by_hand_keeps_every_classifier_and_label(settings: Settings, engine: Engine,
                                                                    make_photos) -> None:
    root, _, labels = labelled_library(engine, make_photos)
    engine.close()
    for path in settings.folder.glob("cache.db*"):
        path.unlink()
    again = Engine(settings)
    try:
        assert again.index(root).indexed == 8
        assert_everything_is_back(again, root, labels)
    finally:
        again.close()


def test_a_damaged_cache_is_moved_aside_and_the_classifiers_survive(settings: Settings, engine: Engine, cli,
                                                                    make_photos) -> None:
    root, _, labels = labelled_library(engine, make_photos)
    engine.close()
    for path in settings.folder.glob("cache.db-*"):
        path.unlink()
    settings.cache_path.write_bytes(b"\0garbage" * 4096)
    code, doc, err = cli("index", str(root))
    assert code == 0 and doc["indexed"] == 8
    assert "moved aside" in err and "classifiers and labels are kept" in err
    assert len(list(settings.folder.glob("cache.db.damaged-*"))) == 1
    again = Engine(settings)
    try:
        assert_everything_is_back(again, root, labels)
    finally:
        again.close()


def test_a_damaged_library_is_refused_and_left_byte_identical(settings: Settings, engine: Engine, cli,
                                                              make_photos) -> None:
    labelled_library(engine, make_photos)
    engine.close()
    for path in settings.folder.glob("library.db-*"):
        path.unlink()
    settings.library_path.write_bytes(b"\0damaged" * 4096)
    before = {p.name: p.read_bytes() for p in settings.folder.iterdir() if p.is_file()}
    again = Engine(settings)
    try:
        with pytest.raises(StoreDamagedError, match=r"library\.db"):
            again.classifiers.names()
    finally:
        again.close()
    code, _, err = cli("classifiers", "list")
    assert code == 1 and one_line_error(err) and "damaged" in err
    assert {p.name: p.read_bytes() for p in settings.folder.iterdir() if p.is_file()} == before


# ---- a photosort 0.1 data folder --------------------------------------------------------------
def make_legacy_folder(engine: Engine, make_photos) -> tuple[Path, dict[str, str], np.ndarray, int]:
    """A data folder as photosort 0.1 left it: one photosort.db (schema 1, no application id) with heads and labels.

    Photos, vectors and thumbnails are those a real index run wrote; the head is a real trained
    classifier. Returns the folder of photos, the labels by path, the probabilities and the embeddings count.
    """
    root, library, labels = labelled_library(engine, make_photos)
    probabilities = library.sort(Sorting.by_classifier("Kinds")).decision.probabilities
    stored = engine.classifiers.stored("Kinds")
    path_of = dict(zip(library.photos.paths, library.photos.ids.tolist(), strict=True))
    folder = engine.settings.folder
    engine.close()
    legacy = folder / LEGACY_DB
    conn = sqlite3.connect(legacy)
    conn.executescript(_SCHEMA_V1)
    conn.execute("PRAGMA user_version=1")
    conn.execute("ATTACH DATABASE ? AS new", (str(folder / "cache.db"),))
    v1_photo_columns = "id, path, size, mtime_ns, fingerprint, width, height, error, added"  # 0.1 had no later ones
    conn.execute(f"INSERT INTO main.photos SELECT {v1_photo_columns} FROM new.photos")
    for table in ("thumbs", "models", "embeddings", "text_vectors", "settings"):
        conn.execute(f"INSERT INTO main.{table} SELECT * FROM new.{table}")
    conn.execute("INSERT INTO heads(id, name, model_key, classes, weights, metrics, created, updated) "
                 "VALUES (5, ?, ?, ?, ?, ?, 0, 0)", (stored.name, stored.model_key, json.dumps(list(stored.classes)),
                                                    stored.weights, json.dumps(stored.metrics)))
    conn.executemany("INSERT INTO labels(head_id, photo_id, label) VALUES (5, ?, ?)",
                     [(path_of[path], label) for path, label in labels.items()])
    conn.commit()
    embedded = conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    conn.execute("DETACH DATABASE new")
    conn.close()
    for path in [*folder.glob("cache.db*"), *folder.glob("library.db*")]:
        path.unlink()
    return root, labels, probabilities, embedded


def test_a_photosort_0_1_folder_is_split_losing_nothing(settings: Settings, engine: Engine, make_photos) -> None:
    root, labels, probabilities, embedded = make_legacy_folder(engine, make_photos)
    folder = settings.folder
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == [LEGACY_DB]

    first = Engine(settings)
    try:
        assert first.classifiers.names() == ["Kinds"]
        library = first.open_library([root])
        assert labels_by_path(first, library, "Kinds") == labels
        np.testing.assert_array_equal(library.sort(Sorting.by_classifier("Kinds")).decision.probabilities,
                                      probabilities)
        report = first.index(root)
        assert (report.indexed, report.unchanged) == (0, 8)  # every vector came along: nothing to embed again
    finally:
        first.close()
    assert not (folder / LEGACY_DB).exists()
    conn = sqlite3.connect(folder / "cache.db")
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert not {"heads", "labels"} & tables
        assert conn.execute("SELECT count(*) FROM embeddings").fetchone()[0] == embedded
    finally:
        conn.close()

    library_bytes = (folder / "library.db").read_bytes()
    second = Engine(settings)  # a second open changes nothing
    try:
        assert second.classifiers.names() == ["Kinds"]
        assert labels_by_path(second, second.open_library([root]), "Kinds") == labels
        assert second.index(root).indexed == 0
    finally:
        second.close()
    assert (folder / "library.db").read_bytes() == library_bytes
    assert not (folder / LEGACY_DB).exists()


# ---- labels follow the photo's content ---------------------------------------------------------
def test_a_move_export_and_its_undo_reindex_nothing_and_keep_every_label(cli, engine: Engine, make_photos,
                                                                         tmp_path: Path) -> None:
    root, _library, labels = labelled_library(engine, make_photos)
    code, moved, _err = cli("export", str(root), str(tmp_path / "sorted"), "--classifier", "Kinds", "--mode", "move")
    assert code == 0 and moved["done"] == 8
    code, undone, _err = cli("undo")
    assert code == 0 and undone["restored"] == 8
    code, again, _err = cli("index", str(root))
    assert code == 0 and (again["indexed"], again["unchanged"]) == (0, 8), "put back: the same photos, same vectors"
    assert labels_by_path(engine, engine.open_library([root]), "Kinds") == labels


def test_a_photo_renamed_and_moved_on_disk_keeps_its_label(engine: Engine, make_photos) -> None:
    root, _, labels = labelled_library(engine, make_photos)
    old = root / "beach" / "beach_001.jpg"
    new = root / "holidays" / "2024" / "IMG_0001.jpg"
    new.parent.mkdir(parents=True)
    old.rename(new)
    report = engine.index(root)
    assert report.renamed == 1 and report.indexed == 0
    expected = {(os.path.realpath(new) if p == os.path.realpath(old) else p): label for p, label in labels.items()}
    assert labels_by_path(engine, engine.open_library([root]), "Kinds") == expected
    assert expected[os.path.realpath(new)] == "beach"


def describe_in_another_app(photo: Path, text: str) -> None:
    """What a photo manager does when it writes a description into the file: the same picture, new bytes."""
    with Image.open(photo) as image:
        image.load()
        exif = image.getexif()
        exif[0x010E] = text  # ImageDescription
        image.save(photo, exif=exif, quality=92)


def test_a_photo_saved_over_in_place_keeps_its_label(engine: Engine, make_photos) -> None:
    root, _, labels = labelled_library(engine, make_photos)
    photo = root / "beach" / "beach_001.jpg"
    describe_in_another_app(photo, "Holiday 2024, described in another app")
    assert engine.index(root).indexed == 1
    assert labels_by_path(engine, engine.open_library([root]), "Kinds") == labels, "every label where it was"
    trained = engine.classifiers.train("Kinds")
    assert trained.missing == [] and trained.labels == len(labels), "no label left behind on the old content"
    engine.index(root)
    assert labels_by_path(engine, engine.open_library([root]), "Kinds") == labels, "indexing again changes nothing"


def test_a_photo_saved_over_in_place_and_its_untouched_copy_both_keep_the_label(engine: Engine,
                                                                               make_photos) -> None:
    root, _, labels = labelled_library(engine, make_photos)
    photo, copy = root / "beach" / "beach_001.jpg", root / "copies" / "beach_001.jpg"
    copy.parent.mkdir()
    shutil.copy2(photo, copy)
    engine.index(root)
    describe_in_another_app(photo, "Holiday 2024, described in another app")
    assert engine.index(root).indexed == 1
    after = labels_by_path(engine, engine.open_library([root]), "Kinds")
    assert after[os.path.realpath(photo)] == "beach" and after[os.path.realpath(copy)] == "beach"
    assert {p: label for p, label in after.items() if p != os.path.realpath(copy)} == labels, "nothing else changed"


def test_a_label_survives_the_cache_being_cleared_while_its_photo_moved(engine: Engine, make_photos) -> None:
    """Nothing of the old path is left to go by: the label is found by the photo's content."""
    root, _, labels = labelled_library(engine, make_photos)
    engine.clear_cache()
    old, new = root / "night" / "night_002.jpg", root / "renamed.jpg"
    old.rename(new)
    assert engine.index(root).indexed == 8
    library = engine.open_library([root])
    moved = labels_by_path(engine, library, "Kinds")
    assert moved[os.path.realpath(new)] == "night" and os.path.realpath(old) not in moved
    assert len(moved) == len(labels)


# ---- settings ---------------------------------------------------------------------------------
def test_the_model_saved_in_settings_is_the_one_every_command_uses(settings: Settings, make_photos, tmp_path: Path,
                                                                   capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from photosort.cli import main

    root = make_photos(1, kinds=KINDS)
    data = ["--data-dir", str(settings.data_dir), "--json"]
    assert main(["settings", "--model", settings.model, "--device", "cpu", "--save", *data]) == 0
    capsys.readouterr()
    assert main(["index", str(root), *data]) == 0  # no --model: the saved one
    assert json.loads(capsys.readouterr().out)["model"] == settings.model
    monkeypatch.setenv("PHOTOSORT_MODEL", str(tmp_path / "no-such-model"))  # the environment beats the saved choice
    assert main(["index", str(root), *data]) == 1
    assert one_line_error(capsys.readouterr().err)
    assert main(["index", str(root), "--model", settings.model, *data]) == 0  # and a flag beats the environment
    assert json.loads(capsys.readouterr().out)["unchanged"] == 2


# ---- failures the user can act on ---------------------------------------------------------------
def test_another_programs_database_as_the_cache_is_refused_and_left_alone(settings: Settings, cli,
                                                                          make_photos) -> None:
    root = make_photos(1, kinds=KINDS)
    settings.folder.mkdir(parents=True)
    conn = sqlite3.connect(settings.cache_path)
    conn.execute("CREATE TABLE invoices (number INTEGER, total REAL)")
    conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    conn.commit()
    conn.close()
    before = settings.cache_path.read_bytes()
    code, _, err = cli("index", str(root))
    assert code == 1 and one_line_error(err) and "not photosort's cache" in err
    assert settings.cache_path.read_bytes() == before
    assert not list(settings.folder.glob("cache.db.damaged-*"))
    with pytest.raises(StoreError, match="another program"):
        Engine(settings).cache  # noqa: B018


def test_a_data_folder_that_is_a_file_is_one_line_and_exit_1(cli, make_photos, tmp_path: Path) -> None:
    root = make_photos(1, kinds=KINDS)
    not_a_folder = tmp_path / "data-file"
    not_a_folder.write_text("I am a file")
    for args in (("index", str(root)), ("classifiers", "list"), ("settings", "--save")):
        code, out, err = cli(*args, data_dir=not_a_folder)
        assert (code, out) == (1, None) and one_line_error(err), (args, err)
    assert not_a_folder.read_text() == "I am a file"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions mean nothing to root")
def test_a_read_only_data_folder_is_one_line_and_exit_1(settings: Settings, cli, make_photos) -> None:
    root = make_photos(1, kinds=KINDS)
    settings.folder.mkdir(parents=True)
    settings.folder.chmod(0o500)
    try:
        code, _, err = cli("index", str(root))
    finally:
        settings.folder.chmod(0o700)
    assert code == 1 and one_line_error(err)


def test_importing_a_fifo_returns_at_once_with_one_line(settings: Settings, tmp_path: Path) -> None:
    """A FIFO nobody writes to would block a plain open() forever; the CLI runs in a subprocess to prove it does not."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    fifo = tmp_path / "trips.head"
    os.mkfifo(fifo)
    result = subprocess.run([sys.executable, "-m", "photosort", "heads", "import", str(fifo), "--model",
                             settings.model, "--data-dir", str(settings.data_dir)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and one_line_error(result.stderr), result.stderr
    assert "not a regular file" in result.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # left as it was
