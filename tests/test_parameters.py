"""ichlib.parameters: a chapter's parameters read from its cell, layered (defaults, profile, -p), checked, noted."""

from __future__ import annotations

import yaml

import pytest

from ichlib.parameters import ParameterError, notebook_parameters, profiles_table, resolve
from tests.test_book import ROOT, write_notebook


def test_parameters_cell_must_be_literals(tmp_path):
    good = write_notebook(tmp_path / "good.ipynb", 'a = 1\nb = "x"\nc = [1, 2]\nd = 0.5\ne = True', [])
    assert notebook_parameters(good) == {"a": 1, "b": "x", "c": [1, 2], "d": 0.5, "e": True}
    bad = write_notebook(tmp_path / "bad.ipynb", "import os\nn = os.cpu_count()", [])
    with pytest.raises(ParameterError, match="line 1"):
        notebook_parameters(bad)
    computed = write_notebook(tmp_path / "computed.ipynb", "n = 2 * 3 + len('x')", [])
    with pytest.raises(ParameterError, match="n is not a literal"):
        notebook_parameters(computed)
    broken = write_notebook(tmp_path / "broken.ipynb", "a = 1\nb = ", [])
    with pytest.raises(ParameterError, match=r"broken.ipynb, parameters cell line 2: not valid Python"):
        notebook_parameters(broken)


def test_resolve_layers_defaults_profile_and_overrides():
    declared = {"01": {"profile": "cpu", "size": 128, "rate": 0.5, "name": "a"}, "02": {"profile": "cpu", "size": 128}}
    out = resolve(declared, "smoke", {"size": 64, "data_dir": ""}, {"rate": 1})
    assert out["01"] == {"profile": "smoke", "size": 64, "rate": 1, "name": "a"}
    assert out["02"] == {"profile": "smoke", "size": 64}


def test_unknown_and_mistyped_parameters_are_named():
    declared = {"01": {"image_size": 128, "data_dir": "", "flag": False}}
    with pytest.raises(ParameterError, match="unknown parameter.*imge_size.*image_size"):
        resolve(declared, "cpu", {}, {"imge_size": 96})
    with pytest.raises(ParameterError, match="image_size.*expected int.*'big'"):
        resolve(declared, "cpu", {}, {"image_size": "big"})
    with pytest.raises(ParameterError, match="flag.*expected bool"):
        resolve(declared, "cpu", {}, {"flag": 1})
    with pytest.raises(ParameterError, match="--profile"):
        resolve(declared, "cpu", {}, {"profile": "gpu"})
    with pytest.raises(ParameterError, match="data_dir.*profile cpu"):
        resolve(declared, "cpu", {"data_dir": 3}, {})


def test_profiles_table_comes_from_the_descriptions():
    table = profiles_table(ROOT / "profiles.yml")
    for name, values in yaml.safe_load((ROOT / "profiles.yml").read_text()).items():
        assert f"| `{name}` | {values['description']} |" in table


def test_the_gpu_profile_on_a_cpu_warns_with_the_cost():
    from ichlib.parameters import cpu_warning, load_profiles

    profiles = load_profiles(ROOT / "profiles.yml")
    line = cpu_warning(profiles["gpu"], gpu=False)
    assert line and "512 px" in line and "41x" in line and "hours" in line
    assert cpu_warning(profiles["gpu"], gpu=True) is None
    assert cpu_warning(profiles["cpu"], gpu=False) is None and cpu_warning(profiles["smoke"], gpu=False) is None


def test_the_parameters_note_lists_only_what_differs_from_the_defaults():
    from ichlib.parameters import parameters_note

    defaults = 'profile = "cpu"  # the profile\nstudies = 760\narchs = ["resnet50"]\nlabel = "any"\n'
    used = 'profile = "smoke"\nstudies = 760\narchs = ["resnet50", "densenet121"]\nlabel = "any"\nextra = 1\n'
    note = parameters_note(defaults, used)
    assert "| `profile` | `'smoke'` | `'cpu'` |" in note
    assert "| `archs` | `['resnet50', 'densenet121']` | `['resnet50']` |" in note
    assert "| `extra` | `1` | (new) |" in note
    assert "studies" not in note and "label" not in note
    assert parameters_note(defaults, defaults) == "**This build's parameters:** the chapter's defaults, as above."
