"""ichlib.machine: the CPU in words, with the flags and caps that decide its speed."""

from ichlib.machine import cpu_facts, machine_line

CPUINFO = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx2 fma avx512f
processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx2 fma avx512f
"""


def test_facts_from_cpuinfo(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.delenv("MKL_ENABLE_INSTRUCTIONS", raising=False)
    facts = cpu_facts(CPUINFO)
    assert facts["cpu"] == "AMD EPYC 7B13" and facts["flags"] == ["avx2", "fma", "avx512f"]
    assert "isa_caps" not in facts


def test_description_names_cores_flags_and_caps(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    facts = {**cpu_facts(CPUINFO), "cores": 2, "machine": "x86_64"}
    assert machine_line(facts) == "2-core AMD EPYC 7B13 (x86_64; AVX2, FMA, AVX512F; capped at AVX2)"
    assert "no AVX2" in machine_line({"cores": 2, "machine": "arm64", "cpu": "Graviton", "flags": []})


def test_a_cpuinfo_without_a_model_name_falls_back_to_the_architecture():
    facts = {**cpu_facts("processor\t: 0\nFeatures\t: fp asimd\n"), "cores": 2, "machine": "aarch64"}
    assert "cpu" not in facts and machine_line(facts) == "2-core aarch64 (aarch64; no AVX2)"
    assert machine_line({**cpu_facts(""), "cores": 2, "machine": "x86_64"}).startswith("2-core x86_64")
