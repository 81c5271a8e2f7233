"""The machine a build or benchmark ran on, in words: the CPU, its cores and the vector flags that decide
kernel speed, and any cap put on them (the AVX2 caps that stand in for a newcomer's machine)."""

from __future__ import annotations

import os
import platform
import time

FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
CAPS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


def cpu_facts(cpuinfo: str | None = None) -> dict:
    """The CPU's model name and vector flags (Linux's /proc/cpuinfo; only the architecture and cores elsewhere)."""
    facts = {"machine": platform.machine(), "cores": os.cpu_count()}
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return facts
    fields = {}
    for line in cpuinfo.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            fields.setdefault(key.strip(), value.strip())  # the first processor's
    flags = set(fields.get("flags", "").split())
    facts["flags"] = [f for f in FLAGS if f in flags]
    if "model name" in fields:  # not on every architecture (ARM's cpuinfo has none)
        facts["cpu"] = fields["model name"]
    caps = {k: os.environ[k] for k in CAPS if k in os.environ}
    if caps:
        facts["isa_caps"] = caps
    return facts


def machine_line(facts: dict | None = None) -> str:
    """``2-core AMD EPYC 7B13 (x86_64; AVX2, FMA; capped at AVX2)``, for a page or a log."""
    facts = cpu_facts() if facts is None else facts
    flags = ", ".join(f.upper() for f in facts.get("flags", [])) or "no AVX2"
    caps = facts.get("isa_caps")
    capped = f"; capped at {sorted(set(v.upper() for v in caps.values()))[0]}" if caps else ""
    return f"{facts.get('cores', '?')}-core {facts.get('cpu', facts.get('machine', '?'))} " \
           f"({facts.get('machine', '?')}; {flags}{capped})"


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The Keras backend's own fp32 n x n matmul rate in GFLOP/s (2 n^3 FLOPs a product), best of ``repeats``:
    the yardstick a training step's rate is read against (its ``peak_fraction``), measured in the same run."""
    import keras
    import numpy as np

    a = keras.ops.convert_to_tensor(np.random.default_rng(0).standard_normal((n, n), np.float32))
    best = np.inf
    for _ in range(repeats + 1):  # the first one warms up
        start = time.perf_counter()
        keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.matmul(a, a)))
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9
