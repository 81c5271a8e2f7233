"""Where a run computes and how it repeats: the accelerators the Keras backend sees, a scope that trains on all
of them, and one seed for Python, NumPy and the backend."""

from __future__ import annotations

import contextlib
import random

import numpy as np


def accelerators() -> list:
    """The GPUs the Keras backend sees (TensorFlow's physical devices, or JAX's), empty on a CPU machine."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.config.list_physical_devices("GPU")
    if keras.backend.backend() == "jax":
        import jax

        return [d for d in jax.devices() if d.platform == "gpu"]
    if keras.backend.backend() == "torch":
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return []


@contextlib.contextmanager
def distribution_scope(devices: list[str] | None = None):
    """Build and compile a model inside this so that training uses every device, by the backend's own means.

    TensorFlow: a ``tf.distribute.MirroredStrategy`` scope over ``devices`` (default: every GPU) when there are
    two or more; JAX: ``keras.distribution.DataParallel`` over them, set for the duration; one device or none,
    or torch (Keras has no data-parallel distribution for it): no change. Keras' ``fit`` then splits each batch
    across the replicas, so the batch size is the global one.
    """
    import keras

    if devices is None:
        devices = [getattr(d, "name", str(d)).replace("/physical_device:", "/") for d in accelerators()]
    if len(devices) < 2 or keras.backend.backend() == "torch":  # Keras offers torch no data parallelism: one GPU
        yield None
    elif keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            yield strategy
    else:
        previous = keras.distribution.distribution()
        keras.distribution.set_distribution(keras.distribution.DataParallel())
        try:
            yield keras.distribution.distribution()
        finally:
            keras.distribution.set_distribution(previous)


def set_determinism(seed: int) -> None:
    """One seed for Python, NumPy and the backend; deterministic kernels where TensorFlow offers them."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
        return
    try:  # what keras.utils.set_random_seed does, less importing TensorFlow (seconds, and its log lines)
        from keras.src.backend.common import global_state
        from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR
    except ImportError:  # another Keras layout: the public call, TensorFlow and all
        keras.utils.set_random_seed(seed)
    else:
        global_state.set_global_attribute("global_random_seed", seed)
        global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, None)  # recreated from the seed
        random.seed(seed)
        np.random.seed(seed)
    if keras.backend.backend() == "torch":
        import torch

        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)  # CPU kernels are; this guards the GPU ones


