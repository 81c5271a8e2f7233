"""Process pools that stay safe once a deep-learning runtime is loaded.

Forking is the fastest way to start workers on Linux, but forking a process whose threads hold locks (JAX's
and TensorFlow's runtimes keep thread pools) can deadlock the child. So the workers are forked while no such
runtime is loaded, and started from a clean server process (``forkserver``) once one is.
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

THREADED_RUNTIMES = ("jax", "tensorflow", "torch")


def start_method() -> str:
    """``fork`` on Linux while no threaded runtime is imported; ``forkserver`` (or ``spawn``) otherwise."""
    if sys.platform.startswith("linux") and not any(name in sys.modules for name in THREADED_RUNTIMES):
        return "fork"
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class StoppingPool(ProcessPoolExecutor):
    """A process pool that an exception (Ctrl-C in a notebook, a failed step) stops at once: its queued work is
    cancelled and its workers terminated, where the standard pool waits for all of its work to finish (and a
    second interrupt leaves the workers running)."""

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.shutdown(wait=True)
        else:
            self.stop()
        return False

    def stop(self) -> None:
        processes = list((getattr(self, "_processes", None) or {}).values())
        self.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(5)


def process_pool(workers: int) -> StoppingPool:
    """A pool of ``workers`` processes started by :func:`start_method` (use it in ``with``)."""
    return StoppingPool(workers, mp_context=multiprocessing.get_context(start_method()))
