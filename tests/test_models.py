"""ichlib.models and ichlib.losses: the paper's parameter counts, shapes, layers by name, losses by hand."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from ichlib.losses import OPTIMISED_WEIGHTS, RSNALogLoss, WeightedBCE, weighted_bce  # noqa: E402
from ichlib.models import (LAST_CONV, PAPER_PARAMETERS, WeightsUnavailable, build_model, model_facts,  # noqa: E402
                           stage_parameters)


@pytest.mark.parametrize("arch", list(PAPER_PARAMETERS))
def test_parameter_counts_are_the_papers_and_shapes_are_right(arch):
    model = build_model(arch, 64)
    assert model.count_params() == PAPER_PARAMETERS[arch]
    out = model.predict(np.zeros((2, 64, 64, 3), np.float32), verbose=0)
    assert out.shape == (2, 6) and ((out > 0) & (out < 1)).all()
    assert model.get_layer(LAST_CONV[arch]).output.shape[-1] > 100  # flat: the backbone's layers by name
    stages = stage_parameters(model, arch)
    assert sum(stages.values()) == PAPER_PARAMETERS[arch] and stages["head"] == model.count_params() - sum(
        v for k, v in stages.items() if k != "head")
    row = model_facts(model, arch)
    assert row["parameters"] == row["paper (Table 3)"] and row["its feature map"].startswith("2x2x")
    flipped = build_model(arch, 64, flips=True)
    assert flipped.count_params() == PAPER_PARAMETERS[arch] and flipped.get_layer("flips")


def test_flips_act_in_training_only():
    model = build_model("resnet50", 32, flips=True, seed=1)
    flips = model.get_layer("flips")
    image = np.arange(32 * 32 * 3, dtype=np.float32).reshape(1, 32, 32, 3)
    np.testing.assert_array_equal(np.asarray(flips(image, training=False)), image)
    seen = [np.asarray(flips(image, training=True)) for _ in range(8)]
    assert any(not np.array_equal(s, image) for s in seen)


def test_unknown_architecture_and_unavailable_weights():
    with pytest.raises(ValueError, match="vgg16"):
        build_model("vgg16", 64)
    with pytest.raises(WeightsUnavailable, match="weights=None"):
        build_model("densenet121", 64, weights="imagenet")


def test_weighted_bce_by_hand():
    y = np.array([[1, 0, 0, 0, 0, 1]], np.float32)
    p = np.array([[0.9, 0.2, 0.1, 0.1, 0.3, 0.6]], np.float32)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    w = np.array(OPTIMISED_WEIGHTS)
    assert float(np.asarray(weighted_bce(y, p, OPTIMISED_WEIGHTS))[0]) == pytest.approx((bce * w).sum() / w.sum(), 1e-5)
    assert float(WeightedBCE()(y, p)) == pytest.approx(bce.mean(), 1e-5)
    assert float(WeightedBCE(OPTIMISED_WEIGHTS)(y, p)) == pytest.approx((bce * w).sum() / w.sum(), 1e-5)
    metric = RSNALogLoss()
    metric.update_state(y, p)
    w2 = np.array([2, 1, 1, 1, 1, 1.0])
    assert float(metric.result()) == pytest.approx((bce * w2).sum() / w2.sum(), 1e-5)
    with pytest.raises(ValueError, match="one weight per label"):
        WeightedBCE((1, 2))


def test_loss_survives_certain_predictions():
    y = np.array([[1, 0, 0, 0, 0, 1]], np.float32)
    assert np.isfinite(float(WeightedBCE()(y, 1 - y)))


def test_jax_backend_builds_trains_a_step_and_scores(tmp_path):
    """The model, loss and metric use keras.ops: they run under KERAS_BACKEND=jax (skipped without JAX)."""
    pytest.importorskip("jax")
    import subprocess
    import sys

    code = """
import numpy as np, keras
assert keras.backend.backend() == "jax"
from ichlib.models import build_model
from ichlib.losses import WeightedBCE, RSNALogLoss, OPTIMISED_WEIGHTS
m = build_model("resnet50", 32, flips=True)
m.compile(keras.optimizers.Adam(5e-4), WeightedBCE(OPTIMISED_WEIGHTS), metrics=[RSNALogLoss()])
x = np.random.rand(4, 32, 32, 3).astype("float32") * 255
y = (np.random.rand(4, 6) > 0.5).astype("float32")
logs = m.train_on_batch(x, y, return_dict=True)
assert np.isfinite(logs["loss"]) and m.predict(x, verbose=0).shape == (4, 6)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "KERAS_BACKEND": "jax"},
                            capture_output=True, text=True)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


def test_bn_momentum_reaches_every_batch_normalisation_and_moves_the_statistics():
    model = build_model("densenet121", 32, bn_momentum=0.5)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == 0.5 for layer in norms)
    assert all(layer.momentum == 0.99 for layer in build_model("densenet121", 32).layers
               if isinstance(layer, keras.layers.BatchNormalization))
    first = norms[0]
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    reaching = keras.Model(model.inputs, first.input)  # what the first batch norm sees: no batch norm before it
    batch_mean = keras.ops.convert_to_numpy(reaching(x, training=True)).mean(axis=(0, 1, 2))
    assert np.abs(batch_mean).max() > 1e-3
    model(x, training=True)  # one training-mode pass: from 0, momentum 0.5 moves the mean half-way to the batch's
    np.testing.assert_allclose(keras.ops.convert_to_numpy(first.moving_mean), 0.5 * batch_mean, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("arch", list(PAPER_PARAMETERS))
def test_the_mask_head_reads_the_stride_8_map_and_rides_in_the_saved_model(arch, tmp_path):
    from ichlib.models import MASK_LOGITS, has_mask_head, mask_cells, mask_model, training_model

    model = build_model(arch, 64, mask_head=True)
    assert has_mask_head(model) and mask_cells(model) == 8 and not has_mask_head(build_model(arch, 64))
    x = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    trainee = training_model(model)
    probs, logits = trainee.predict(x, verbose=0)
    assert probs.shape == (2, 6) and logits.shape == (2, 8, 8, 1)
    np.testing.assert_allclose(model.predict(x, verbose=0), probs, rtol=1e-5, atol=1e-6)  # the head's reading
    model.save_weights(str(tmp_path / "m.weights.h5"))  # the mask head is saved with the model and comes back
    again = build_model(arch, 64, mask_head=True)
    again.load_weights(str(tmp_path / "m.weights.h5"))
    np.testing.assert_allclose(mask_model(again).predict(x, verbose=0), logits, rtol=1e-4, atol=1e-4)
    assert again.get_layer(MASK_LOGITS).output.shape[1:] == (8, 8, 1)


def test_any_read_from_the_mask_is_its_largest_cells_probability_and_the_subtypes_stay_the_heads():
    from ichlib.models import mask_model

    model = build_model("resnet50", 64, mask_head=True, score_from="mask")
    x = np.random.default_rng(1).uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    probs = model.predict(x, verbose=0)
    logits = mask_model(model).predict(x, verbose=0).reshape(3, -1)
    np.testing.assert_allclose(probs[:, 0], 1 / (1 + np.exp(-logits.max(axis=1))), rtol=1e-5)
    head = keras.Model(model.inputs, model.get_layer("labels").output).predict(x, verbose=0)
    np.testing.assert_allclose(probs[:, 1:], head[:, 1:], rtol=1e-5)
    with pytest.raises(ValueError, match="score_from 'mask'"):
        build_model("resnet50", 64, score_from="mask")
