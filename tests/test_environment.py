"""environment.yml (conda) asks for exactly the packages and bounds of pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]


def normalise(spec: str) -> tuple[str, str, str]:
    req = Requirement(spec)
    return req.name.lower().replace("_", "-"), str(req.specifier), str(req.marker or "")


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {normalise(s) for s in project["dependencies"] + project["optional-dependencies"]["test"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {normalise(s) for s in pip if not s.startswith("--")} == wanted
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip  # torch's CPU build, not CUDA's
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert SpecifierSet(project["requires-python"]).contains(python.split("=")[1] + ".0")


def test_make_lab_starts_jupyterlab_as_root_too():
    """JupyterLab refuses to run as root without --allow-root: `make lab` passes it exactly when run as root."""
    import os
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("no make")
    dry = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True)
    line = next(l for l in dry.stdout.splitlines() if "jupyter lab" in l)
    assert ("--allow-root" in line) == (os.getuid() == 0)
