"""ichlib.plan: a chapter's runs in the paper's order, one split for all of them (training itself: the fixtures
of conftest and test_pretrain run it)."""

from __future__ import annotations

import pytest

from ichlib import plan


def test_a_plan_is_every_combination_in_the_papers_order():
    specs = plan.plan_runs(["resnet50", "densenet121"], ["three_window", "adjacent"], ["baseline", "optimised"],
                           image_size=32)
    assert [(s.preprocessing, s.arch, s.variant) for s in specs] == [
        (p, a, v) for p in ("three_window", "adjacent") for a in ("resnet50", "densenet121")
        for v in ("baseline", "optimised")]
    assert {s.image_size for s in specs} == {32}
    with pytest.raises(ValueError, match="vgg16"):
        plan.plan_runs(["vgg16"], ["three_window"], ["baseline"])


def test_runs_of_one_plan_share_one_split(monkeypatch):
    from types import SimpleNamespace

    from ichlib import store

    specs = [*plan.plan_runs(["resnet50"], ["three_window"], ["baseline"], test_fraction=0.1),
             *plan.plan_runs(["resnet50"], ["three_window"], ["optimised"], test_fraction=0.2)]
    monkeypatch.setattr(store, "index", lambda *a, **k: (None, []))
    with pytest.raises(ValueError, match="share one split"):
        plan.train_runs(SimpleNamespace(labels=lambda: None), specs, seed=0, log=None)


def test_only_a_masks_start_on_real_data_asks_for_the_phantom(monkeypatch):
    from types import SimpleNamespace

    from ichlib import plan, store
    from ichlib.runs import RunSpec

    made = []
    monkeypatch.setattr(store, "source", lambda *args, **kwargs: made.append(args) or "the phantom")
    masks = RunSpec("resnet50", weights="masks", pretrain_images=96)
    real, phantom = SimpleNamespace(key="rsna", phantom=False), SimpleNamespace(key="ph", phantom=True)
    assert plan.phantom_for(phantom, [masks], 760, 0, 256) is None
    assert plan.phantom_for(real, [RunSpec("resnet50")], 760, 0, 256) is None and not made
    assert plan.phantom_for(real, [masks], 760, 0, 256) == "the phantom" and made == [("", 760, 0, 256)]
