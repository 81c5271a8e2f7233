"""ichlib.devices: the several-device path (on two logical CPUs) and one device or none left alone."""

from __future__ import annotations

import pytest


_MIRRORED = """
import tensorflow as tf
tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from ichlib.losses import WeightedBCE
from ichlib.models import build_model
from ichlib.devices import distribution_scope
import keras
with distribution_scope(["/cpu:0", "/cpu:1"]) as strategy:
    assert strategy.num_replicas_in_sync == 2, strategy
    model = build_model("resnet50", 32)
    model.compile(keras.optimizers.Adam(1e-3), WeightedBCE())
x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
y = (np.arange(48).reshape(8, 6) % 2).astype("float32")
history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
assert np.isfinite(history.history["loss"]).all()
print("replicas", strategy.num_replicas_in_sync)
"""


@pytest.mark.slow
def test_mirrored_strategy_trains_over_two_devices():
    """The GPU profile's several-device path, run on two logical CPUs (TensorFlow only)."""
    import subprocess
    import sys

    import os

    pytest.importorskip("tensorflow")
    done = subprocess.run([sys.executable, "-c", _MIRRORED], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "replicas 2" in done.stdout


def test_one_device_or_none_changes_nothing():
    from ichlib.devices import distribution_scope

    with distribution_scope([]) as strategy:
        assert strategy is None
    with distribution_scope(["/gpu:0"]) as strategy:
        assert strategy is None
