"""The one task runner: every kind of long work ends in exactly one of finished, failed or cancelled."""

from __future__ import annotations

import pytest

from photosort.core.errors import Action, Cancelled, DiskFullError
from photosort.core.export import ExportResult, ExportStopped
from photosort.core.progress import Progress
from photosort.gui.task_runner import Outcome, TaskKind, TaskRunner, TaskWatch


@pytest.fixture
def runner(qtbot) -> TaskRunner:
    return TaskRunner()


def ends(runner: TaskRunner) -> list[tuple[str, object]]:
    seen: list[tuple[str, object]] = []
    runner.finished.connect(lambda task, result: seen.append(("finished", result)))
    runner.cancelled.connect(lambda task, result: seen.append(("cancelled", result)))
    runner.failed.connect(lambda task, failure, partial: seen.append(("failed", (failure, partial))))
    return seen


def test_work_that_returns_finishes_with_its_result_and_reports_progress(runner: TaskRunner) -> None:
    seen, progress = ends(runner), []
    runner.progress.connect(lambda task, p: progress.append(p.done))
    task = runner.submit(TaskKind.EXPORT)

    def work(report, cancel):
        for done in range(3):
            report(Progress("export", done + 1, 3))
        return ExportResult(done=3)

    runner.run(task, work)
    assert seen == [("finished", ExportResult(done=3))] and progress == [1, 2, 3]
    assert runner.pending() == []


def test_cancelling_is_not_an_error_and_keeps_what_was_done(runner: TaskRunner) -> None:
    seen = ends(runner)
    export, index = runner.submit(TaskKind.EXPORT), runner.submit(TaskKind.INDEX)
    runner.cancel(TaskKind.EXPORT)  # only the export: indexing goes on
    assert export.token.cancelled and not index.token.cancelled
    runner.run(export, lambda report, cancel: ExportResult(done=2, cancelled=cancel.cancelled))
    runner.run(index, lambda report, cancel: (_ for _ in ()).throw(Cancelled()))
    assert seen == [("cancelled", ExportResult(done=2, cancelled=True)), ("cancelled", None)]


def test_a_failure_part_way_carries_the_message_its_action_and_the_partial_result(runner: TaskRunner) -> None:
    seen = ends(runner)
    partial = ExportResult(done=5)

    def fill_the_disk(report, cancel):
        raise ExportStopped(str(DiskFullError("The destination disk is full.")), partial)

    runner.run(runner.submit(TaskKind.EXPORT), fill_the_disk)
    [(kind, (failure, kept))] = seen
    assert kind == "failed" and kept is partial and "full" in failure.message
    runner.run(runner.submit(TaskKind.UNDO), lambda report, cancel: 1 / 0)  # a bug: reported, never raised
    assert seen[-1][0] == "failed" and seen[-1][1][0].action == Action.REPORT and seen[-1][1][1] is None


def test_a_watch_hears_only_the_task_it_follows(qtbot, runner: TaskRunner) -> None:
    watch = TaskWatch(runner)
    outcomes: list[Outcome] = []
    watch.ended.connect(outcomes.append)
    other, mine = runner.submit(TaskKind.EXPORT), runner.submit(TaskKind.UNDO)
    watch.follow(mine)
    runner.run(other, lambda report, cancel: ExportResult(done=1))
    assert outcomes == [] and watch.task is mine
    runner.run(mine, lambda report, cancel: ExportResult(done=4))
    assert [o.result.done for o in outcomes] == [4] and outcomes[0].task is mine and watch.task is None


def test_requests_sent_after_a_change_of_model_run_on_the_new_engine(qtbot, settings, tmp_path) -> None:
    """Requests also run between indexing batches: one sent right after a model change must still wait for it."""
    import threading

    from photosort.gui.worker import EngineWorker

    worker = EngineWorker(settings, None, threading.Lock(), TaskRunner())
    seen: list[str] = []
    change = worker.expect_settings()
    worker.post(lambda: seen.append(worker._settings.model))
    worker.drain_requests()  # e.g. between two batches of an indexing still running on the old engine
    assert seen == []
    other = settings.with_changes(model=str(tmp_path / "other-model"))
    worker.apply_settings(other, change)
    assert seen == [str(tmp_path / "other-model")]
