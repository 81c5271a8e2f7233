"""ichlib: the tested library behind ichbook, an executable paper on intracranial haemorrhage on head CT."""

from ._heap import keep_heap
from .backend import configure as _configure_backend

__version__ = "0.1.0"

_configure_backend()  # before anything imports Keras: see backend.py
keep_heap()  # slice-sized arrays are allocated and freed in every loop of this package: see _heap.py
