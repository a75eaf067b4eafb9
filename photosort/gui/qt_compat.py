"""A guard against a PySide6 defect that aborts long sessions on Python 3.10 and 3.11.

PySide6 6.12.0 drops one reference to ``None`` every time a wrapped C++
function returns ``void`` (``painter.setPen``, ``widget.update``, …) or hands
an empty QVariant back to Python. On Python 3.12+ ``None`` is immortal and
nothing happens; on older Pythons the interpreter aborts with "deallocating
None" once the count reaches zero, which is after a few thousand calls:
seconds of scrolling a photo grid.

We detect the defect with a few probe calls and, only when it is present,
raise ``None``'s reference count by 2**40 once. ``None`` is never freed
anyway, so this has no other effect, and it outlasts any session (a trillion
leaked calls). Where the defect is fixed this does nothing.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from PySide6.QtCore import QObject

log = logging.getLogger(__name__)

PROBE_CALLS = 8
BALLAST = 1 << 40

_protected = False


def none_refcount_leaks() -> bool:
    """True when void PySide6 calls lose references to None (the probe's losses are given back)."""
    if sys.version_info >= (3, 12):
        return False
    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(PROBE_CALLS):
        probe.setObjectName("probe")
    lost = before - sys.getrefcount(None)
    if lost > 0:
        _add_references_to_none(lost)
    return lost >= PROBE_CALLS // 2


def protect_none_refcount() -> bool:
    """Apply the guard once if this PySide6 needs it; True when it was (or had been) applied."""
    global _protected
    if _protected:
        return True
    if not none_refcount_leaks():
        return False
    if not _add_references_to_none(BALLAST):
        log.warning("this PySide6 leaks references to None and the guard could not be applied: "
                    "long sessions may crash; use Python 3.12+ or another PySide6 version")
        return False
    _protected = True
    log.info("guarding against PySide6's None reference leak (PySide6 on Python %d.%d)", *sys.version_info[:2])
    return True


def _add_references_to_none(count: int) -> bool:
    """Add ``count`` to None's reference count, after checking where CPython keeps it."""
    field = ctypes.c_ssize_t.from_address(id(None))  # ob_refcnt: the first field of every object
    if abs(field.value - (sys.getrefcount(None) - 1)) > 64:
        return False  # not the layout we expect (e.g. a debug build): leave it alone
    field.value += count
    return True
