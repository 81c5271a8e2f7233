"""Train each architecture for a few steps at 512 px and time it, under whichever Keras backend is present.

    python benchmarks/gpu_check.py                      # 512 px, a small phantom, 10 steps, batch 16
    python benchmarks/gpu_check.py --size 64 --steps 3 --batch 4 --studies 4 --matrix 64    # a CPU smoke run
    KERAS_BACKEND=jax python benchmarks/gpu_check.py    # the same under JAX

Prints, per architecture: training images/s (after the first, graph-building step) and inference ms/image;
then trains one model through ``ichlib.train.train_model`` for two epochs (the book's own path: checkpoints,
back-up-and-restore, predictions) and prints its summary. With GPUs visible it uses mixed precision and every
GPU through ``ichlib.devices.distribution_scope`` (MirroredStrategy under TensorFlow, DataParallel under JAX).
A script, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--matrix", type=int, default=512)
    parser.add_argument("--studies", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--archs", default="efficientnetb2,resnet50,densenet121")
    parser.add_argument("--no-train-model", dest="train_model", action="store_false",
                        help="skip the two-epoch run through ichlib.train")
    args = parser.parse_args()

    import keras

    from ichlib.cache import build_cache
    from ichlib.losses import WeightedBCE
    from ichlib.models import build_model
    from ichlib.phantom import make_cohort
    from ichlib.rsna import index_dicoms, read_labels
    from ichlib.runs import RunSpec
    from ichlib.devices import accelerators, distribution_scope
    from ichlib.split import split_by_patient
    from ichlib.train import train_model

    backend = keras.backend.backend()
    gpus = accelerators()
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")

    with tempfile.TemporaryDirectory() as tmp:
        make_cohort(tmp + "/cohort", args.studies, seed=0, matrix=args.matrix, progress=False)
        index, _ = index_dicoms(tmp + "/cohort/stage_2_train", progress=False)
        labels = read_labels(tmp + "/cohort/stage_2_train.csv")
        cache = build_cache(index, tmp + "/cache", size=args.size, labels=labels, progress=False)
        need = args.batch * (args.steps + 1)
        rows = np.resize(np.arange(len(cache.ids)), need)
        x, y = cache.images[rows].astype(np.float32), cache.labels[rows].astype(np.float32)
        if args.train_model:
            spec = RunSpec(args.archs.split(",")[0], image_size=args.size, epochs=2, batch_size=args.batch,
                           mixed_precision=bool(gpus))
            start = time.perf_counter()
            summary = train_model(spec, cache, split_by_patient(index, 0, labels), tmp + "/run")
            keras.mixed_precision.set_global_policy("mixed_float16" if gpus else "float32")
            print("train_model", json.dumps({k: summary[k] for k in ("name", "epochs_run", "train_seconds",
                                                                     "test_seconds_per_image", "backend")}),
                  f"{time.perf_counter() - start:.1f} s in all", flush=True)

    results = {"backend": backend, "devices": [str(g) for g in gpus] or ["cpu"], "size": args.size,
               "batch": args.batch, "mixed_precision": bool(gpus)}
    for arch in args.archs.split(","):
        with distribution_scope():  # the whole run: JAX's DataParallel also places the batches
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
