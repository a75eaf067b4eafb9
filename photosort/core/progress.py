"""Progress reporting for long work: a plain callback, throttled, with rate and ETA.

Long work in the engine is a plain function taking ``progress`` and ``cancel``;
the CLI draws a bar from the reports and the GUI turns them into signals.
Reports are throttled here (a few per second) so neither has to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import Cancelled


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
CancelFn = Callable[[], bool]


def never_cancelled() -> bool:
    return False


class Reporter:
    """Throttles progress reports for one phase and computes the rate and ETA."""

    def __init__(self, phase: str, total: int, callback: ProgressFn | None, interval_s: float = 0.25) -> None:
        self.phase = phase
        self.total = total
        self._callback = callback
        self._interval = interval_s
        self._start = time.monotonic()
        self._last = 0.0
        self._rate_base = 0  # items done before timing began (e.g. the first, warm-up batch)
        self._rate_start = self._start

    def restart_rate(self, done: int) -> None:
        """Measure the rate from here on (after model warm-up), so the ETA is not skewed."""
        self._rate_base = done
        self._rate_start = time.monotonic()

    def update(self, done: int, force: bool = False) -> None:
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


def check_cancel(cancel: CancelFn | None) -> None:
    """Raise Cancelled between batches when the user asked to stop."""
    if cancel is not None and cancel():
        raise Cancelled()
