"""ichlib.chapter: a chapter's starting point in one call, its runs read back rather than trained again."""

from __future__ import annotations

import pytest

from ichlib import chapter

PARAMS = dict(data_dir="", studies=6, seed=1, matrix=64, workers=1, archs=["resnet50"],
              preprocessings=["three_window"], variants=["baseline"], test_fraction=0.10, image_size=32, epochs=1,
              batch_size=16)


def test_a_chapter_starts_from_one_call_and_finds_its_runs_trained(app_env):
    from pathlib import Path

    first = chapter.trained(dict(PARAMS, unrelated="a chapter's own parameter"))
    done = Path(first.runs["folder"].iloc[0]) / "done.json"
    finished = done.stat().st_mtime_ns
    setup = chapter.trained(PARAMS)  # the next chapter: the same run, read back, not trained again
    assert list(setup.runs["folder"]) == list(first.runs["folder"]) and done.stat().st_mtime_ns == finished
    assert setup.kind == "phantom" and setup.split.index.equals(setup.index.index)
    assert set(setup.index.index) <= set(setup.labels.index)  # the labels also name the one unreadable file
    assert set(setup.split) == {"train", "val", "test"}
    assert sorted(setup.test.ids) == sorted(setup.split.index[setup.split == "test"])
    assert [s.name for s in setup.specs] == list(setup.runs.index)


def test_a_chapter_missing_a_parameter_is_told_which():
    with pytest.raises(KeyError, match="test_fraction"):
        chapter.trained({k: v for k, v in PARAMS.items() if k != "test_fraction"})
