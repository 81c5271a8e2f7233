"""ichlib.pretrain: one backbone per architecture, kept, shared by its runs, copied into each run but the head
(pretrained by ichlib.plan)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tests.test_train import toy_cache


@pytest.fixture
def toy_source(tmp_path, monkeypatch):
    from ichlib import store
    from ichlib.split import split_by_patient

    monkeypatch.setenv("ICHBOOK_DATA", str(tmp_path))
    cache, index = toy_cache()
    monkeypatch.setattr(store, "run_cache", lambda src, spec, windows, workers=None: cache)
    split = split_by_patient(index, seed=0, fractions=(0.6, 0.2, 0.2))
    return SimpleNamespace(key="toy", phantom=True), split


def test_runs_of_one_architecture_share_a_backbone_keyed_by_its_settings(toy_source):
    from ichlib.pretrain import backbone_dir
    from ichlib.runs import RunSpec

    src, _ = toy_source
    spec = RunSpec("densenet121", image_size=32, weights="pretrained", pretrain_images=96)
    assert backbone_dir(src, spec) == backbone_dir(src, RunSpec("densenet121", "adjacent", "optimised",
                                                                image_size=32, weights="pretrained",
                                                                pretrain_images=96, epoch_images=50))
    for other in (RunSpec("densenet121", image_size=32, weights="pretrained", pretrain_images=192),
                  RunSpec("resnet50", image_size=32, weights="pretrained", pretrain_images=96),
                  RunSpec("densenet121", image_size=32, weights="pretrained", pretrain_images=96, seed=1)):
        assert backbone_dir(src, other) != backbone_dir(src, spec)


@pytest.mark.slow
def test_a_backbone_is_pretrained_once_and_copied_into_a_run_but_its_head(toy_source):
    from ichlib.plan import backbones
    from ichlib.pretrain import HEAD, backbone_dir, pretraining_spec, start_from
    from ichlib.runs import RunSpec, model_for

    src, split = toy_source
    spec = RunSpec("densenet121", "adjacent", "baseline", image_size=32, batch_size=16, learning_rate=1e-3,
                   weights="pretrained", pretrain_images=96)
    table = backbones(src, [spec, spec], split, None, (), log=None)
    assert len(table) == 1 and table.loc[0, "images"] == 96 and 0 <= table.loc[0, "val AUC any"] <= 1
    folder = backbone_dir(src, spec)
    stamp = (folder / "summary.json").stat().st_mtime_ns
    assert backbones(src, [spec], split, None, (), log=None).equals(table)  # kept, not trained again
    assert (folder / "summary.json").stat().st_mtime_ns == stamp

    pretrained = model_for(pretraining_spec(spec))
    pretrained.load_weights(str(folder / "model.weights.h5"))
    model = model_for(spec)
    copied = start_from(model, src, spec)
    assert copied == sum(1 for layer in model.layers if layer.weights and layer.name not in HEAD)
    mine = [layer for layer in model.layers if layer.weights]
    theirs = [layer for layer in pretrained.layers if layer.weights]
    for a, b in zip(mine, theirs):
        same = all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a.get_weights(), b.get_weights()))
        assert same == (a.name not in HEAD), a.name


def test_a_run_without_its_backbone_is_refused_by_name(toy_source):
    from ichlib.pretrain import start_from
    from ichlib.runs import RunSpec, model_for

    src, _ = toy_source
    spec = RunSpec("resnet50", image_size=32, weights="pretrained", pretrain_images=64)
    with pytest.raises(FileNotFoundError, match="no pretrained backbone for resnet50"):
        start_from(model_for(spec), src, spec)


@pytest.mark.slow
def test_a_masks_start_learns_the_masks_is_scored_on_them_and_hands_its_mask_head_on(toy_source, tmp_path):
    from ichlib.plan import backbones
    from ichlib.pretrain import MASK_SCORES, backbone_dir, pretraining_spec, start_from
    from ichlib.runs import RunSpec, model_for
    from tests.test_train import toy_masks

    src, split = toy_source
    from ichlib import store

    toy_masks(store.run_cache(src, None, ()), tmp_path / "cache")
    spec = RunSpec("resnet50", image_size=32, batch_size=16, learning_rate=1e-3, weights="masks",
                   pretrain_images=96)
    labels_only = RunSpec("resnet50", image_size=32, batch_size=16, learning_rate=1e-3, weights="pretrained",
                          pretrain_images=96)
    assert backbone_dir(src, spec) != backbone_dir(src, labels_only)
    assert pretraining_spec(spec).mask_weight > 0 and spec.mask_head and not labels_only.mask_head
    table = backbones(src, [spec], split, None, (), log=None)
    assert table.loc[0, "start"] == "masks" and table.loc[0, list(MASK_SCORES[:2])].notna().all()
    model = model_for(spec)
    start_from(model, src, spec)
    source = model_for(pretraining_spec(spec))
    source.load_weights(str(backbone_dir(src, spec) / "model.weights.h5"))
    for name in ("mask_bn", "mask_logits"):  # the mask head comes with the start
        for a, b in zip(model.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    plain = model_for(RunSpec("resnet50", image_size=32, weights="masks", pretrain_images=96, score_from="head"))
    assert start_from(plain, src, spec) > 0


def test_a_masks_start_on_real_data_comes_from_the_phantom_and_needs_it_named():
    from types import SimpleNamespace

    from ichlib.masktargets import MasksUnavailable
    from ichlib.pretrain import teacher
    from ichlib.runs import RunSpec

    real, phantom = SimpleNamespace(key="rsna", phantom=False), SimpleNamespace(key="ph", phantom=True)
    spec = RunSpec("resnet50", weights="masks", pretrain_images=96)
    assert teacher(real, spec, phantom) is phantom and teacher(phantom, spec) is phantom
    assert teacher(real, RunSpec("resnet50", weights="pretrained", pretrain_images=96)) is real
    with pytest.raises(MasksUnavailable, match="rsna: real data has no masks"):
        teacher(real, spec)
