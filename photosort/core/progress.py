"""The one contract for long work: a plain function taking ``progress`` and ``cancel``.

Indexing, exporting, undoing, finishing a move, training and downloading the model all have the shape
``work(..., progress: ProgressFn | None = None, cancel: CancelToken | None = None)``.
``progress`` receives :class:`Progress` reports, already throttled here by
:class:`Reporter` (a few per second, plus the first and the last), so neither
the CLI's bar nor the window's task runner has to throttle anything.
``cancel`` is a :class:`CancelToken` the caller may set from any thread; the
work polls it between batches (never in the middle of writing a photo) and
ends by raising :class:`~photosort.core.errors.Cancelled` or by returning a
result marked cancelled. What was finished is kept either way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import Cancelled

PROGRESS_INTERVAL_S = 0.25  # at most this often to the CLI or the window (50k photos: not 50k reports)


@dataclass(frozen=True)
class Progress:
    """Where long work stands: ``done`` of ``total`` items in ``phase``."""

    phase: str
    done: int
    total: int
    rate: float = 0.0  # items per second, over this phase so far
    eta_s: float | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


ProgressFn = Callable[[Progress], None]


class CancelToken:
    """Set once by whoever wants the work to stop (Ctrl-C, a Cancel button, closing the window)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise Cancelled between batches when the user asked to stop."""
        if self._event.is_set():
            raise Cancelled()


def is_cancelled(cancel: CancelToken | None) -> bool:
    return cancel is not None and cancel.cancelled


def check_cancel(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()


class Reporter:
    """Throttles progress reports for one phase and computes the rate and ETA."""

    def __init__(self, phase: str, total: int, callback: ProgressFn | None, interval_s: float | None = None) -> None:
        self.phase = phase
        self.total = total
        self._callback = callback
        self._interval = PROGRESS_INTERVAL_S if interval_s is None else interval_s
        self._start = time.monotonic()
        self._last = float("-inf")
        self._rate_base = 0  # items done before timing began (e.g. the first, warm-up batch)
        self._rate_start = self._start

    def restart_rate(self, done: int) -> None:
        """Measure the rate from here on (after model warm-up), so the ETA is not skewed."""
        self._rate_base = done
        self._rate_start = time.monotonic()

    def update(self, done: int, force: bool = False) -> None:
        """Report ``done`` items; dropped unless forced, the last item, or ``interval_s`` since the last report."""
        if self._callback is None:
            return
        now = time.monotonic()
        if not force and now - self._last < self._interval and done < self.total:
            return
        self._last = now
        elapsed = now - self._rate_start
        rate = (done - self._rate_base) / elapsed if elapsed > 0 and done > self._rate_base else 0.0
        eta = (self.total - done) / rate if rate > 0 else None
        self._callback(Progress(self.phase, done, self.total, rate, eta))
