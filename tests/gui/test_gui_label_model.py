"""The grid model's labels and "Label these next" without a window: grouping, undo, ranking, 50,000 photos."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QItemSelectionModel, Qt

from photosort.core.sorting import margin_order
from photosort.core.zeroshot import Category, assign
from photosort.gui.classifier_panel import LabelPanel, describe_quality, few_label_warning
from photosort.gui.photo_model import LEAST_SURE_COUNT, PhotoModel

CLASSES = (Category("beach"), Category("city"), Category("hiking"))


def model_with(probs: np.ndarray, labels: dict[int, int] | None = None) -> PhotoModel:
    model = PhotoModel()
    ids = np.arange(len(probs), dtype=np.int64)
    model.set_scores(CLASSES, np.zeros(0, np.int64), np.zeros((0, 3), np.float32), labels=labels or {})
    model.add_photos(ids, [f"/p/{i:03d}.jpg" for i in ids], CLASSES, probs.astype(np.float32))
    return model


def test_a_label_wins_over_the_prediction_for_grouping_and_filtering(qtmodeltester) -> None:
    probs = np.array([[0.9, 0.05, 0.05], [0.4, 0.3, 0.3], [0.1, 0.8, 0.1]])
    model = model_with(probs)
    qtmodeltester.check(model)
    assert [g.count for g in model.groups()] == [3, 1, 1, 0, 1]
    model.set_labels({1: 2, 0: 1})
    assert model.label_of(1) == 2 and model.labels() == {1: 2, 0: 1}
    assert [g.count for g in model.groups()] == [3, 0, 2, 1, 0], "labelled photos join their label's group"
    tile = model.tile(model.row_of_photo(0))
    assert (tile.label, tile.category, tile.group) == ("city", "beach", 1), "the prediction is kept for the chip"
    assert "Labelled city · predicted beach" in model.index(model.row_of_photo(0)).data(Qt.ItemDataRole.ToolTipRole)
    model.set_filter(2)
    assert [model.photo_id(r) for r in range(model.rowCount())] == [1]
    model.set_labels({1: None})
    assert model.rowCount() == 1 and model.regroup_pending, "the photo holds still while the user labels"
    model.regroup()
    assert model.rowCount() == 0 and model.label_counts() == [0, 1, 0] and not model.regroup_pending


def test_new_predictions_keep_labels_and_other_categories_drop_them() -> None:
    model = model_with(np.full((4, 3), 1 / 3), {2: 0})
    model.set_scores(CLASSES, np.arange(4), np.tile([0.1, 0.1, 0.8], (4, 1)).astype(np.float32))
    assert model.labels() == {2: 0} and model.tile(model.row_of_photo(2)).label == "beach"
    model.set_scores((Category("dogs"), Category("cats")), np.arange(4), np.full((4, 2), 0.5, np.float32), labels={})
    assert model.labels() == {} and all(model.tile(r).label is None for r in range(4))


def test_labels_of_photos_not_yet_shown_apply_when_they_arrive() -> None:
    model = PhotoModel()
    model.set_scores(CLASSES, np.zeros(0, np.int64), np.zeros((0, 3), np.float32), labels={7: 1})
    model.add_photos(np.array([7, 8]), ["/p/7.jpg", "/p/8.jpg"], CLASSES, np.full((2, 3), 1 / 3, np.float32))
    assert model.tile(model.row_of_photo(7)).label == "city" and model.tile(model.row_of_photo(8)).label is None


def test_relabelling_keeps_the_selection(qtmodeltester) -> None:
    model = model_with(np.tile([0.2, 0.7, 0.1], (6, 1)))
    selection = QItemSelectionModel(model)
    selection.select(model.index(model.row_of_photo(4)), QItemSelectionModel.SelectionFlag.Select)
    model.set_labels({4: 0})
    assert model.row_of_photo(4) == 4 and model.regroup_pending, "labelling moves nothing"
    model.regroup()
    assert [model.photo_id(i.row()) for i in selection.selectedIndexes()] == [4]
    assert model.row_of_photo(4) == 0, "regrouped: in its label's group, first"


def test_least_sure_shows_unlabelled_photos_by_margin_and_stays_put_until_new_predictions() -> None:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(3), size=200).astype(np.float32)
    model = model_with(probs, {int(i): 0 for i in margin_order(probs)[:5]})  # the five least sure are labelled
    model.set_least_sure(True)
    shown = [model.photo_id(r) for r in range(model.rowCount())]
    expected = [int(i) for i in margin_order(probs) if int(i) not in model.labels()][:LEAST_SURE_COUNT]
    assert shown == expected
    model.set_labels({shown[0]: 1})
    assert [model.photo_id(r) for r in range(model.rowCount())] == shown, "no jumping while labelling"
    model.set_scores(CLASSES, np.arange(200), probs, keep_positions=True)  # the next training's predictions
    assert [model.photo_id(r) for r in range(model.rowCount())] == shown, "still none while the user labels"
    model.regroup()
    assert shown[0] not in [model.photo_id(r) for r in range(model.rowCount())]
    model.set_least_sure(False)
    assert model.rowCount() == 200


def test_new_predictions_and_labels_for_50000_photos_group_every_photo() -> None:
    """At library scale every photo lands in its label's group, else in its new prediction's (how fast: bench)."""
    n = 50_000
    rng = np.random.default_rng(0)
    model = model_with(rng.dirichlet(np.ones(3), size=n))
    fresh = rng.dirichlet(np.ones(3), size=n).astype(np.float32)
    labels = {int(i): int(i) % 3 for i in range(0, n, 100)}
    model.set_labels(labels)
    model.set_scores(CLASSES, np.arange(n), fresh)
    model.set_least_sure(True)
    shown = [model.photo_id(r) for r in range(model.rowCount())]
    expected_least_sure = [int(i) for i in margin_order(fresh) if int(i) not in labels][:LEAST_SURE_COUNT]
    assert shown == expected_least_sure
    model.set_least_sure(False)
    assert model.labels() == labels and model.rowCount() == n
    expected = assign(fresh, model.threshold).best
    expected[list(labels)] = list(labels.values())
    counts = np.bincount(expected + 1, minlength=4)
    assert [g.count for g in model.groups()] == [n, *counts[1:].tolist(), int(counts[0])]
    for photo_id in (0, 1, 100, 4_999, 25_000, 49_999):
        tile = model.tile(model.row_of_photo(photo_id))
        assert tile.group == expected[photo_id]
        assert tile.label == (CLASSES[labels[photo_id]].name if photo_id in labels else None)


def test_the_panel_tells_what_to_do_and_warns_about_few_labels(qapp) -> None:
    panel = LabelPanel()
    panel.set_classes(["beach", "city", "hiking"], [0, 0, 0], None)
    assert "press 1–3" in panel.quality_label.text() and panel.warning_label.text() == ""
    height = panel.sizeHint().height()
    panel.set_counts([5, 1, 0], None)
    assert few_label_warning(["beach", "city", "hiking"], [5, 1, 0]) == panel.warning_label.text()
    assert panel.warning_label.text() == "⚠ 2 classes need more labels: at least 3 photos each."
    assert panel.count_labels[1].text() == "⚠ 1" and panel.count_labels[0].text() == "5"
    assert panel.sizeHint().height() == height  # text comes and goes; nothing below it moves under the pointer
    classes = ["beach", "city", "hiking"]
    assert describe_quality(classes, [5, 4, 3], 0.917) == "12 labels · accuracy 92% (cross-validated)"
    assert describe_quality(classes, [2, 0, 0], None) == "2 labels. The accuracy shows once at least two classes have labels."
    # The rule is that every labelled class needs two: with 2/2/1 it says which one is short, not "two classes".
    assert describe_quality(classes, [2, 2, 1], None) == ("5 labels. The accuracy shows once every labelled class has "
                                                          "at least 2 labels (hiking has fewer).")
    assert describe_quality(classes, [2, 2, 0], None) == "4 labels. The accuracy shows after the next training."
