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
