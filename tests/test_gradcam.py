"""ichlib.gradcam on hand-built models (where the answer is known) and on the three backbones."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from ichlib import figures, store  # noqa: E402
from ichlib import gradcam as gradcam_module  # noqa: E402
from ichlib.gradcam import default_layer, gradcam, label_index, last_conv_layer  # noqa: E402
from ichlib.models import LAST_CONV, build_model  # noqa: E402

SIZE = 16
REGION = (slice(2, 7), slice(9, 14))  # rows 2-6, columns 9-13


class RegionMask(keras.layers.Layer):
    """Zeroes everything outside REGION: the score can only depend on what lies inside it."""

    def call(self, x):
        mask = np.zeros((1, SIZE, SIZE, 1), np.float32)
        mask[0, REGION[0], REGION[1], 0] = 1
        return x * keras.ops.convert_to_tensor(mask)


def region_model():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv",
                            kernel_initializer=keras.initializers.Constant(0.1))(inputs)
    x = RegionMask(name="masked")(x)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = keras.layers.Dense(8, activation="relu", name="head_dense",
                           kernel_initializer=keras.initializers.Constant(0.2))(x)
    outputs = keras.layers.Dense(6, activation="sigmoid", name="labels",
                                 kernel_initializer=keras.initializers.Constant(0.3))(x)
    return keras.Model(inputs, outputs)


def test_the_heatmap_peaks_where_the_score_looks():
    model = region_model()
    image = np.random.default_rng(0).uniform(0, 1, (1, SIZE, SIZE, 3)).astype(np.float32)
    heat = gradcam(model, image, "any")[0]
    assert heat.shape == (SIZE, SIZE) and heat.max() == pytest.approx(1.0)
    inside = np.zeros((SIZE, SIZE), bool)
    inside[REGION] = True
    assert inside.flat[int(np.argmax(heat))]
    assert heat[~inside].max() == 0


def test_agrees_with_a_direct_gradient_tape():
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the reference computation uses TensorFlow")
    model = region_model()
    image = np.random.default_rng(1).uniform(0, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    probe = keras.Model(model.input, [model.get_layer("conv").output, model.get_layer("labels").input])
    kernel, bias = model.get_layer("labels").kernel, model.get_layer("labels").bias
    with tf.GradientTape() as tape:
        a, h = probe(image)
        logit = tf.reduce_sum(tf.matmul(h, kernel)[:, 4] + bias[4])  # subarachnoid, pre-sigmoid
    g = tape.gradient(logit, a).numpy()
    cam = np.maximum((a.numpy() * g.mean(axis=(1, 2), keepdims=True)).sum(-1), 0)
    cam /= cam.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(gradcam(model, image, "subarachnoid", layer="conv"), cam, atol=1e-5)


def test_agrees_with_a_direct_autograd_gradient():
    torch = pytest.importorskip("torch")
    if keras.backend.backend() != "torch":
        pytest.skip("the reference computation uses PyTorch")
    model = region_model()
    image = np.random.default_rng(1).uniform(0, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    probe = keras.Model(model.input, [model.get_layer("conv").output, model.get_layer("labels").input])
    kernel, bias = model.get_layer("labels").kernel.value, model.get_layer("labels").bias.value
    a, h = probe(torch.as_tensor(image))
    logit = (torch.matmul(h, kernel)[:, 4] + bias[4]).sum()  # subarachnoid, pre-sigmoid
    (g,) = torch.autograd.grad(logit, a)
    a, g = a.detach().cpu().numpy(), g.cpu().numpy()
    cam = np.maximum((a * g.mean(axis=(1, 2), keepdims=True)).sum(-1), 0)
    cam /= cam.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(gradcam(model, image, "subarachnoid", layer="conv"), cam, atol=1e-5)


@pytest.mark.parametrize("arch", list(LAST_CONV))
def test_finds_each_backbones_last_block_and_stays_finite_on_a_constant_image(arch):
    model = build_model(arch, 32)
    assert last_conv_layer(model) == LAST_CONV[arch]
    heat = gradcam(model, np.full((2, 32, 32, 3), 128.0, np.float32), 0)
    assert heat.shape == (2, 32, 32) and np.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1


def test_a_blank_map_is_zero_not_nan():
    model = region_model()
    heat = gradcam(model, np.zeros((1, SIZE, SIZE, 3), np.float32), 0, layer="masked")
    assert np.isfinite(heat).all() and heat.max() == 0


def test_labels_by_name_or_index_and_bad_ones_refused():
    assert label_index("subdural") == 5 and label_index(0) == 0
    with pytest.raises(ValueError, match="'bleed'"):
        label_index("bleed")
    with pytest.raises(ValueError, match="out of range"):
        label_index(6)


@pytest.mark.parametrize("arch, size, layer, cells", [
    ("resnet50", 128, "conv4_block6_out", 8), ("densenet121", 128, "conv4_block24_concat", 8),
    ("efficientnetb2", 128, "block5d_add", 8), ("resnet50", 96, "conv3_block4_out", 12),
    ("densenet121", 64, "conv3_block12_concat", 8), ("efficientnetb2", 64, "block3c_add", 8)])
def test_the_default_layer_is_the_last_block_with_a_map_of_eight_cells_or_more(arch, size, layer, cells):
    model = build_model(arch, size)
    assert default_layer(model) == layer
    assert tuple(model.get_layer(layer).output.shape[1:3]) == (cells, cells)
    assert min(model.get_layer(last_conv_layer(model)).output.shape[1:3]) < 8  # the last block is coarser
    heat = gradcam(model, np.full((1, size, size, 3), 100.0, np.float32), "any")
    assert heat.shape == (1, size, size) and np.isfinite(heat).all()


def test_a_model_without_block_names_or_large_maps_still_gets_a_layer():
    model = region_model()  # no block names: the last map of 8 cells or more
    assert default_layer(model) == "masked"
    assert default_layer(model, min_cells=64) == "conv"  # none that large: the largest map


def test_the_explainer_keeps_its_state_not_the_model():
    """GradCAM holds its compiled functions; gradcam() keeps them per model without patching the model, and lets
    them go with it."""
    import gc
    import weakref

    from ichlib import gradcam as module

    model = region_model()
    image = np.random.default_rng(1).uniform(0, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    explain = module.GradCAM(model)
    np.testing.assert_allclose(explain(image, "any", layer="conv"), gradcam(model, image, "any", layer="conv"),
                               atol=1e-6)
    assert not any("gradcam" in name for name in vars(model))  # nothing patched onto the model
    assert list(module._COMPILED[model]) == ["conv"] and list(explain._compiled) == ["conv"]
    alive = weakref.ref(model)
    del model, explain
    gc.collect()
    assert alive() is None  # the kept functions held the model's layers, never the model: it could go


def test_heatmaps_per_run_and_slice_drawn_as_the_papers_pairs(app_env):
    from ichlib import runs
    from ichlib.cache import BRAIN_CHANNEL

    src, index = app_env["src"], app_env["index"]
    spec = runs.RunSpec("resnet50", image_size=32, epochs=1, batch_size=16)
    models = {spec.name: runs.load_model(app_env["run"])}
    ids = list(index.index[:2])
    heat = gradcam_module.heatmaps(src, [spec], models, ids, "any")
    images, maps = heat[spec.name]
    assert images.shape == maps.shape == (2, 32, 32)
    assert 0 <= maps.min() and maps.max() <= 1
    cached = store.run_cache(src, spec).image(ids[1])
    np.testing.assert_array_equal(images[1], cached[..., BRAIN_CHANNEL["three_window"]])
    fig = figures.gradcam_pairs(heat, ["resnet50"], ["baseline"], "three_window", mask=np.ones((32, 32), bool))
    assert [ax.get_title() for ax in fig.axes if ax.get_title()][:2] == ["baseline, bleed", "baseline, no bleed"]


def linear_head_model():
    """A conv block, pooling and one dense layer: HiResCAM and Grad-CAM must agree here (Draelos and Carin)."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = keras.layers.Dense(6, activation="sigmoid", name="labels")(x)
    return keras.Model(inputs, outputs)


def test_hirescam_equals_gradcam_under_a_linear_head_and_differs_under_a_nonlinear_one():
    images = np.random.default_rng(2).uniform(0, 1, (3, SIZE, SIZE, 3)).astype(np.float32)
    linear = linear_head_model()
    np.testing.assert_allclose(gradcam(linear, images, 1, layer="conv", method="hirescam"),
                               gradcam(linear, images, 1, layer="conv"), atol=1e-5)
    model = region_model()
    hires = gradcam(model, images, "any", layer="conv", method="hirescam")
    inside = np.zeros((SIZE, SIZE), bool)
    inside[REGION] = True
    assert hires.max() == pytest.approx(1.0) and hires[:, ~inside].max() == 0  # only where the score looked
    with pytest.raises(ValueError, match="unknown method"):
        gradcam(model, images, "any", method="saliency")


def test_a_mask_head_is_never_the_layer_explained():
    model = build_model("densenet121", 80, mask_head=True)
    assert last_conv_layer(model) == LAST_CONV["densenet121"]
    assert not default_layer(model).startswith("mask_")
