"""Keep freed array memory in the heap instead of handing it back to the OS after every slice.

A 512 x 512 float32 slice is 1 MiB. glibc gives allocations that size their own mmap and unmaps them on free, so
the next slice pays a page fault per 4 KiB page; on the virtual machines this project runs on that alone tripled
the cost of reading a slice (benchmarks/bench_data.py). Raising the mmap and trim thresholds keeps those pages.
Set ICHLIB_KEEP_HEAP=0 to leave the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def keep_heap(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Raise glibc's mmap / trim thresholds for this process; True if it took effect (glibc Linux only)."""
    if not sys.platform.startswith("linux") or os.environ.get("ICHLIB_KEEP_HEAP", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(libc.mallopt(M_TRIM_THRESHOLD, trim_threshold))
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
