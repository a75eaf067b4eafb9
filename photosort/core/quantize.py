"""The opt-in fast CPU mode: compiling the vision tower, and int8 weights where bf16 is not native.

``torch.compile`` (inductor, with frozen weights so constant folding and
weight prepacking happen once) fuses the ViT's elementwise work into its
matrix products: ~1.15x eager bf16 for the model on 2 Sapphire Rapids cores.
Where the CPU has no native bf16, the Linear layers go int8: torchao's
``Int8DynamicActivationInt8WeightConfig`` (optional extra ``photosort[fast]``)
compiled the same way, else torch.ao's ``quantize_dynamic`` (deprecated, but
it needs nothing extra and ran as fast as torchao's with oneDNN held to AVX2:
~1.55x fp32). Int8 vectors agree with fp32 ones to cosine ~0.9995.

Compiling can fail (no C++ compiler, an unsupported platform, a torch/torchao
mismatch): every step falls back to something that works and says so in a
one-line notice; nothing here is fatal.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import torch

from .threads import torch_threads

log = logging.getLogger(__name__)

Tower = Callable[[torch.Tensor], torch.Tensor]


def compile_tower(tower: torch.nn.Module, example: torch.Tensor, threads: int) -> tuple[Tower | None, str | None]:
    """``tower`` compiled for ``example``'s shape, warmed up; (None, reason) when compiling fails.

    Inductor bakes the thread count into the kernels, so ``threads`` must be
    the torch thread count the compiled tower will run with (indexing's, see
    :func:`~photosort.core.threads.plan_threads`); the caller says it, as
    only the caller knows the cores reserved for the window.
    """
    log.info("compiling the vision tower for fast mode with %d threads (once per run; ~40 s the first time)", threads)
    try:
        with torch_threads(threads):
            compiled = torch.compile(tower, dynamic=False, options={"freezing": True})
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                compiled(example)
    except Exception as exc:  # any compiler failure means "run uncompiled", never a crash
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        log.debug("torch.compile failed", exc_info=True)
        return None, f"Fast mode could not compile the model ({reason}); running it uncompiled (slower)."
    return compiled, None


def quantize_int8(tower: torch.nn.Module, example: torch.Tensor, threads: int) -> tuple[Tower, bool, str | None]:
    """Int8 Linear layers for ``tower``: (what to run, whether it is compiled, a notice or None).

    torchao + compile (for ``threads`` torch threads, as :func:`compile_tower`) when both work;
    otherwise torch.ao's dynamic int8, uncompiled.
    """
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    except Exception:  # ImportError, or a torchao that does not match this torch
        _quantize_dynamic(tower)
        return tower, False, ("Fast mode uses torch's older int8 path; install photosort[fast] (torchao) "
                              "for the supported one.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_(tower, Int8DynamicActivationInt8WeightConfig())
    except Exception as exc:
        # quantize_ swaps layers one by one; each finished one works, the rest stay float.
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        return tower, False, f"torchao could not quantise the whole model ({reason}); running it uncompiled."
    compiled, message = compile_tower(tower, example, threads)
    if compiled is None:
        return tower, False, message
    return compiled, True, None


def _quantize_dynamic(tower: torch.nn.Module) -> None:
    """torch.ao's dynamic int8 Linear layers, in place (no second copy of the weights)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.ao.quantization.quantize_dynamic(tower, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
