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
from ichlib.train import split_by_patient, train_model
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
