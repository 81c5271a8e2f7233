"""ichlib.clock: a part timed twice adds up, and a part that fails still counts (on a fake clock)."""

from __future__ import annotations

import itertools

import pytest

from ichlib import clock


def test_parts_add_up_and_a_failing_part_still_counts(monkeypatch):
    ticks = itertools.count(0, 2.5)  # every reading of the clock is 2.5 s after the last
    monkeypatch.setattr(clock.time, "perf_counter", lambda: next(ticks))
    watch = clock.Stopwatch()
    for _ in range(2):
        with watch.part("a"):
            pass
    with pytest.raises(RuntimeError):
        with watch.part("b"):
            raise RuntimeError("boom")
    assert watch.seconds == {"a": 5.0, "b": 2.5}
