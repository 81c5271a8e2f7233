"""Which Keras backend runs the models, chosen before Keras is first imported.

``KERAS_BACKEND`` set by the user always wins. Otherwise ichlib picks PyTorch where it is installed and
TensorFlow where it is not: on a 2-core CPU the same Keras 3 code trained 2-3x faster under torch, and it has
no graph to build before the first step (``benchmarks/bench_training.py`` measures both; README, *Speed*).
"""

from __future__ import annotations

import importlib.util
import os
import sys

BACKENDS = ("torch", "tensorflow", "jax")
DEFAULT_ORDER = ("torch", "tensorflow")  # the first one installed is the default


def default_backend() -> str:
    """The backend ichlib uses when ``KERAS_BACKEND`` is not set: the first of DEFAULT_ORDER that is installed."""
    for name in DEFAULT_ORDER:
        if importlib.util.find_spec(name) is not None:
            return name
    return "tensorflow"


def configure() -> str:
    """Set ``KERAS_BACKEND`` to ichlib's default unless the user set it; return the backend Keras will use.

    Once Keras is imported its backend is fixed: then this reports that one.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    chosen = os.environ.get("KERAS_BACKEND") or default_backend()
    if chosen not in BACKENDS:
        raise ValueError(f"KERAS_BACKEND={chosen!r} is not one of {', '.join(BACKENDS)}")
    os.environ["KERAS_BACKEND"] = chosen
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up lines are noise in a book build
    return chosen


def threads() -> int | None:
    """Threads the backend uses for one operation (None where it does not say)."""
    import keras

    name = keras.backend.backend()
    if name == "torch":
        import torch

        return torch.get_num_threads()
    if name == "tensorflow":
        import tensorflow as tf

        return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    return None
