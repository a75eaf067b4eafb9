"""Classifier heads through the engine: training from labels, the zero-shot prior, storage, files, CLI.

Photos are the conftest's synthetic kinds, embedded by the tiny random CLIP: its zero-shot
answers are at chance, but the kinds differ in colour, so a few labels sort them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from photosort.core.classifier import FEW_LABELS, Classifier
from photosort.core.engine import Engine
from photosort.core.errors import BadFileError, ClassifierError, PhotosortError
from photosort.core.library import Library, Sorting
from photosort.core.zeroshot import Category, parse_categories

KINDS = ["beach", "forest", "night", "document", "sunset"]


@pytest.fixture
def library(engine: Engine, make_photos) -> tuple[Path, dict[str, list[int]]]:
    """An indexed folder of 12 photos per kind, and the photo ids of each kind in path order."""
    root = make_photos(n_per_kind=12)
    engine.index(root)
    photos = engine.embeddings(root)
    by_kind: dict[str, list[int]] = {k: [] for k in KINDS}
    for pid, path in zip(photos.ids, photos.paths, strict=True):
        by_kind[Path(path).parent.name].append(int(pid))
    return root, by_kind


def kind_of(path: str) -> str:
    return Path(path).parent.name


def opened(engine: Engine, root: Path) -> Library:
    return engine.open_library([root])


def probabilities(engine: Engine, root: Path, classifier: str) -> np.ndarray:
    return opened(engine, root).sort(Sorting.by_classifier(classifier)).decision.probabilities


def accuracy(engine: Engine, root: Path, classifier: str, exclude: set[int] = frozenset()) -> float:
    """Share of the photos (but ``exclude``) whose predicted class, unsure threshold aside, is their kind."""
    result = opened(engine, root).sort(Sorting.by_classifier(classifier), threshold=0.0)
    hits = [result.category_of(i) == kind_of(p) for i, (pid, p) in enumerate(zip(result.photos.ids,
            result.photos.paths, strict=True)) if int(pid) not in exclude]
    return float(np.mean(hits))


def label_first(engine: Engine, root: Path, classifier: str, by_kind: dict[str, list[int]], per_kind: int) -> set[int]:
    labels = {pid: kind for kind, ids in by_kind.items() for pid in ids[:per_kind]}
    opened(engine, root).set_labels(classifier, labels)
    return set(labels)


def labels_by_id(engine: Engine, root: Path, classifier: str) -> dict[int, str]:
    """The classifier's labels as photo id -> class, for the photos of ``root``."""
    by_identity = engine.classifiers.labels(classifier)
    photos = opened(engine, root).photos
    return {int(pid): by_identity[key] for pid, key in zip(photos.ids, photos.keys, strict=True) if key in by_identity}


def store_for_another_model(engine: Engine, head: Classifier) -> None:
    """Store ``head`` as if a library of another model had made it (its file and its record say so)."""
    head.model_key = "openai/clip-vit-large-patch14|exact"
    stored = engine.classifiers.stored(head.name)
    engine.user.save_classifier(stored.name, head.model_key, head.classes, head.to_bytes(), stored.metrics)


# ---- learning ---------------------------------------------------------------------------------
def test_head_trained_on_three_labels_per_kind_sorts_the_rest(engine: Engine, library) -> None:
    root, by_kind = library
    engine.classifiers.create("Kinds", KINDS)
    labelled = label_first(engine, root, "Kinds", by_kind, 3)
    report = engine.classifiers.train("Kinds")
    assert report.labels == 15 and report.per_class == {k: 3 for k in KINDS}
    assert report.accuracy is not None and report.accuracy >= 0.9
    assert accuracy(engine, root, "Kinds", exclude=labelled) >= 0.95


@pytest.mark.slow
def test_accuracy_never_drops_as_labels_are_added(engine: Engine, library) -> None:
    """0, 1, 3 and 10 labels per kind, 5 random draws each, scored on the photos left unlabelled."""
    root, by_kind = library
    engine.classifiers.create("Kinds", KINDS)
    lib = opened(engine, root)
    means = []
    for per_kind in (0, 1, 3, 10):
        scores = []
        for seed in range(5):
            rng = np.random.default_rng(seed)
            chosen = {int(pid): kind for kind, ids in by_kind.items() for pid in rng.choice(ids, per_kind, replace=False)}
            engine.classifiers.set_labels("Kinds", dict.fromkeys(engine.classifiers.labels("Kinds")))  # clear
            lib.set_labels("Kinds", chosen)
            engine.classifiers.train("Kinds")
            scores.append(accuracy(engine, root, "Kinds", exclude=set(chosen)))
        means.append(float(np.mean(scores)))
    assert means == sorted(means), means
    assert means[1] >= 0.9 > means[0], means  # one label per kind already sorts; zero-shot is at chance here


def test_prior_only_head_predicts_exactly_like_the_typed_categories(engine: Engine, library) -> None:
    root, _ = library
    categories = parse_categories("beach, forest, night=a photo taken at night, document, sunset")
    head = engine.classifiers.create("Typed", categories)
    lib = opened(engine, root)
    zero_shot = lib.sort(Sorting.by_categories(categories), threshold=0.0)
    by_head = lib.sort(Sorting.by_classifier("Typed"), threshold=0.0)
    np.testing.assert_allclose(by_head.decision.probabilities, zero_shot.decision.probabilities, atol=1e-5)
    assert list(by_head.decision.best) == list(zero_shot.decision.best)
    assert head.prompts == [None, None, "a photo taken at night", None, None]


def test_head_from_categories_uses_their_prompts_for_the_prior(engine: Engine) -> None:
    with_prompt = engine.classifiers.create("A", [Category("pets", "a photo of a cat or a dog"), Category("cars")])
    names_only = engine.classifiers.create("B", ["pets", "cars"])
    expected = engine.class_vectors([Category("pets", "a photo of a cat or a dog")])[0]
    np.testing.assert_allclose(with_prompt.prior[0], expected, atol=1e-6)
    assert not np.allclose(with_prompt.prior[0], names_only.prior[0])
    assert np.allclose(with_prompt.prior[1], names_only.prior[1])


def test_labels_outweigh_a_prior_that_is_wrong(engine: Engine, library) -> None:
    """Typed prompts that describe the wrong kinds: labels must still win once there are a few."""
    root, by_kind = library
    misleading = [Category(kind, f"a photo of a {other}") for kind, other in zip(KINDS, KINDS[1:] + KINDS[:1], strict=True)]
    engine.classifiers.create("Wrong", misleading)
    labelled = label_first(engine, root, "Wrong", by_kind, 3)
    engine.classifiers.train("Wrong")
    assert accuracy(engine, root, "Wrong", exclude=labelled) >= 0.95
    assert engine.classifiers.load("Wrong").prior_weight < 1.0


def test_train_report_counts_labels_and_flags_classes_with_too_few(engine: Engine, library) -> None:
    root, by_kind = library
    engine.classifiers.create("Kinds", KINDS)
    counts = {"beach": 5, "forest": 3, "night": 2, "document": 1, "sunset": 0}
    opened(engine, root).set_labels("Kinds", {pid: k for k, n in counts.items() for pid in by_kind[k][:n]})
    report = engine.classifiers.train("Kinds")
    assert report.per_class == counts
    assert report.few_labels == ["night", "document", "sunset"]
    assert all(counts[k] < FEW_LABELS for k in report.few_labels)
    assert report.accuracy is None  # 'document' has a single label: too few to cross-validate honestly
    assert report.to_json()["few_labels"] == ["night", "document", "sunset"]
    assert report.missing == []


def test_train_report_names_labelled_photos_that_are_not_indexed(engine: Engine, library) -> None:
    root, by_kind = library
    engine.classifiers.create("Kinds", KINDS)
    label_first(engine, root, "Kinds", by_kind, 2)
    engine.classifiers.set_labels("Kinds", {"not-indexed-identity": "beach"}, {"not-indexed-identity": "/gone/x.jpg"})
    report = engine.classifiers.train("Kinds")
    assert report.labels == 10 and report.missing == ["/gone/x.jpg"]


def test_training_is_deterministic(engine: Engine, library) -> None:
    root, by_kind = library
    engine.classifiers.create("Kinds", KINDS)
    label_first(engine, root, "Kinds", by_kind, 4)
    first = engine.classifiers.train("Kinds"), engine.classifiers.load("Kinds")
    second = engine.classifiers.train("Kinds"), engine.classifiers.load("Kinds")
    assert first[0] == second[0]
    for key in ("w1", "b1", "w2", "b2"):
        np.testing.assert_array_equal(getattr(first[1], key), getattr(second[1], key))


def test_labels_must_be_classes_of_the_head(engine: Engine, library) -> None:
    root, by_kind = library
    engine.classifiers.create("Kinds", KINDS)
    lib = opened(engine, root)
    with pytest.raises(ClassifierError, match="not a class"):
        lib.set_labels("Kinds", {by_kind["beach"][0]: "mountains"})
    assert engine.classifiers.labels("Kinds") == {}  # nothing of a refused batch is kept
    lib.set_labels("Kinds", {by_kind["beach"][0]: "BEACH"})
    assert labels_by_id(engine, root, "Kinds") == {by_kind["beach"][0]: "beach"}
    lib.set_labels("Kinds", {by_kind["beach"][0]: None})
    assert engine.classifiers.labels("Kinds") == {}


def test_a_classifier_trains_again_when_its_labels_changed_since(engine: Engine, library) -> None:
    """The app may be closed between a click and the next training: using the classifier trains it first."""
    root, by_kind = library
    engine.classifiers.create("Kinds", KINDS)
    labelled = label_first(engine, root, "Kinds", by_kind, 3)  # labelled, never trained
    assert engine.classifiers.stored("Kinds").trained_on == 0
    assert accuracy(engine, root, "Kinds", exclude=labelled) >= 0.95
    assert engine.classifiers.stored("Kinds").trained_on == 15


# ---- label these next -------------------------------------------------------------------------
def test_least_sure_skips_labelled_photos_and_puts_ambiguous_ones_first(engine: Engine, make_photos,
                                                                         tmp_path: Path) -> None:
    from photo_factory import draw_photo
    from PIL import Image

    root = make_photos(n_per_kind=10, kinds=("beach", "sunset"), folder=tmp_path / "two")
    blend = Image.blend(draw_photo("beach", seed=50), draw_photo("sunset", seed=50), 0.5)
    blend.save(root / "zz_blend.jpg", quality=90)
    engine.index(root)
    lib = opened(engine, root)
    photos = lib.photos
    blend_id = engine.cache.photo_id_for_path(os.path.realpath(root / "zz_blend.jpg"))
    engine.classifiers.create("Two", ["beach", "sunset"], use_prior=False)
    labelled = {int(pid): kind_of(p) for pid, p in zip(photos.ids, photos.paths, strict=True)
                if kind_of(p) != "two" and p.endswith(("_000.jpg", "_001.jpg", "_002.jpg"))}
    lib.set_labels("Two", labelled)
    engine.classifiers.train("Two")

    ranked = lib.least_sure("Two", limit=100)
    assert not set(ranked) & set(labelled)
    assert len(ranked) == len(photos) - len(labelled)
    result = lib.sort(Sorting.by_classifier("Two"))
    row_of = result.photos.index_of()
    margins = [abs(float(np.subtract(*result.decision.probabilities[row_of[pid]]))) for pid in ranked]
    assert margins == sorted(margins)
    assert ranked[0] == blend_id
    assert lib.least_sure("Two", limit=5) == ranked[:5]


# ---- storage ----------------------------------------------------------------------------------
def test_classifiers_and_labels_survive_a_restart(settings, library, engine: Engine) -> None:
    root, by_kind = library
    engine.classifiers.create("Kinds", KINDS)
    label_first(engine, root, "Kinds", by_kind, 3)
    engine.classifiers.train("Kinds")
    before = probabilities(engine, root, "Kinds")
    labels = engine.classifiers.labels("Kinds")
    engine.close()

    again = Engine(settings)
    try:
        assert again.classifiers.names() == ["Kinds"]
        assert again.classifiers.labels("Kinds") == labels
        np.testing.assert_array_equal(probabilities(again, root, "Kinds"), before)
        summary = again.classifiers.summaries()[0]
        assert (summary.name, summary.labels, summary.for_this_model) == ("Kinds", 15, True)
    finally:
        again.close()


def test_rename_keeps_labels_and_weights(engine: Engine, library) -> None:
    root, by_kind = library
    engine.classifiers.create("Kinds", KINDS)
    label_first(engine, root, "Kinds", by_kind, 3)
    engine.classifiers.train("Kinds")
    labels, before = engine.classifiers.labels("Kinds"), probabilities(engine, root, "Kinds")
    assert engine.classifiers.rename("kinds", "Scenes") == "Scenes"
    assert engine.classifiers.names() == ["Scenes"]
    assert engine.classifiers.labels("Scenes") == labels
    assert engine.classifiers.load("Scenes").name == "Scenes"
    np.testing.assert_array_equal(probabilities(engine, root, "Scenes"), before)
    engine.classifiers.train("Scenes")
    assert engine.classifiers.names() == ["Scenes"]


def test_rename_refuses_a_taken_name_but_allows_a_change_of_case(engine: Engine) -> None:
    engine.classifiers.create("Trips", ["beach", "city"])
    engine.classifiers.create("Pets", ["cat", "dog"])
    with pytest.raises(ClassifierError, match="already exists"):
        engine.classifiers.rename("Trips", "pets")
    with pytest.raises(ClassifierError, match="No classifier"):
        engine.classifiers.rename("Nope", "Other")
    with pytest.raises(ClassifierError, match="needs a name"):
        engine.classifiers.rename("Trips", "  ")
    engine.classifiers.rename("Trips", "TRIPS")
    assert engine.classifiers.names() == ["Pets", "TRIPS"]


def test_unique_name_counts_up_past_names_taken_in_any_case(engine: Engine) -> None:
    engine.classifiers.create("Trips", ["beach", "city"])
    engine.classifiers.create("trips (2)", ["beach", "city"])
    assert engine.classifiers.unique_name("TRIPS") == "TRIPS (3)"
    assert engine.classifiers.unique_name("Pets") == "Pets"


def test_delete_removes_the_head_and_its_labels(engine: Engine, library) -> None:
    root, by_kind = library
    engine.classifiers.create("Kinds", KINDS)
    label_first(engine, root, "Kinds", by_kind, 2)
    engine.classifiers.delete("KINDS")
    assert engine.classifiers.names() == []
    with pytest.raises(ClassifierError, match="No classifier named 'Kinds'"):
        engine.classifiers.load("Kinds")
    engine.classifiers.create("Kinds", KINDS)
    assert engine.classifiers.labels("Kinds") == {}
    with pytest.raises(ClassifierError, match="No classifier"):
        engine.classifiers.delete("Other")


def test_a_stored_head_of_another_model_is_refused_then_trained_again_here(engine: Engine, library) -> None:
    root, by_kind = library
    head = engine.classifiers.create("Kinds", parse_categories("beach, forest, night=a dark photo, document, sunset"))
    labelled = label_first(engine, root, "Kinds", by_kind, 3)
    store_for_another_model(engine, head)
    with pytest.raises(ClassifierError, match="made for another model"):
        engine.classifiers.load("Kinds")
    with pytest.raises(ClassifierError, match="made for another model"):  # training it here is the user's choice
        opened(engine, root).sort(Sorting.by_classifier("Kinds"))
    assert engine.classifiers.summaries()[0].for_this_model is False
    assert engine.classifiers.stored("Kinds").model_key != engine.model_key
    engine.classifiers.train("Kinds")
    retrained = engine.classifiers.load("Kinds")
    assert retrained.model_key == engine.model_key and retrained.prompts[2] == "a dark photo"
    assert engine.classifiers.summaries()[0].for_this_model is True
    assert accuracy(engine, root, "Kinds", exclude=labelled) >= 0.95


# ---- files ------------------------------------------------------------------------------------
def test_export_import_round_trip_gives_identical_predictions(engine: Engine, library, tmp_path) -> None:
    root, by_kind = library
    engine.classifiers.create("Kinds", parse_categories("beach, forest, night=a dark photo, document, sunset"))
    label_first(engine, root, "Kinds", by_kind, 3)
    engine.classifiers.train("Kinds")
    path = engine.classifiers.export_file("Kinds", tmp_path / "kinds.head")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    imported = engine.classifiers.import_file(path, name="Kinds copy")
    assert imported.name == "Kinds copy" and imported.prompts[2] == "a dark photo"
    np.testing.assert_array_equal(probabilities(engine, root, "Kinds copy"), probabilities(engine, root, "Kinds"))
    with pytest.raises(ClassifierError, match=r"already exists.*--name"):
        engine.classifiers.import_file(path)


def test_export_never_overwrites_unless_asked(engine: Engine, tmp_path) -> None:
    engine.classifiers.create("Trips", ["beach", "city"])
    target = tmp_path / "trips.head"
    target.write_bytes(b"precious")
    with pytest.raises(ClassifierError, match="already exists"):
        engine.classifiers.export_file("Trips", target)
    assert target.read_bytes() == b"precious"
    engine.classifiers.export_file("Trips", target, overwrite=True)
    assert Classifier.from_bytes(target.read_bytes()).classes == ["beach", "city"]
    with pytest.raises(PhotosortError, match="Cannot write") as error:
        engine.classifiers.export_file("Trips", tmp_path / "missing-folder" / "x.head")
    assert "\n" not in str(error.value)


def test_import_refuses_a_head_made_for_another_model(engine: Engine, tmp_path) -> None:
    head = engine.classifiers.create("Trips", ["beach", "city"])
    head.model_key = "openai/clip-vit-large-patch14|exact"
    path = tmp_path / "other.head"
    path.write_bytes(head.to_bytes())
    with pytest.raises(ClassifierError, match="made for another model"):
        engine.classifiers.import_file(path, name="Other")
    assert engine.classifiers.names() == ["Trips"]


@pytest.mark.parametrize("corrupt", ["random", "truncated", "huge_header", "wrong_shape", "wrong_hidden", "nan",
                                     "huge_value", "newer", "older", "linear_v2", "not_json_meta", "missing", "directory",
                                     "fifo"])
def test_import_refuses_a_damaged_file_with_a_message(engine: Engine, tmp_path, corrupt: str) -> None:
    from safetensors.numpy import save

    good = engine.classifiers.create("Trips", ["beach", "city"])
    data = good.to_bytes()
    meta = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])["__metadata__"]
    tensors = {"w1": good.w1, "b1": good.b1, "w2": good.w2, "b2": good.b2, "center": good.center, "prior": good.prior}
    path = tmp_path / "bad.head"
    if corrupt == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    elif corrupt == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif corrupt == "huge_header":
        path.write_bytes((10**12).to_bytes(8, "little") + data[8:])
    elif corrupt == "wrong_shape":
        path.write_bytes(save({**tensors, "b2": np.zeros(3, np.float32)}, metadata=meta))
    elif corrupt == "wrong_hidden":
        path.write_bytes(save({**tensors, "w1": good.w1[:128], "b1": good.b1[:128], "w2": good.w2[:, :128]},
                              metadata=meta))
    elif corrupt == "nan":
        path.write_bytes(save({**tensors, "w1": np.full_like(good.w1, np.nan)}, metadata=meta))
    elif corrupt == "huge_value":
        path.write_bytes(save({**tensors, "w2": np.full_like(good.w2, 1e30)}, metadata=meta))
    elif corrupt == "newer":
        path.write_bytes(save(tensors, metadata={**meta, "version": "99"}))
    elif corrupt == "older":
        path.write_bytes(save(tensors, metadata={**meta, "version": "2"}))
    elif corrupt == "linear_v2":  # a file of the linear heads that came before the MLP
        linear = {"weight": np.zeros((2, good.dim), np.float32), "bias": np.zeros(2, np.float32),
                  "center": good.center, "prior": good.prior}
        path.write_bytes(save(linear, metadata={**meta, "version": "2"}))
    elif corrupt == "not_json_meta":
        path.write_bytes(save(tensors, metadata={**meta, "classes": "[beach"}))
    elif corrupt == "directory":
        path.mkdir()
    elif corrupt == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs on this system")
        os.mkfifo(path)  # nobody writes to it: reading it must not wait forever
    # Not a classifier is a ClassifierError; not a file at all (missing, a folder, a FIFO) is a BadFileError.
    expected = BadFileError if corrupt in ("missing", "directory", "fifo") else ClassifierError
    with pytest.raises(expected) as error:
        engine.classifiers.import_file(path, name="Imported")
    assert "\n" not in str(error.value) and len(str(error.value)) < 300
    if corrupt in ("older", "linear_v2"):
        assert "older photosort; train the classifier again" in str(error.value)
    assert engine.classifiers.names() == ["Trips"]


def test_a_file_over_the_size_limit_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from photosort.core import classifier, classifiers

    monkeypatch.setattr(classifier, "MAX_FILE_BYTES", 100)
    with pytest.raises(ClassifierError, match="too large"):
        Classifier.from_bytes(b"\0" * 101)
    monkeypatch.setattr(classifiers, "MAX_FILE_BYTES", 100)
    big = tmp_path / "big.head"
    big.write_bytes(b"\0" * 101)
    with pytest.raises(BadFileError, match="too large"):
        classifiers.read_classifier_file(big)


# ---- many labels -------------------------------------------------------------------------------
@pytest.mark.slow
def test_training_on_500_labels_converges_with_a_cross_validated_accuracy() -> None:
    """500 labels of ViT-B/32 size vectors: the many-labels path (3 folds, short penalty list) learns the classes.

    How fast it trains is measured by ``photosort bench``, not asserted here.
    """
    from photosort.core.classifier import MANY_LABELS_PENALTIES, train, untrained_classifier

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 512))
    targets = np.arange(500) % 5
    vectors = centres[targets] + 3 * rng.normal(size=(500, 512))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    prior = (centres / np.linalg.norm(centres, axis=1, keepdims=True)).astype(np.float32)
    base = untrained_classifier("h", KINDS, "m", 512, prior, 100.0)
    training = train(base, vectors, targets)
    assert training.accuracy is not None and training.accuracy > 0.9
    assert training.penalty in MANY_LABELS_PENALTIES
    predicted = training.head.probabilities(vectors).argmax(axis=1)
    assert (predicted == targets).mean() > 0.9


# ---- command line -----------------------------------------------------------------------------
def run_cli(capsys: pytest.CaptureFixture[str], settings, *argv: str) -> tuple[int, dict | None, str]:
    from photosort.cli import main

    code = main([*argv, "--model", str(settings.model), "--data-dir", str(settings.data_dir), "--device", "cpu",
                 "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def test_cli_trains_sorts_and_moves_a_head_between_machines(capsys, settings, make_photos, tmp_path) -> None:
    root = make_photos(n_per_kind=6)
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("path,label\n" + "".join(f"{k}/{k}_{i:03d}.jpg,{k}\n" for k in KINDS for i in range(3)))

    code, trained, _ = run_cli(capsys, settings, "train", str(root), "--classifier", "Kinds", "--labels", str(csv_path))
    assert code == 0 and trained["classifier"] == "Kinds" and trained["labels"] == 15 and trained["few_labels"] == []
    assert trained["cross_validated_accuracy"] >= 0.9
    code, sorted_, _ = run_cli(capsys, settings, "sort", str(root), "--classifier", "Kinds", "--threshold", "0")
    assert code == 0 and all(p["category"] == kind_of(p["path"]) for p in sorted_["photos"])
    assert sum(p["labelled"] for p in sorted_["photos"]) == 15

    file = tmp_path / "kinds.head"
    assert run_cli(capsys, settings, "classifiers", "export", "Kinds", str(file))[:2] == (
        0, {"classifier": "Kinds", "file": str(file)})
    code, _, err = run_cli(capsys, settings, "heads", "export", "Kinds", str(file))  # the old name still works
    assert code == 1 and "already exists" in err and err.count("\n") == 1
    assert run_cli(capsys, settings, "classifiers", "export", "Kinds", str(file), "--force")[0] == 0

    other_machine = settings.with_changes(data_dir=tmp_path / "other-data")
    code, imported, _ = run_cli(capsys, other_machine, "classifiers", "import", str(file), "--name", "Scenes")
    assert code == 0 and imported["classifier"] == "Scenes" and imported["classes"] == KINDS
    code, sorted_there, _ = run_cli(capsys, other_machine, "sort", str(root), "--head", "Scenes", "--threshold", "0")
    assert [p["category"] for p in sorted_there["photos"]] == [p["category"] for p in sorted_["photos"]]
    assert not any(p["labelled"] for p in sorted_there["photos"])  # the file carries the weights, not the labels

    assert run_cli(capsys, settings, "classifiers", "rename", "Kinds", "Trips")[0] == 0
    code, listed, _ = run_cli(capsys, settings, "classifiers", "list")
    assert [(h["name"], h["labels"], h["for_this_model"]) for h in listed["classifiers"]] == [("Trips", 15, True)]
    assert run_cli(capsys, settings, "heads", "list")[1] == listed
    assert run_cli(capsys, settings, "classifiers", "delete", "Trips")[0] == 0
    code, _, err = run_cli(capsys, settings, "classifiers", "delete", "Trips")
    assert code == 1 and err.startswith("photosort: error: No classifier named 'Trips'")


def test_cli_refuses_to_import_a_damaged_file(capsys, settings, tmp_path) -> None:
    file = tmp_path / "broken.head"
    file.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    code, out, err = run_cli(capsys, settings, "classifiers", "import", str(file))
    assert (code, out) == (1, None)
    assert err.startswith("photosort: error: Not a photosort classifier file") and err.count("\n") == 1
