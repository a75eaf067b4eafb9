"""Classifier files come from anywhere: whatever the bytes, reading one gives a valid head or a ClassifierError.

Property tests (hypothesis, derandomised so every run checks the same cases): random bytes,
damaged real files, and well-formed containers with hostile metadata never crash the
reader with anything else, and whatever it accepts is safe to use. Whatever the path,
reading the file gives its bytes or a BadFileError, and never waits on a FIFO or a device.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save

from photosort.core.classifier import Classifier, fit_classifier, untrained_classifier
from photosort.core.classifiers import read_classifier_file
from photosort.core.errors import BadFileError, ClassifierError

PROPERTY = settings(derandomize=True, max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sample_head() -> Classifier:
    rng = np.random.default_rng(0)
    prior = rng.normal(size=(3, 16)).astype(np.float32)
    prior /= np.linalg.norm(prior, axis=1, keepdims=True)
    base = untrained_classifier("Trips", ["beach", "city", "hiking"], "tiny|exact", 16, prior, 50.0,
                                [None, "a photo of a city street", None])
    vectors = rng.normal(size=(12, 16)).astype(np.float32)
    return fit_classifier(base, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), np.arange(12) % 3)


GOOD = sample_head().to_bytes()


def read_or_refuse(data: bytes) -> Classifier | None:
    """The reader's whole contract: a usable head, or a one-line ClassifierError; nothing else escapes."""
    try:
        head = Classifier.from_bytes(data)
    except ClassifierError as error:
        assert "\n" not in str(error) and str(error)
        return None
    assert_usable(head)
    return head


def assert_usable(head: Classifier) -> None:
    hidden, dim = head.w1.shape
    n = len(head.classes)
    assert n == len(head.prompts) and head.w2.shape == (n, hidden) and head.b2.shape == (n,)
    assert head.b1.shape == (hidden,) and head.center.shape == (dim,)
    probabilities = head.probabilities(np.ones((2, dim), np.float32) / np.sqrt(dim))
    assert np.all(np.isfinite(probabilities))


def test_a_head_survives_the_round_trip() -> None:
    original = sample_head()
    copy = Classifier.from_bytes(original.to_bytes(), expected_model_key="tiny|exact", expected_dim=16)
    assert (copy.name, copy.classes, copy.prompts, copy.model_key) == (original.name, original.classes,
                                                                       original.prompts, original.model_key)
    for key in ("w1", "b1", "w2", "b2", "center", "prior"):
        np.testing.assert_array_equal(getattr(copy, key), getattr(original, key))
    assert (copy.input_scale, copy.prior_scale, copy.prior_weight) == (original.input_scale, original.prior_scale,
                                                                        original.prior_weight)


def test_expected_model_and_size_are_enforced() -> None:
    with pytest.raises(ClassifierError, match="another model"):
        Classifier.from_bytes(GOOD, expected_model_key="openai/clip-vit-base-patch32|exact")
    with pytest.raises(ClassifierError, match="another model"):
        Classifier.from_bytes(GOOD, expected_dim=512)


@PROPERTY
@given(st.binary(max_size=4096))
def test_random_bytes_are_refused_with_a_head_error(data: bytes) -> None:
    assert read_or_refuse(data) is None


@PROPERTY
@given(st.integers(min_value=0, max_value=2**64 - 1), st.binary(max_size=512))
def test_any_header_length_is_refused_safely(header_len: int, rest: bytes) -> None:
    assert read_or_refuse(header_len.to_bytes(8, "little") + rest) is None


@PROPERTY
@given(st.data())
def test_damaged_files_are_refused_or_still_valid(data: st.DataObject) -> None:
    damaged = bytearray(GOOD)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(damaged) - 1))
        damaged[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(damaged)))
    read_or_refuse(bytes(damaged[: cut or len(damaged)]))


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                           max_leaves=12)


@pytest.mark.slow
@PROPERTY
@given(st.dictionaries(st.sampled_from(["name", "classes", "prompts", "model_key", "version", "input_scale",
                                        "prior_scale", "prior_weight", "metrics", "format"]),
                       st.text(max_size=30) | JSON_VALUES.map(json.dumps), max_size=6))
def test_hostile_metadata_is_refused_or_still_valid(changes: dict[str, str]) -> None:
    header = json.loads(GOOD[8 : 8 + int.from_bytes(GOOD[:8], "little")])
    head = sample_head()
    tensors = {"w1": head.w1, "b1": head.b1, "w2": head.w2, "b2": head.b2, "center": head.center,
               "prior": head.prior}
    read_or_refuse(save(tensors, metadata={**header["__metadata__"], **changes}))


@PROPERTY
@given(st.dictionaries(st.sampled_from(["w1", "b1", "w2", "b2", "center", "prior", "extra"]),
                       st.tuples(st.sampled_from([0, 1, 3, 256, 257]), st.sampled_from([0, 3, 16, 256])),
                       min_size=1, max_size=7),
       st.sampled_from([np.float32, np.float16, np.float64, np.int32]),
       st.sampled_from([0.0, np.nan, np.inf, 1e30]))
def test_wrong_tensors_are_refused_or_still_valid(shapes: dict[str, tuple[int, int]], dtype: type,
                                                  fill: float) -> None:
    header = json.loads(GOOD[8 : 8 + int.from_bytes(GOOD[:8], "little")])
    with np.errstate(over="ignore", invalid="ignore"):
        tensors = {key: np.full(shape if key in ("w1", "w2", "prior") else shape[1:], fill).astype(dtype)
                   for key, shape in shapes.items()}
    read_or_refuse(save(tensors, metadata=header["__metadata__"]))


def test_a_head_trained_on_identical_photos_can_be_saved_and_read() -> None:
    """Duplicates give no spread to scale by; the stored numbers must stay within the reader's bounds."""
    vector = np.ones((1, 16), np.float32) / 4
    base = untrained_classifier("Dupes", ["a", "b"], "tiny|exact", 16)
    head = fit_classifier(base, np.repeat(vector, 6, axis=0), np.array([0, 1] * 3))
    assert read_or_refuse(head.to_bytes()) is not None


def test_reading_a_file_gives_its_bytes(tmp_path) -> None:
    path = tmp_path / "trips.head"
    path.write_bytes(GOOD)
    assert read_classifier_file(path) == GOOD


def test_a_fifo_or_a_device_is_refused_without_waiting_for_it(tmp_path) -> None:
    """A FIFO nobody writes to would block a plain open() forever; /dev/zero never ends."""
    fifo = tmp_path / "trips.head"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero", tmp_path):
        with pytest.raises(BadFileError, match="not a regular file"):
            read_classifier_file(path)
    with pytest.raises(BadFileError, match="not found"):
        read_classifier_file(tmp_path / "missing.head")
