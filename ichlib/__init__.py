"""ichlib: the tested library behind ichbook, an executable paper on intracranial haemorrhage on head CT."""

from ._heap import keep_heap

__version__ = "0.1.0"

keep_heap()  # slice-sized arrays are allocated and freed in every loop of this package: see _heap.py
