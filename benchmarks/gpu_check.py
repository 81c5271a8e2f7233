"""Train each architecture for a few steps at 512 px and time it, under whichever Keras backend is present.

    python benchmarks/gpu_check.py                      # 512 px, a small phantom, 10 steps, batch 16
    python benchmarks/gpu_check.py --size 64 --steps 3 --batch 4 --studies 1 --matrix 64    # a CPU smoke run
    KERAS_BACKEND=jax python benchmarks/gpu_check.py    # the same under JAX

Prints, per architecture: training images/s (after the first, graph-building step) and inference ms/image.
Uses mixed precision and tf.distribute.MirroredStrategy over every GPU when the backend is TensorFlow and GPUs
are visible. A script, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--matrix", type=int, default=512)
    parser.add_argument("--studies", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--archs", default="efficientnetb2,resnet50,densenet121")
    args = parser.parse_args()

    import keras

    from ichlib.cache import build_cache
    from ichlib.losses import WeightedBCE
    from ichlib.models import build_model
    from ichlib.phantom import make_cohort
    from ichlib.rsna import index_dicoms, read_labels

    backend = keras.backend.backend()
    gpus = []
    scope = contextlib.nullcontext()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if len(gpus) > 1:
            scope = tf.distribute.MirroredStrategy().scope()
    elif backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")

    with tempfile.TemporaryDirectory() as tmp:
        make_cohort(tmp + "/cohort", args.studies, seed=0, matrix=args.matrix, progress=False)
        index, _ = index_dicoms(tmp + "/cohort/stage_2_train", progress=False)
        cache = build_cache(index, tmp + "/cache", size=args.size, labels=read_labels(tmp + "/cohort/stage_2_train.csv"),
                            progress=False)
        need = args.batch * (args.steps + 1)
        rows = np.resize(np.arange(len(cache.ids)), need)
        x, y = cache.images[rows].astype(np.float32), cache.labels[rows].astype(np.float32)

    results = {"backend": backend, "devices": [str(g) for g in gpus] or ["cpu"], "size": args.size,
               "batch": args.batch, "mixed_precision": bool(gpus)}
    for arch in args.archs.split(","):
        with scope:
            model = build_model(arch, args.size)
            model.compile(keras.optimizers.Adam(5e-4), WeightedBCE())
        start = time.perf_counter()
        model.train_on_batch(x[: args.batch], y[: args.batch])
        first = time.perf_counter() - start
        start = time.perf_counter()
        for step in range(1, args.steps + 1):
            model.train_on_batch(x[step * args.batch:(step + 1) * args.batch], y[step * args.batch:(step + 1) * args.batch])
        train_rate = args.steps * args.batch / (time.perf_counter() - start)
        model.predict(x[: args.batch], verbose=0)  # build the inference graph
        start = time.perf_counter()
        model.predict(x, batch_size=args.batch, verbose=0)
        infer_ms = 1000 * (time.perf_counter() - start) / len(x)
        results[arch] = {"first_step_s": round(first, 1), "train_images_per_s": round(train_rate, 1),
                         "inference_ms_per_image": round(infer_ms, 2)}
        print(arch, json.dumps(results[arch]), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
