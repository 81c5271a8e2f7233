"""Where a chapter's seconds go: a stopwatch with named parts, read as a table at the end.

    watch = Stopwatch()
    with watch.part("baselines"):
        ...
    watch.seconds            # {"baselines": 12.3, ...}

A part timed twice adds up; an exception inside a part still counts the time it took.
"""

from __future__ import annotations

import time
from contextlib import contextmanager


class Stopwatch:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def part(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
