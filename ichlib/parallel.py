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


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` processes started by :func:`start_method`."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(start_method()))
