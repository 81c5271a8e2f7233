import sys

from ichlib import parallel


def _square(x):
    return x * x


def test_fork_until_a_threaded_runtime_is_loaded_then_forkserver(monkeypatch):
    for name in parallel.THREADED_RUNTIMES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    if sys.platform.startswith("linux"):
        assert parallel.start_method() == "fork"
    monkeypatch.setitem(sys.modules, "jax", object())
    assert parallel.start_method() in ("forkserver", "spawn")


def test_the_pool_runs_work_under_either_method(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", object())  # forces forkserver / spawn
    with parallel.process_pool(2) as pool:
        assert list(pool.map(_square, range(5))) == [0, 1, 4, 9, 16]


def _nap(seconds):
    import time

    time.sleep(seconds)
    return seconds


def test_an_interrupt_leaves_no_worker_behind():
    """Ctrl-C in a chapter that is making the cohort: the workers stop with it instead of working on."""
    import time

    import pytest

    with pytest.raises(KeyboardInterrupt):
        with parallel.process_pool(2) as pool:
            futures = [pool.submit(_nap, 30) for _ in range(4)]
            time.sleep(1)  # the workers are busy
            processes = list(pool._processes.values())
            interrupted = time.monotonic()
            raise KeyboardInterrupt
    # the standard pool would first finish the four 30-second naps: not a speed figure, a hang
    assert time.monotonic() - interrupted < 20, "the interrupt waited for the queued work"
    deadline = time.monotonic() + 10
    while any(p.is_alive() for p in processes):
        assert time.monotonic() < deadline, "a worker outlived the interrupt"
        time.sleep(0.2)
    assert all(f.cancelled() or f.done() for f in futures[2:])
