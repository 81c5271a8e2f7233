"""Training speed on this machine, measured against the machine's own fp32 matmul rate in the same run.

    python benchmarks/bench_training.py                         # the book's settings (profiles.yml cpu), all backbones
    python benchmarks/bench_training.py --archs resnet50,densenet121 --images 256
    python benchmarks/bench_training.py --backend tensorflow --batch 16
    python benchmarks/bench_training.py --archs densenet121 --policy mixed_bfloat16 --batch 64
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 python benchmarks/bench_training.py
                                                                # a newcomer's AVX2 machine, seen on an AVX-512 one
    ICHBOOK_KERAS_LAYOUT=1 python benchmarks/bench_training.py   # Keras' own torch convolution and batch norm
                                                                # (without ichlib.backend's two fixes), to compare

Prints one JSON line for the machine (CPU model and flags, threads, the backend's fp32 matmul GFLOP/s) and
then one per backbone: ``images_per_s`` of the book's own fit (cached uint8 batches through ``ichlib.train``,
the training metrics on), ``first_step_s`` (the first one-batch fit: graph building where the backend has one),
``predict_ms_per_image``, ``train_gflop_per_image`` (forward and backward FLOPs counted from the model's own
layers by ``ichlib.models.training_flops``) and ``peak_fraction``: the training step's FLOP rate over the matmul
rate. The fraction is a ratio measured in one run, so it travels between machines where absolute figures do not.
A script, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from ichlib.machine import matmul_gflops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=None, help="default: the cpu profile's batch_size")
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--archs", default="efficientnetb2,resnet50,densenet121")
    parser.add_argument("--policy", default="float32", help="Keras dtype policy, e.g. mixed_bfloat16")
    parser.add_argument("--backend", default=None, help="tensorflow, torch or jax (default: ichlib's choice)")
    args = parser.parse_args()
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend

    from ichlib.backend import configure

    configure()
    import keras

    from ichlib.book import project_root
    from ichlib.parameters import load_profiles
    from ichlib.losses import RSNALogLoss, WeightedBCE
    from ichlib.machine import cpu_facts
    from ichlib.models import build_model, training_flops
    from ichlib.batches import batches_class

    batch = args.batch or int(load_profiles(project_root() / "profiles.yml")["cpu"]["batch_size"])
    keras.mixed_precision.set_global_policy(args.policy)
    peak = matmul_gflops()
    from ichlib.backend import threads

    print(json.dumps({**cpu_facts(), "backend": keras.backend.backend(), "threads": threads(),
                      "matmul_gflops": round(peak, 1),
                      "torch_paths": "keras" if os.environ.get("ICHBOOK_KERAS_LAYOUT") == "1" else "ichlib"}),
          flush=True)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (args.images, args.size, args.size, 3), dtype=np.uint8)
    y = (rng.random((args.images, 6)) > 0.7).astype(np.uint8)
    batches = batches_class()
    for arch in args.archs.split(","):
        model = build_model(arch, args.size, bn_momentum=0.9)
        model.compile(keras.optimizers.Adam(1e-3), WeightedBCE(),
                      metrics=[RSNALogLoss(), keras.metrics.AUC(multi_label=True, num_labels=6, name="auc")])
        start = time.perf_counter()
        model.fit(batches(x, y, np.arange(batch), batch, True, 0), epochs=1, verbose=0)
        first = time.perf_counter() - start
        start = time.perf_counter()
        model.fit(batches(x, y, np.arange(args.images), batch, True, 0), epochs=1, verbose=0)
        rate = args.images / (time.perf_counter() - start)
        model.predict(x[:batch], batch_size=64, verbose=0)
        start = time.perf_counter()
        model.predict(x, batch_size=64, verbose=0)
        predict_ms = (time.perf_counter() - start) / len(x) * 1e3
        flops = training_flops(model)
        print(json.dumps({"arch": arch, "backend": keras.backend.backend(), "size": args.size, "batch": batch,
                          "policy": args.policy, "first_step_s": round(first, 1), "images_per_s": round(rate, 1),
                          "predict_ms_per_image": round(predict_ms, 2),
                          "train_gflop_per_image": round(flops / 1e9, 3),
                          "peak_fraction": round(rate * flops / 1e9 / peak, 3)}), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
