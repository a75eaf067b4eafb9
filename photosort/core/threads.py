"""How many threads torch and decoding get, and setting torch's count for a while.

The thread plan lives here, apart from the indexer, because more than the
indexer needs it: the fast mode compiles the model for the torch thread count
indexing will use (inductor bakes it into the kernels), and head training and
the benchmark set their own counts. torch's thread count is process-wide;
:func:`torch_threads` sets it for a block and restores it after. torch is
imported only when a count is actually set, so importing this module stays
cheap for the GUI.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThreadPlan:
    """Threads for one indexing run: matrix work (torch) and decoding (Pillow releases the GIL)."""

    torch_threads: int
    decode_threads: int


def cpu_cores() -> int:
    """The cores to plan for; 2 when the OS cannot tell (the smallest machine photosort plans for)."""
    return os.cpu_count() or 2


def plan_threads(cores: int, device_type: str, reserve_cores: int = 0) -> ThreadPlan:
    """Split the cores between torch and decoding so the two overlap without fighting.

    On a CPU, decoding a 12 MP JPEG (~30 ms of one core) and embedding it
    (~16 ms of CPU in bf16, ~70 ms in fp32) are both large, so torch gets half
    the cores and decoding as many threads as there are cores: with
    ``OMP_WAIT_POLICY=PASSIVE`` (set in ``photosort/__init__``) idle torch
    threads sleep instead of spinning, and whichever side has work uses the
    cores. With 2 cores both sides get both (measured: 2+2 threads index 41
    photos/s in bf16, 1+1 only 28, as one side idles while the other waits).
    On CUDA the model needs little CPU and every core decodes. A reserved
    core (the GUI's) is only taken out when there are more than 2.
    """
    usable = max(1, cores - reserve_cores) if cores > 2 else max(1, cores)
    if device_type == "cuda":
        return ThreadPlan(torch_threads=min(2, usable), decode_threads=max(2, usable))
    torch_threads = usable if usable <= 2 else max(1, usable // 2)
    return ThreadPlan(torch_threads=torch_threads, decode_threads=usable)


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Use ``count`` torch threads inside the block (``None``: leave the setting alone)."""
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
