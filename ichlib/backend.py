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


def lean_torch_layout() -> bool:
    """Drop two copies of every convolution's input under Keras' torch backend; True where it applied.

    Keras keeps images channels-last (N, H, W, C); for each convolution and pooling its torch backend permutes
    them to (N, C, H, W), copies that into plain contiguous memory, and then (for a convolution) copies it once
    more into torch's channels-last memory format, which is the layout the permuted view had to begin with.
    ``benchmarks/profile_step.py`` found those copies at 16 % of a DenseNet121 training step and 28 % of a
    prediction on a 2-core CPU. The permuted view goes to torch as it is: its convolution and pooling kernels
    take channels-last strides, and the numbers are the same (``tests/test_backend.py`` compares both ways).
    Set ``ICHBOOK_KERAS_LAYOUT=1`` to keep Keras' own path.
    """
    if os.environ.get("ICHBOOK_KERAS_LAYOUT") == "1":
        return False
    import keras

    if keras.backend.backend() != "torch":
        return False
    try:
        from keras.src.backend.torch import nn
    except ImportError:  # another Keras layout: leave it as it is
        return False
    original = getattr(nn, "_transpose_spatial_inputs", None)
    if original is None or getattr(original, "lean", False):
        return original is not None

    def transpose(inputs):
        if inputs.ndim == 4:  # a view: (N, H, W, C) memory read as (N, C, H, W) is torch's channels_last
            return inputs.permute(0, 3, 1, 2)
        return original(inputs)

    transpose.lean = True
    transpose.original = original
    nn._transpose_spatial_inputs = transpose
    return True


def fused_torch_batchnorm() -> bool:
    """Batch normalisation in one torch kernel under Keras' torch backend; True where it applied.

    Keras computes a batch-norm layer from a dozen generic operations (mean, variance, subtract, multiply, ...),
    each a pass over the activations and a Python dispatch, forward and backward; ``benchmarks/profile_step.py``
    found them at about a quarter of a DenseNet121 training step's operator time, and their dispatch costs as
    much again at batch 16. Here a 4-D, channels-last layer without mask or renormalisation calls
    ``torch.nn.functional.batch_norm`` instead: in training on the batch's statistics (the gradient flows through
    them as before) with the moving averages updated by Keras' own rule from the same biased variance; at
    inference on the moving averages. Anything else takes Keras' path. ``tests/test_backend.py`` compares the
    two. Set ``ICHBOOK_KERAS_LAYOUT=1`` to keep Keras' own path.
    """
    if os.environ.get("ICHBOOK_KERAS_LAYOUT") == "1":
        return False
    import keras

    if keras.backend.backend() != "torch":
        return False
    layer = keras.layers.BatchNormalization
    if getattr(layer.call, "fused", False):
        return True
    import torch
    import torch.nn.functional as F

    original = layer.call

    def call(self, inputs, training=None, mask=None):
        if (mask is not None or self.renorm or getattr(inputs, "ndim", 0) != 4 or self.axis not in (-1, 3)
                or inputs.dtype != torch.float32 or not (self.center and self.scale)):
            return original(self, inputs, training=training, mask=mask)
        x = inputs.permute(0, 3, 1, 2)  # a view: torch's channels_last layout
        if training and self.trainable:
            # with momentum 1 torch leaves the batch's mean and unbiased variance in the buffers: no second pass
            mean, variance = x.new_zeros(x.shape[1]), x.new_ones(x.shape[1])
            out = F.batch_norm(x, mean, variance, self.gamma.value, self.beta.value, True, 1.0, self.epsilon)
            n = x.numel() // x.shape[1]
            variance = variance * ((n - 1) / n)  # Keras keeps the biased variance
            momentum = self.momentum
            self.moving_mean.assign(self.moving_mean.value * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(self.moving_variance.value * momentum + variance * (1.0 - momentum))
        else:
            out = F.batch_norm(x, self.moving_mean.value, self.moving_variance.value, self.gamma.value,
                               self.beta.value, False, 0.0, self.epsilon)
        return out.permute(0, 2, 3, 1)

    call.fused = True
    call.original = original
    layer.call = call
    return True
