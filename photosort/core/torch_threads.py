"""Run a block with a given torch thread count, restoring the previous count after.

torch's thread count is process-wide; the indexer's model thread, head training
and the bench each want their own for a while. torch is imported only when a
count is actually set, so importing this module stays cheap for the GUI.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


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
