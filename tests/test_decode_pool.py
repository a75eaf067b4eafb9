"""The decode pool's per-file time limit: a stuck file is reported and the run goes on."""

from __future__ import annotations

import threading

from photosort.core.decode_pool import DecodePool


def test_results_come_back_in_submission_order() -> None:
    with DecodePool(threads=2) as pool:
        futures = [pool.submit(lambda x: x * x, i) for i in range(20)]
        assert [pool.result(f, lambda s: None) for f in futures] == [i * i for i in range(20)]


def test_a_stuck_task_times_out_and_a_replacement_worker_keeps_going() -> None:
    release = threading.Event()
    with DecodePool(threads=1, timeout_s=0.3) as pool:
        stuck = pool.submit(release.wait, 30)
        later = [pool.submit(lambda x: x + 1, i) for i in range(5)]
        assert pool.result(stuck, lambda s: f"timeout after {s:.1f}s").startswith("timeout after")
        assert [pool.result(f, lambda s: None) for f in later] == [1, 2, 3, 4, 5]
        assert pool.abandoned == 1
    release.set()


def test_exceptions_reach_the_caller() -> None:
    def boom() -> None:
        raise ValueError("bad file")

    with DecodePool(threads=1) as pool:
        future = pool.submit(boom)
        try:
            pool.result(future, lambda s: None)
        except ValueError as exc:
            assert "bad file" in str(exc)
        else:
            raise AssertionError("the exception was swallowed")
