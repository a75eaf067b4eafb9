"""A decode thread pool with a per-file time limit.

A photo library always holds a few files that make a decoder crawl (fuzzed
TIFFs, giant PSDs). Threads cannot be killed, so a file that runs past the
limit is reported as a failure and its worker is *abandoned*: a fresh worker
takes its place, so the run goes on at full speed and always ends. The
abandoned thread is a daemon and its late result is dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

_STOP = object()


@dataclass
class _Task:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: Future = field(default_factory=Future)
    started: float | None = None


class DecodePool:
    """``threads`` daemon workers; ``result(future)`` waits at most ``timeout_s`` after the task started."""

    def __init__(self, threads: int, timeout_s: float = 30.0, name: str = "decode") -> None:
        self.timeout_s = timeout_s
        self._name = name
        self._queue: queue.SimpleQueue[_Task | object] = queue.SimpleQueue()
        self._tasks: dict[int, _Task] = {}
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.abandoned = 0
        for _ in range(max(1, threads)):
            self._spawn()

    def _spawn(self) -> None:
        worker = threading.Thread(target=self._work, name=f"{self._name}-{len(self._workers)}", daemon=True)
        self._workers.append(worker)
        worker.start()

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            if task is _STOP:
                return
            assert isinstance(task, _Task)
            if not task.future.set_running_or_notify_cancel():
                continue
            task.started = time.monotonic()
            try:
                result = task.fn(*task.args)
            except BaseException as exc:
                if not task.future.done():
                    task.future.set_exception(exc)
            else:
                if not task.future.done():
                    task.future.set_result(result)
            if task.future.cancelled() or getattr(task.future, "_abandoned", False):
                return  # our slot was given to a replacement while we were stuck

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        task = _Task(fn, args)
        with self._lock:
            self._tasks[id(task.future)] = task
        self._queue.put(task)
        return task.future

    def result(self, future: Future, on_timeout: Callable[[float], Any]) -> Any:
        """The task's result; ``on_timeout(seconds)`` stands in for it when it ran past the limit."""
        with self._lock:
            task = self._tasks.pop(id(future))
        while True:
            try:
                return future.result(timeout=0.1)
            except FutureTimeout:
                if task.started is not None and time.monotonic() - task.started > self.timeout_s:
                    return self._abandon(task, on_timeout)

    def _abandon(self, task: _Task, on_timeout: Callable[[float], Any]) -> Any:
        elapsed = time.monotonic() - (task.started or time.monotonic())
        task.future._abandoned = True  # type: ignore[attr-defined]
        self.abandoned += 1
        log.warning("a decode ran %.0fs, past the %.0fs limit; giving its thread up", elapsed, self.timeout_s)
        self._spawn()
        return on_timeout(elapsed)

    def shutdown(self, cancel_pending: bool = True) -> None:
        """Stop the workers once they finish their current file; pending tasks are cancelled."""
        with self._lock:
            pending = list(self._tasks.values())
            self._tasks.clear()
        if cancel_pending:
            for task in pending:
                task.future.cancel()
        for _ in self._workers:
            self._queue.put(_STOP)

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
