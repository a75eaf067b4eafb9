"""The window's one way to run long work: started, progress, finished, failed, cancelled.

Long work in photosort is a plain core function taking a progress callback and
a :class:`~photosort.core.progress.CancelToken` (indexing, export, undo,
finishing a move). :class:`TaskRunner` runs such a function on the engine's
thread and reports it with five signals, the same for every kind of work, so a
dialog or the window only has to remember the :class:`Task` it started and
ignore the others. Progress arrives already throttled by the core's
:class:`~photosort.core.progress.Reporter`; nothing here throttles again.

Cancelling is not an error: work that stops on its token ends in ``cancelled``
with what it did so far. A failure that kept partial work (an export stopped by
a full disk) ends in ``failed`` with that partial result alongside.
"""

from __future__ import annotations

import enum
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from ..core.errors import Action, Cancelled, Face, user_message
from ..core.export import ExportStopped
from ..core.progress import CancelToken, Progress, ProgressFn

log = logging.getLogger(__name__)

_task_ids = itertools.count(1)


class TaskKind(enum.Enum):
    INDEX = "index"  # open folders: read the cache, index what changed
    EXPORT = "export"
    UNDO = "undo"  # put a move export's photos back
    FINISH = "finish"  # finish an interrupted move export
    TRAIN = "train"  # label photos from their keywords and train a classifier
    DUPLICATES = "duplicates"  # find near-duplicates and bursts, each with a suggested keeper
    TRASH = "trash"  # move the photos rejected as duplicates to the system's trash
    TAG = "tag"  # the sorting as keywords in XMP sidecars: read them (the plan), then write them
    UNTAG = "untag"  # put the sidecars of a tagging back as they were


@dataclass(frozen=True, eq=False)
class Task:
    """One piece of long work, made on the GUI thread when it is asked for (so it can be cancelled while queued)."""

    kind: TaskKind
    id: int = field(default_factory=lambda: next(_task_ids))
    token: CancelToken = field(default_factory=CancelToken)
    generation: int = 0  # indexing: the library it fills (the window drops news of a library it no longer shows)

    def cancel(self) -> None:
        self.token.cancel()


@dataclass(frozen=True)
class Failure:
    """Something the user must act on: core.errors.user_message's text and the action it offers."""

    action: Action
    message: str

    @classmethod
    def of(cls, exc: BaseException) -> Failure:
        message = user_message(exc, Face.WINDOW)
        if not message.expected:
            log.error("unexpected error in the worker", exc_info=exc)
        return cls(message.action, message.text)


def partial_result(exc: BaseException) -> Any:
    """What work that failed part way had done (kept on disk), or None."""
    return exc.result if isinstance(exc, ExportStopped) else None


@dataclass(frozen=True)
class Outcome:
    """How a task ended, in one value: its result (partial when it failed part way), and why it stopped early."""

    task: Task
    result: Any
    failure: Failure | None = None
    cancelled: bool = False


class TaskRunner(QObject):
    """Runs tasks on the thread that calls :meth:`run` (the engine's) and tells the GUI thread how each goes."""

    started = Signal(object)  # Task
    progress = Signal(object, object)  # Task, core.progress.Progress
    finished = Signal(object, object)  # Task, the work's result
    failed = Signal(object, object, object)  # Task, Failure, partial result or None
    cancelled = Signal(object, object)  # Task, the result so far (None when it stopped before any)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: list[Task] = []

    def submit(self, kind: TaskKind, generation: int = 0) -> Task:
        """A new task (GUI thread); it counts as pending until it ends, so :meth:`cancel` reaches it while queued."""
        task = Task(kind, generation=generation)
        with self._lock:
            self._pending.append(task)
        return task

    def cancel(self, *kinds: TaskKind) -> None:
        """Cancel every pending task of these kinds (all kinds when none given); each stops at its next check."""
        with self._lock:
            for task in self._pending:
                if not kinds or task.kind in kinds:
                    task.cancel()

    def pending(self, *kinds: TaskKind) -> list[Task]:
        with self._lock:
            return [t for t in self._pending if not kinds or t.kind in kinds]

    def run(self, task: Task, work: Callable[[ProgressFn, CancelToken], Any]) -> None:
        """Run ``work(progress, cancel)`` here and now, reporting through the signals; never raises."""
        self.started.emit(task)
        try:
            result = work(lambda progress: self._report(task, progress), task.token)
        except Cancelled:
            self.cancelled.emit(task, None)
        except Exception as exc:  # every failure becomes a message in the window
            self.failed.emit(task, Failure.of(exc), partial_result(exc))
        else:
            stopped = bool(result.cancelled) if hasattr(result, "cancelled") else task.token.cancelled
            (self.cancelled if stopped else self.finished).emit(task, result)
        finally:
            self._forget(task)

    def _report(self, task: Task, progress: Progress) -> None:
        self.progress.emit(task, progress)

    def _forget(self, task: Task) -> None:
        with self._lock:
            if task in self._pending:
                self._pending.remove(task)


class TaskWatch(QObject):
    """Follows the one task a dialog (or the window) started, and tells it in two signals: progress and the end."""

    progressed = Signal(object)  # core.progress.Progress
    ended = Signal(object)  # Outcome

    def __init__(self, runner: TaskRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._task: Task | None = None
        runner.progress.connect(self._on_progress)  # bound methods: delivered on this object's (the GUI) thread
        runner.finished.connect(self._on_finished)
        runner.cancelled.connect(self._on_cancelled)
        runner.failed.connect(self._on_failed)

    def follow(self, task: Task) -> Task:
        self._task = task
        return task

    @property
    def task(self) -> Task | None:
        """The task followed and not yet ended."""
        return self._task

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _on_progress(self, task: Task, progress: Progress) -> None:
        if task is self._task:
            self.progressed.emit(progress)

    def _on_finished(self, task: Task, result: Any) -> None:
        self._end(Outcome(task, result))

    def _on_cancelled(self, task: Task, result: Any) -> None:
        self._end(Outcome(task, result, cancelled=True))

    def _on_failed(self, task: Task, failure: Failure, partial: Any) -> None:
        self._end(Outcome(task, partial, failure))

    def _end(self, outcome: Outcome) -> None:
        if outcome.task is self._task:
            self._task = None
            self.ended.emit(outcome)
