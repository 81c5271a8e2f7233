"""Which Keras backend runs the models, chosen before Keras is first imported.

``KERAS_BACKEND`` set by the user always wins. Otherwise, on a CPU machine ichlib picks PyTorch where it is
installed (no graph to build before the first step, and the same speed on every 2-core machine tried, where
TensorFlow's varied 2.4x), else TensorFlow; on a machine with an NVIDIA GPU it picks JAX where installed
(compiled steps 6-8x faster than Keras' eager torch path there). ``benchmarks/bench_training.py`` and
``benchmarks/gpu_check.py`` measure them; the figures are in the README's *Speed* section.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys

BACKENDS = ("torch", "tensorflow", "jax")
# The first one installed is the default. On CPU torch has no graph to build and ran the same on every machine
# tried; on a GPU, Keras' torch path runs eagerly and JAX's compiled steps were 6-8x faster (README, *Speed*).
CPU_ORDER = ("torch", "tensorflow", "jax")
GPU_ORDER = ("jax", "tensorflow", "torch")


def has_gpu() -> bool:
    """Whether this machine has an NVIDIA GPU (its driver's files), found without importing any framework."""
    return os.path.exists("/dev/nvidiactl") or shutil.which("nvidia-smi") is not None


def default_backend() -> str:
    """The backend ichlib uses when ``KERAS_BACKEND`` is not set: the first installed of GPU_ORDER on a machine
    with an NVIDIA GPU, of CPU_ORDER elsewhere."""
    for name in GPU_ORDER if has_gpu() else CPU_ORDER:
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
