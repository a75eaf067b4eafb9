"""The encoder: precision per device and mode, cache identity per precision family, clean fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from photosort.core import model as model_mod
from photosort.core.model import (
    BF16,
    BF16_COMPILED,
    FP16,
    FP32,
    INT8_COMPILED,
    available_devices,
    describe_precision,
    load_encoder,
    model_identity,
    pick_device,
    pick_precision,
    planned_device,
)
from photosort.core.threads import plan_threads

CPU = torch.device("cpu")


def photos_batch(n: int, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, 1, 1, 3))
    return np.clip(base + rng.integers(-40, 40, (n, size, size, 3)), 0, 255).astype(np.uint8)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize(("device", "mode", "bf16", "expected"), [
    ("cuda", "auto", False, FP16),
    ("cuda", "fast", True, FP16),
    ("cpu", "auto", True, BF16),
    ("cpu", "auto", False, FP32),
    ("cpu", "fp32", True, FP32),
    ("cpu", "fast", True, BF16_COMPILED),
    ("cpu", "fast", False, INT8_COMPILED),
    ("mps", "auto", True, FP32),
])
def test_precision_is_chosen_per_device_and_cpu(monkeypatch, device: str, mode: str, bf16: bool, expected) -> None:
    monkeypatch.setattr(model_mod, "cpu_has_fast_bf16", lambda: bf16)
    assert pick_precision(torch.device(device), mode) == expected


def test_only_int8_vectors_get_their_own_cache_identity(settings, monkeypatch) -> None:
    keys = {}
    for bf16 in (True, False):
        monkeypatch.setattr(model_mod, "cpu_has_fast_bf16", lambda bf16=bf16: bf16)
        for mode in ("auto", "fp32", "fast"):
            keys[(bf16, mode)] = model_identity(settings.with_changes(mode=mode))[0]
    exact = keys[(True, "auto")]
    assert exact.endswith("/exact")
    assert keys[(True, "fp32")] == keys[(True, "fast")] == keys[(False, "auto")] == exact
    assert keys[(False, "fast")].endswith("/int8")


def test_cuda_asked_for_but_absent_falls_back_to_the_cpu_with_a_message(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    device, message = pick_device("cuda")
    assert device.type == "cpu" and "not available" in message


def test_cuda_that_fails_falls_back_to_the_cpu_with_a_message(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    real_zeros = torch.zeros

    def broken(*args, **kwargs):
        if kwargs.get("device") == "cuda":
            raise RuntimeError("CUDA error: no kernel image is available for execution on the device")
        return real_zeros(*args, **kwargs)

    monkeypatch.setattr(torch, "zeros", broken)
    for requested in ("cuda", "auto"):
        device, message = pick_device(requested)
        assert device.type == "cpu" and message.startswith("CUDA failed (CUDA error: no kernel image")


def gpus_present(monkeypatch: pytest.MonkeyPatch, cuda: bool, mps: bool) -> None:
    """Pretend these GPUs are here; a CUDA that is "there" starts fine (pick_device's probe runs on the CPU)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    real_zeros = torch.zeros
    monkeypatch.setattr(torch, "zeros", lambda *a, **k: real_zeros(*a, **{**k, "device": "cpu"}))


@pytest.mark.parametrize(("cuda", "mps", "present"), [
    (False, False, ("cpu",)),
    (True, False, ("cpu", "cuda")),
    (False, True, ("cpu", "mps")),
])
def test_only_devices_present_are_available(monkeypatch, cuda: bool, mps: bool, present: tuple[str, ...]) -> None:
    gpus_present(monkeypatch, cuda, mps)
    assert available_devices() == present


@pytest.mark.parametrize(("cuda", "mps"), [(False, False), (True, False), (False, True), (True, True)])
def test_the_planned_device_is_the_one_pick_device_picks(monkeypatch, cuda: bool, mps: bool) -> None:
    gpus_present(monkeypatch, cuda, mps)
    for requested in ("auto", "cpu", "cuda", "mps", "tpu"):
        assert planned_device(requested) == pick_device(requested)[0], requested


@pytest.mark.parametrize("bf16", [True, False])
@pytest.mark.parametrize("requested", ["cpu", "cuda", "mps"])
def test_precision_descriptions_name_what_pick_precision_runs(monkeypatch, bf16: bool, requested: str) -> None:
    gpus_present(monkeypatch, cuda=requested == "cuda", mps=requested == "mps")
    monkeypatch.setattr(model_mod, "cpu_has_fast_bf16", lambda: bf16)
    place = {"cpu": "on this CPU", "cuda": "on the GPU", "mps": "on the Apple GPU"}[requested]
    for mode, name in (("auto", "Automatic"), ("fp32", "Exact"), ("fast", "Fast")):
        ran = pick_precision(pick_device(requested)[0], mode)
        runs = "int8" if ran.quantized else ran.name.replace("+compile", " + compiled")
        assert describe_precision(requested, mode).startswith(f"{name} — {runs} {place}")


def test_precision_descriptions_on_a_cpu_say_what_each_choice_costs(monkeypatch) -> None:
    gpus_present(monkeypatch, cuda=False, mps=False)
    monkeypatch.setattr(model_mod, "cpu_has_fast_bf16", lambda: True)
    assert describe_precision("auto", "auto") == "Automatic — bf16 on this CPU (same vectors as Exact, about 2x faster)"
    assert describe_precision("auto", "fp32") == "Exact — fp32 on this CPU (about half the speed of Automatic)"
    assert describe_precision("auto", "fast") == "Fast — bf16 + compiled on this CPU (compiles 10–40 s each run, gains little)"
    monkeypatch.setattr(model_mod, "cpu_has_fast_bf16", lambda: False)
    assert describe_precision("cpu", "auto") == "Automatic — fp32 on this CPU (this CPU has no native bf16)"
    assert describe_precision("cpu", "fp32") == "Exact — fp32 on this CPU (the same as Automatic here)"
    assert describe_precision("cpu", "fast") == "Fast — int8 on this CPU (model ~1.5x faster; photos are indexed again)"
    assert describe_precision("cuda", "fast").startswith("Fast — int8 on this CPU"), "absent CUDA falls back to the CPU"


def test_bf16_embeddings_match_fp32(settings) -> None:
    pytest.importorskip("torch")
    batch = photos_batch(8, 32)
    exact = load_encoder(settings.with_changes(mode="fp32"))
    half = load_encoder(settings.with_changes(mode="auto"))
    assert exact.model_key == half.model_key
    assert cosines(exact.embed_pixels(batch), half.embed_pixels(batch)).min() > 0.995


def test_batches_larger_than_the_model_batch_are_split_without_changing_results(settings) -> None:
    encoder = load_encoder(settings.with_changes(mode="fp32"))
    encoder.batch_size = 4
    batch = photos_batch(10, 32)
    together = encoder.embed_pixels(batch)
    one_by_one = np.concatenate([encoder.embed_pixels(batch[i : i + 1]) for i in range(10)])
    assert together.shape == (10, encoder.dim)
    assert np.allclose(together, one_by_one, atol=1e-5)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_fast_mode_runs_uncompiled_with_a_notice_when_compiling_fails(settings, monkeypatch) -> None:
    monkeypatch.setattr(model_mod, "cpu_has_fast_bf16", lambda: True)

    def no_compiler(*args, **kwargs):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    monkeypatch.setattr(torch, "compile", no_compiler)
    fast = load_encoder(settings.with_changes(mode="fast"))
    assert fast.precision.name == "bf16" and not fast.precision.compiled
    assert any("could not compile" in n and "No working C++ compiler" in n for n in fast.notices)
    batch = photos_batch(4, 32)
    reference = load_encoder(settings.with_changes(mode="fp32")).embed_pixels(batch)
    assert cosines(fast.embed_pixels(batch), reference).min() > 0.995


def test_fast_mode_compiles_for_the_threads_indexing_will_use_with_the_windows_core_reserved(
        settings, monkeypatch) -> None:
    """Inductor bakes the thread count into the kernels: 8 cores, 1 kept for the window -> indexing's 3."""
    monkeypatch.setattr(model_mod, "cpu_has_fast_bf16", lambda: True)
    monkeypatch.setattr(model_mod, "cpu_cores", lambda: 8)
    seen: list[int] = []

    def recording_compile(*args, **kwargs):
        seen.append(torch.get_num_threads())
        raise RuntimeError("recorded; run uncompiled")

    monkeypatch.setattr(torch, "compile", recording_compile)
    before = torch.get_num_threads()
    load_encoder(settings.with_changes(mode="fast"), reserve_cores=1)
    assert seen == [plan_threads(8, "cpu", 1).torch_threads] == [3]
    assert torch.get_num_threads() == before


def test_fast_mode_without_native_bf16_uses_int8_and_says_how_to_get_the_better_path(settings, monkeypatch) -> None:
    import builtins

    monkeypatch.setattr(model_mod, "cpu_has_fast_bf16", lambda: False)
    real_import = builtins.__import__

    def without_torchao(name, *args, **kwargs):
        if name.startswith("torchao"):
            raise ImportError("No module named 'torchao'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_torchao)
    fast = load_encoder(settings.with_changes(mode="fast"))
    assert fast.precision.quantized and fast.model_key.endswith("/int8")
    assert any("photosort[fast]" in n for n in fast.notices)
    batch = photos_batch(6, 32)
    reference = load_encoder(settings.with_changes(mode="fp32")).embed_pixels(batch)
    assert cosines(fast.embed_pixels(batch), reference).mean() > 0.98


def test_a_compiled_tower_is_fed_full_batches(settings, monkeypatch) -> None:
    """A compiled model is specialised to one batch size: a short last batch is padded, not recompiled."""
    encoder = load_encoder(settings.with_changes(mode="fp32"))
    shapes: list[int] = []
    tower = encoder.tower

    def recording(x: torch.Tensor) -> torch.Tensor:
        shapes.append(x.shape[0])
        return tower(x)

    encoder.tower = recording
    encoder.precision = model_mod.Precision("fp32+compile", torch.float32, compiled=True)
    encoder.batch_size = 8
    batch = photos_batch(11, 32)
    vectors = encoder.embed_pixels(batch)
    assert shapes == [8, 8] and vectors.shape == (11, encoder.dim)
    encoder.tower, encoder.precision = tower, FP32
    assert np.allclose(vectors, encoder.embed_pixels(batch), atol=1e-5)


@pytest.mark.parametrize(("cores", "device", "reserve", "torch_threads", "decode_threads"), [
    (2, "cpu", 0, 2, 2),
    (2, "cpu", 1, 2, 2),  # with 2 cores the GUI shares: taking one away would halve indexing
    (8, "cpu", 1, 3, 7),
    (16, "cpu", 0, 8, 16),
    (16, "cuda", 0, 2, 16),
    (1, "cpu", 0, 1, 1),
])
def test_threads_are_split_between_torch_and_decoding(cores, device, reserve, torch_threads, decode_threads) -> None:
    plan = plan_threads(cores, device, reserve)
    assert (plan.torch_threads, plan.decode_threads) == (torch_threads, decode_threads)


@pytest.mark.slow
def test_fast_mode_compiles_once_and_gives_the_exact_vectors(settings, monkeypatch, tmp_path) -> None:
    """The real torch.compile path (about 10 s with the tiny model); where no compiler works it says so."""
    monkeypatch.setattr(model_mod, "cpu_has_fast_bf16", lambda: True)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    fast = load_encoder(settings.with_changes(mode="fast"))
    batch = photos_batch(5, 32)  # fewer than a batch: padded to the compiled shape
    reference = load_encoder(settings.with_changes(mode="fp32")).embed_pixels(batch)
    if fast.precision.compiled:
        assert fast.precision == BF16_COMPILED and fast.notices == []
        assert fast.model_key == load_encoder(settings.with_changes(mode="fp32")).model_key
    else:
        assert any("could not compile" in n for n in fast.notices)
    assert cosines(fast.embed_pixels(batch), reference).min() > 0.995
