"""The Keras backend: ichlib's default, the user's choice, and TensorFlow kept working beside the default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ichlib import backend

ROOT = Path(__file__).resolve().parents[1]


def test_default_is_the_first_installed_of_the_preferred_order(monkeypatch):
    installed = {"tensorflow"}
    monkeypatch.setattr(backend.importlib.util, "find_spec", lambda name: object() if name in installed else None)
    monkeypatch.setattr(backend, "has_gpu", lambda: False)
    assert backend.default_backend() == "tensorflow"
    installed |= {"torch", "jax"}
    assert backend.default_backend() == "torch"  # on CPU
    monkeypatch.setattr(backend, "has_gpu", lambda: True)
    assert backend.default_backend() == "jax"  # on a GPU machine
    installed.remove("jax")
    assert backend.default_backend() == "tensorflow"


def test_this_process_runs_the_default_unless_the_user_chose():
    import keras

    chosen = os.environ.get("KERAS_BACKEND")
    assert keras.backend.backend() == chosen == backend.configure()


def _run(code: str, keras_backend: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": keras_backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_an_unknown_backend_is_refused_by_name():
    done = _run("import ichlib", "theano")
    assert done.returncode != 0 and "KERAS_BACKEND='theano'" in done.stderr


_TENSORFLOW = """
import json, sys
import numpy as np
import keras
assert keras.backend.backend() == "tensorflow", keras.backend.backend()
from tests.test_train import toy_cache
from ichlib.gradcam import gradcam
from ichlib.runs import RunSpec, load_model, load_predictions
from ichlib.split import split_by_patient
from ichlib.train import train_model
out = sys.argv[1]
cache, index = toy_cache()
split = split_by_patient(index, seed=0, fractions=(0.6, 0.2, 0.2))
spec = RunSpec("resnet50", variant="optimised", image_size=32, epochs=1, batch_size=16)
summary = train_model(spec, cache, split, out + "/a")
train_model(spec, cache, split, out + "/b")
same = bool((load_predictions(out + "/a")[2] == load_predictions(out + "/b")[2]).all())
heat = gradcam(load_model(out + "/a"), cache.images[:2].astype("float32"), "any")
print(json.dumps({"backend": summary["backend"], "same": same, "heat": list(heat.shape), "finite": bool(np.isfinite(heat).all())}))
"""


@pytest.mark.slow
def test_tensorflow_still_trains_reproducibly_and_explains(tmp_path):
    """TensorFlow stays a supported backend: a run under it records it, repeats exactly, and Grad-CAM works."""
    pytest.importorskip("tensorflow")
    done = subprocess.run([sys.executable, "-c", _TENSORFLOW, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env={**os.environ, "KERAS_BACKEND": "tensorflow",
                                                       "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"backend": "tensorflow", "same": True, "heat": [2, 32, 32], "finite": True}


def test_the_lean_torch_paths_compute_what_keras_own_paths_compute():
    """The copies dropped around each convolution and the one-kernel batch normalisation change no number
    beyond rounding: a strided 'same' convolution, batch normalisation, max and average pooling give the same
    outputs, and three training steps the same weights and moving statistics."""
    import keras
    import numpy as np

    if keras.backend.backend() != "torch":
        pytest.skip("the lean paths are torch-backend changes")
    import ichlib.models  # noqa: F401  (applies them)
    from keras.src.backend.torch import nn

    lean, fused = nn._transpose_spatial_inputs, keras.layers.BatchNormalization.call
    assert getattr(lean, "lean", False) and getattr(fused, "fused", False)
    assert backend.lean_torch_layout() and backend.fused_torch_batchnorm()  # applied once, reported again

    def steps(transpose, call):
        nn._transpose_spatial_inputs, keras.layers.BatchNormalization.call = transpose, call
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((17, 17, 3)), keras.layers.Conv2D(8, 3, strides=2, padding="same"),
                                  keras.layers.BatchNormalization(momentum=0.9), keras.layers.ReLU(),
                                  keras.layers.MaxPooling2D(3, strides=2, padding="same"),
                                  keras.layers.Conv2D(4, 1), keras.layers.BatchNormalization(),
                                  keras.layers.AveragePooling2D(2),
                                  keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)])
        x = np.random.default_rng(0).standard_normal((6, 17, 17, 3)).astype("float32") * 3 + 1
        before = keras.ops.convert_to_numpy(model(x))
        model.compile(keras.optimizers.SGD(0.1), "mse")
        model.fit(x, np.ones((6, 1), "float32"), batch_size=2, epochs=1, verbose=0, shuffle=False)
        return [before, keras.ops.convert_to_numpy(model(x))] + [np.asarray(w) for w in model.get_weights()]

    try:
        mine, theirs = steps(lean, fused), steps(lean.original, fused.original)
    finally:
        nn._transpose_spatial_inputs, keras.layers.BatchNormalization.call = lean, fused
    assert len(mine) == len(theirs) == 2 + 14  # outputs, then kernels, biases, gamma, beta, moving mean, variance
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
