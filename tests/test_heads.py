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

from photosort.core.engine import Engine
from photosort.core.errors import HeadError
from photosort.core.heads import FEW_LABELS, Head
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


def accuracy(engine: Engine, root: Path, head: str, exclude: set[int] = frozenset()) -> float:
    result = engine.sort_by_head(root, head)
    hits = [result.category_of(i) == kind_of(p) for i, (pid, p) in enumerate(zip(result.embeddings.ids,
            result.embeddings.paths, strict=True)) if int(pid) not in exclude]
    return float(np.mean(hits))


def label_first(engine: Engine, head: str, by_kind: dict[str, list[int]], per_kind: int) -> set[int]:
    labels = {pid: kind for kind, ids in by_kind.items() for pid in ids[:per_kind]}
    engine.set_labels(head, labels)
    return set(labels)


# ---- learning ---------------------------------------------------------------------------------
def test_head_trained_on_three_labels_per_kind_sorts_the_rest(engine: Engine, library) -> None:
    root, by_kind = library
    engine.create_head("Kinds", KINDS)
    labelled = label_first(engine, "Kinds", by_kind, 3)
    report = engine.train_head("Kinds")
    assert report.labels == 15 and report.per_class == {k: 3 for k in KINDS}
    assert report.accuracy is not None and report.accuracy >= 0.9
    assert accuracy(engine, root, "Kinds", exclude=labelled) >= 0.95


def test_accuracy_never_drops_as_labels_are_added(engine: Engine, library) -> None:
    """0, 1, 3 and 10 labels per kind, 5 random draws each, scored on the photos left unlabelled."""
    root, by_kind = library
    engine.create_head("Kinds", KINDS)
    means = []
    for per_kind in (0, 1, 3, 10):
        scores = []
        for seed in range(5):
            rng = np.random.default_rng(seed)
            chosen = {int(pid): kind for kind, ids in by_kind.items() for pid in rng.choice(ids, per_kind, replace=False)}
            engine.set_labels("Kinds", dict.fromkeys(engine.head_labels("Kinds")))  # clear
            engine.set_labels("Kinds", chosen)
            engine.train_head("Kinds")
            scores.append(accuracy(engine, root, "Kinds", exclude=set(chosen)))
        means.append(float(np.mean(scores)))
    assert means == sorted(means), means
    assert means[1] >= 0.9 > means[0], means  # one label per kind already sorts; zero-shot is at chance here


def test_prior_only_head_predicts_exactly_like_the_typed_categories(engine: Engine, library) -> None:
    root, _ = library
    categories = parse_categories("beach, forest, night=a photo taken at night, document, sunset")
    head = engine.create_head("Typed", categories)
    zero_shot = engine.sort_by_categories(root, categories, threshold=0.0)
    by_head = engine.sort_by_head(root, "Typed")
    np.testing.assert_allclose(by_head.assignment.probabilities, zero_shot.assignment.probabilities, atol=1e-5)
    assert list(by_head.assignment.best) == list(zero_shot.assignment.best)
    assert head.prompts == [None, None, "a photo taken at night", None, None]


def test_head_from_categories_uses_their_prompts_for_the_prior(engine: Engine) -> None:
    with_prompt = engine.create_head("A", [Category("pets", "a photo of a cat or a dog"), Category("cars")])
    names_only = engine.create_head("B", ["pets", "cars"])
    expected = engine.class_vectors([Category("pets", "a photo of a cat or a dog")])[0]
    np.testing.assert_allclose(with_prompt.prior[0], expected, atol=1e-6)
    assert not np.allclose(with_prompt.prior[0], names_only.prior[0])
    assert np.allclose(with_prompt.prior[1], names_only.prior[1])


def test_labels_outweigh_a_prior_that_is_wrong(engine: Engine, library) -> None:
    """Typed prompts that describe the wrong kinds: labels must still win once there are a few."""
    root, by_kind = library
    misleading = [Category(kind, f"a photo of a {other}") for kind, other in zip(KINDS, KINDS[1:] + KINDS[:1], strict=True)]
    engine.create_head("Wrong", misleading)
    labelled = label_first(engine, "Wrong", by_kind, 3)
    engine.train_head("Wrong")
    assert accuracy(engine, root, "Wrong", exclude=labelled) >= 0.95
    assert engine.load_head("Wrong").prior_weight < 1.0


def test_train_report_counts_labels_and_flags_classes_with_too_few(engine: Engine, library) -> None:
    _, by_kind = library
    engine.create_head("Kinds", KINDS)
    counts = {"beach": 5, "forest": 3, "night": 2, "document": 1, "sunset": 0}
    engine.set_labels("Kinds", {pid: k for k, n in counts.items() for pid in by_kind[k][:n]})
    report = engine.train_head("Kinds")
    assert report.per_class == counts
    assert report.few_labels == ["night", "document", "sunset"]
    assert all(counts[k] < FEW_LABELS for k in report.few_labels)
    assert report.accuracy is None  # 'document' has a single label: too few to cross-validate honestly
    assert report.to_json()["few_labels"] == ["night", "document", "sunset"]


def test_training_is_deterministic(engine: Engine, library) -> None:
    _, by_kind = library
    engine.create_head("Kinds", KINDS)
    label_first(engine, "Kinds", by_kind, 4)
    first = engine.train_head("Kinds"), engine.load_head("Kinds")
    second = engine.train_head("Kinds"), engine.load_head("Kinds")
    assert first[0] == second[0]
    for key in ("w1", "b1", "w2", "b2"):
        np.testing.assert_array_equal(getattr(first[1], key), getattr(second[1], key))


def test_labels_must_be_classes_of_the_head(engine: Engine, library) -> None:
    _, by_kind = library
    engine.create_head("Kinds", KINDS)
    with pytest.raises(HeadError, match="not a class"):
        engine.set_labels("Kinds", {by_kind["beach"][0]: "mountains"})
    engine.set_labels("Kinds", {by_kind["beach"][0]: "BEACH"})
    assert engine.head_labels("Kinds") == {by_kind["beach"][0]: "beach"}


# ---- label these next -------------------------------------------------------------------------
def test_least_sure_skips_labelled_photos_and_puts_ambiguous_ones_first(engine: Engine, make_photos,
                                                                         tmp_path: Path) -> None:
    from photo_factory import draw_photo
    from PIL import Image

    root = make_photos(n_per_kind=10, kinds=("beach", "sunset"), folder=tmp_path / "two")
    blend = Image.blend(draw_photo("beach", seed=50), draw_photo("sunset", seed=50), 0.5)
    blend.save(root / "zz_blend.jpg", quality=90)
    engine.index(root)
    photos = engine.embeddings(root)
    blend_id = engine.cache.photo_id_for_path(os.path.realpath(root / "zz_blend.jpg"))
    engine.create_head("Two", ["beach", "sunset"], use_prior=False)
    labelled = {int(pid): kind_of(p) for pid, p in zip(photos.ids, photos.paths, strict=True)
                if kind_of(p) != "two" and p.endswith(("_000.jpg", "_001.jpg", "_002.jpg"))}
    engine.set_labels("Two", labelled)
    engine.train_head("Two")

    ranked = engine.least_sure("Two", root, limit=100)
    assert not set(ranked) & set(labelled)
    assert len(ranked) == len(photos) - len(labelled)
    result = engine.sort_by_head(root, "Two")
    row_of = result.embeddings.index_of()
    margins = [abs(float(np.subtract(*result.assignment.probabilities[row_of[pid]]))) for pid in ranked]
    assert margins == sorted(margins)
    assert ranked[0] == blend_id
    assert engine.least_sure("Two", root, limit=5) == ranked[:5]


# ---- storage ----------------------------------------------------------------------------------
def test_heads_and_labels_survive_a_restart(settings, library, engine: Engine) -> None:
    root, by_kind = library
    engine.create_head("Kinds", KINDS)
    label_first(engine, "Kinds", by_kind, 3)
    engine.train_head("Kinds")
    before = engine.sort_by_head(root, "Kinds").assignment.probabilities
    labels = engine.head_labels("Kinds")
    engine.close()

    again = Engine(settings)
    try:
        assert again.head_names() == ["Kinds"]
        assert again.head_labels("Kinds") == labels
        np.testing.assert_array_equal(again.sort_by_head(root, "Kinds").assignment.probabilities, before)
        summary = again.head_summaries()[0]
        assert (summary.name, summary.labels, summary.for_this_model) == ("Kinds", 15, True)
    finally:
        again.close()


def test_rename_keeps_labels_and_weights(engine: Engine, library) -> None:
    root, by_kind = library
    engine.create_head("Kinds", KINDS)
    label_first(engine, "Kinds", by_kind, 3)
    engine.train_head("Kinds")
    labels, before = engine.head_labels("Kinds"), engine.sort_by_head(root, "Kinds").assignment.probabilities
    engine.rename_head("kinds", "Scenes")
    assert engine.head_names() == ["Scenes"]
    assert engine.head_labels("Scenes") == labels
    assert engine.load_head("Scenes").name == "Scenes"
    np.testing.assert_array_equal(engine.sort_by_head(root, "Scenes").assignment.probabilities, before)
    engine.train_head("Scenes")
    assert engine.head_names() == ["Scenes"]


def test_rename_refuses_a_taken_name_but_allows_a_change_of_case(engine: Engine) -> None:
    engine.create_head("Trips", ["beach", "city"])
    engine.create_head("Pets", ["cat", "dog"])
    with pytest.raises(HeadError, match="already exists"):
        engine.rename_head("Trips", "pets")
    with pytest.raises(HeadError, match="No classifier"):
        engine.rename_head("Nope", "Other")
    with pytest.raises(HeadError, match="needs a name"):
        engine.rename_head("Trips", "  ")
    engine.rename_head("Trips", "TRIPS")
    assert engine.head_names() == ["Pets", "TRIPS"]


def test_delete_removes_the_head_and_its_labels(engine: Engine, library) -> None:
    _, by_kind = library
    engine.create_head("Kinds", KINDS)
    label_first(engine, "Kinds", by_kind, 2)
    engine.delete_head("KINDS")
    assert engine.head_names() == []
    with pytest.raises(HeadError, match="No classifier named 'Kinds'"):
        engine.load_head("Kinds")
    engine.create_head("Kinds", KINDS)
    assert engine.head_labels("Kinds") == {}
    with pytest.raises(HeadError, match="No classifier"):
        engine.delete_head("Other")


def test_a_stored_head_of_another_model_is_refused_then_trained_again_here(engine: Engine, library) -> None:
    root, by_kind = library
    head = engine.create_head("Kinds", parse_categories("beach, forest, night=a dark photo, document, sunset"))
    label_first(engine, "Kinds", by_kind, 3)
    head.model_key = "openai/clip-vit-large-patch14|exact"
    engine.save_head(head)
    with pytest.raises(HeadError, match="made for another model"):
        engine.sort_by_head(root, "Kinds")
    assert engine.head_summaries()[0].for_this_model is False
    engine.train_head("Kinds")
    retrained = engine.load_head("Kinds")
    assert retrained.model_key == engine.model_key and retrained.prompts[2] == "a dark photo"
    assert accuracy(engine, root, "Kinds", exclude=set(engine.head_labels("Kinds"))) >= 0.95


# ---- files ------------------------------------------------------------------------------------
def test_export_import_round_trip_gives_identical_predictions(engine: Engine, library, tmp_path) -> None:
    root, by_kind = library
    engine.create_head("Kinds", parse_categories("beach, forest, night=a dark photo, document, sunset"))
    label_first(engine, "Kinds", by_kind, 3)
    engine.train_head("Kinds")
    path = engine.export_head("Kinds", tmp_path / "kinds.head")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    imported = engine.import_head(path, name="Kinds copy")
    assert imported.name == "Kinds copy" and imported.prompts[2] == "a dark photo"
    np.testing.assert_array_equal(engine.sort_by_head(root, "Kinds copy").assignment.probabilities,
                                  engine.sort_by_head(root, "Kinds").assignment.probabilities)
    with pytest.raises(HeadError, match=r"already exists.*--name"):
        engine.import_head(path)


def test_export_never_overwrites_unless_asked(engine: Engine, tmp_path) -> None:
    engine.create_head("Trips", ["beach", "city"])
    target = tmp_path / "trips.head"
    target.write_bytes(b"precious")
    with pytest.raises(HeadError, match="already exists"):
        engine.export_head("Trips", target)
    assert target.read_bytes() == b"precious"
    engine.export_head("Trips", target, overwrite=True)
    assert Head.from_bytes(target.read_bytes()).classes == ["beach", "city"]
    with pytest.raises(HeadError, match="Cannot write"):
        engine.export_head("Trips", tmp_path / "missing-folder" / "x.head")


def test_import_refuses_a_head_made_for_another_model(engine: Engine, tmp_path) -> None:
    head = engine.create_head("Trips", ["beach", "city"])
    head.model_key = "openai/clip-vit-large-patch14|exact"
    path = tmp_path / "other.head"
    path.write_bytes(head.to_bytes())
    with pytest.raises(HeadError, match="made for another model"):
        engine.import_head(path, name="Other")
    assert engine.head_names() == ["Trips"]


@pytest.mark.parametrize("corrupt", ["random", "truncated", "huge_header", "wrong_shape", "wrong_hidden", "nan",
                                     "huge_value", "newer", "older", "linear_v2", "not_json_meta", "missing", "directory"])
def test_import_refuses_a_damaged_file_with_a_message(engine: Engine, tmp_path, corrupt: str) -> None:
    from safetensors.numpy import save

    good = engine.create_head("Trips", ["beach", "city"])
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
    with pytest.raises(HeadError) as error:
        engine.import_head(path, name="Imported")
    assert "\n" not in str(error.value) and len(str(error.value)) < 300
    if corrupt in ("older", "linear_v2"):
        assert "older photosort; train the classifier again" in str(error.value)
    assert engine.head_names() == ["Trips"]


def test_a_file_over_the_size_limit_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    from photosort.core import heads

    monkeypatch.setattr(heads, "MAX_FILE_BYTES", 100)
    with pytest.raises(HeadError, match="too large"):
        Head.from_bytes(b"\0" * 101)


# ---- speed ------------------------------------------------------------------------------------
def test_training_on_500_labels_takes_well_under_two_seconds() -> None:
    """Including the cross-validation that picks the penalty and measures accuracy (ViT-B/32 size vectors).

    torch is imported first: in the app it is already loaded (it runs the model), so its
    import is no part of what training costs the user.
    """
    import time

    import torch  # noqa: F401

    from photosort.core.heads import train, untrained_head

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 512))
    targets = np.arange(500) % 5
    vectors = centres[targets] + 3 * rng.normal(size=(500, 512))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    prior = (centres / np.linalg.norm(centres, axis=1, keepdims=True)).astype(np.float32)
    base = untrained_head("h", KINDS, "m", 512, prior, 100.0)
    started = time.perf_counter()
    training = train(base, vectors, targets)
    elapsed = time.perf_counter() - started
    assert training.accuracy is not None and training.accuracy > 0.9
    assert elapsed < 2.0, f"training on 500 labels took {elapsed:.2f}s"


# ---- command line -----------------------------------------------------------------------------
def run_cli(capsys: pytest.CaptureFixture[str], settings, *argv: str) -> tuple[int, dict | None, str]:
    from photosort.cli import main

    code = main([*argv, "--model", str(settings.model), "--cache-dir", str(settings.cache_dir), "--device", "cpu",
                 "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def test_cli_trains_sorts_and_moves_a_head_between_machines(capsys, settings, make_photos, tmp_path) -> None:
    root = make_photos(n_per_kind=6)
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("path,label\n" + "".join(f"{k}/{k}_{i:03d}.jpg,{k}\n" for k in KINDS for i in range(3)))

    code, trained, _ = run_cli(capsys, settings, "train", str(root), "--head", "Kinds", "--labels", str(csv_path))
    assert code == 0 and trained["labels"] == 15 and trained["few_labels"] == []
    assert trained["cross_validated_accuracy"] >= 0.9
    code, sorted_, _ = run_cli(capsys, settings, "sort", str(root), "--head", "Kinds")
    assert code == 0 and all(p["category"] == kind_of(p["path"]) for p in sorted_["photos"])

    file = tmp_path / "kinds.head"
    assert run_cli(capsys, settings, "heads", "export", "Kinds", str(file))[:2] == (0, {"head": "Kinds", "file": str(file)})
    code, _, err = run_cli(capsys, settings, "heads", "export", "Kinds", str(file))
    assert code == 1 and "already exists" in err and err.count("\n") == 1
    assert run_cli(capsys, settings, "heads", "export", "Kinds", str(file), "--force")[0] == 0

    other_machine = settings.with_changes(cache_dir=tmp_path / "other-cache")
    code, imported, _ = run_cli(capsys, other_machine, "heads", "import", str(file), "--name", "Scenes")
    assert code == 0 and imported["head"] == "Scenes" and imported["classes"] == KINDS
    code, sorted_there, _ = run_cli(capsys, other_machine, "sort", str(root), "--head", "Scenes")
    assert [p["category"] for p in sorted_there["photos"]] == [p["category"] for p in sorted_["photos"]]

    assert run_cli(capsys, settings, "heads", "rename", "Kinds", "Trips")[0] == 0
    code, listed, _ = run_cli(capsys, settings, "heads", "list")
    assert [(h["name"], h["labels"], h["for_this_model"]) for h in listed["heads"]] == [("Trips", 15, True)]
    assert run_cli(capsys, settings, "heads", "delete", "Trips")[0] == 0
    code, _, err = run_cli(capsys, settings, "heads", "delete", "Trips")
    assert code == 1 and err.startswith("photosort: error: No classifier named 'Trips'")


def test_cli_refuses_to_import_a_damaged_file(capsys, settings, tmp_path) -> None:
    file = tmp_path / "broken.head"
    file.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    code, out, err = run_cli(capsys, settings, "heads", "import", str(file))
    assert (code, out) == (1, None)
    assert err.startswith("photosort: error: Not a photosort classifier file") and err.count("\n") == 1
