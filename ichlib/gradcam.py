"""Grad-CAM heatmaps (Selvaraju et al., 2017) for the book's models, compiled once per model and layer.

For a label, the heatmap of an image is ReLU(sum over channels of A_c * w_c), where A is the chosen layer's
feature map and w_c the mean over positions of d(score)/dA_c; it is upsampled to the input size and divided by
its maximum (an all-zero map stays zero). The score differentiated is the label's **pre-sigmoid** value (the
logit): the probability saturates near 0 and 1, where its gradient vanishes and the map would go blank.

The layer defaults to the last block whose map has at least 8 x 8 cells (:func:`default_layer`): the last
convolutional block (``ichlib.models.LAST_CONV``, :func:`last_conv_layer`) has stride 32, so at 128 px its map
is 4 x 4 cells and at 64 px 2 x 2, too coarse to point at a bleed. Works under PyTorch (``torch.autograd.grad``),
TensorFlow (``tf.function`` and a gradient tape) and JAX (``jax.jit`` and ``jax.grad``).

HiResCAM (Draelos and Carin, 2020) is one argument away (``method="hirescam"``): it multiplies the activations by
the gradient position by position before summing over channels, instead of averaging the gradient over the
positions first. Grad-CAM's average can light a place whose activation is high but whose gradient there is nil;
HiResCAM's map is, for a head of pooling and one dense layer, exactly what each position added to the score.
"""

from __future__ import annotations

import weakref

import keras
import numpy as np

from .cache import BRAIN_CHANNEL
from .labels import LABELS
from .store import Source, run_cache

OUTPUT_LAYER = "labels"  # the sigmoid output layer of ichlib.models; its kernel and bias give the logits
METHODS = ("gradcam", "hirescam")
_NOT_EXPLAINED = ("score",)  # ichlib.models' output layer: it only passes the head's labels on
MASK_PREFIX = "mask_"  # ichlib.models' mask head: a map of its own, not the backbone's features


def label_index(label: int | str) -> int:
    """A label given by index or by name in ``LABELS``."""
    if isinstance(label, str):
        if label not in LABELS:
            raise ValueError(f"unknown label {label!r}; expected one of {', '.join(LABELS)}")
        return LABELS.index(label)
    if not 0 <= int(label) < len(LABELS):
        raise ValueError(f"label index {label} out of range 0-{len(LABELS) - 1}")
    return int(label)


def last_conv_layer(model: keras.Model) -> str:
    """The name of the last layer with a 4-D (batch, rows, cols, channels) output: the last convolutional block."""
    for layer in reversed(model.layers):
        if layer.name in (OUTPUT_LAYER, *_NOT_EXPLAINED) or layer.name.startswith(MASK_PREFIX):
            continue
        shape = getattr(layer, "output", None)
        if shape is not None and len(layer.output.shape) == 4 and not isinstance(layer, keras.layers.InputLayer):
            return layer.name
    raise ValueError(f"model {model.name!r} has no layer with a spatial output")


MIN_CELLS = 8  # a map coarser than 8 x 8 cannot point at a bleed: at 64 px a backbone's last block is 2 x 2
BLOCK_ENDS = ("_out", "_add", "_concat")  # Keras' names for the end of a ResNet, EfficientNet, DenseNet block
_NOT_FEATURES = (keras.layers.InputLayer, keras.layers.ZeroPadding2D, keras.layers.Rescaling)


def _is_map(layer) -> bool:
    """Whether a layer's output is a (batch, rows, cols, channels) map."""
    try:
        return len(layer.output.shape) == 4
    except (AttributeError, ValueError):  # a layer never called in the graph has no output
        return False


def default_layer(model: keras.Model, min_cells: int = MIN_CELLS) -> str:
    """The layer Grad-CAM uses by default: the last block whose output map has at least ``min_cells`` cells
    each way (at 128 px, a stride-16 block: ResNet50's conv4_block6_out, DenseNet121's conv4_block24_concat,
    EfficientNetB2's block5d_add).

    A block end is a layer named as Keras names them (``*_out``, ``*_add``, ``*_concat``); a model without
    such names gets its last layer with a large enough map. Where even the first map is smaller, the layer
    with the largest map is used. The last block (:func:`last_conv_layer`) stays one argument away.
    """
    spatial = [layer for layer in model.layers
               if not isinstance(layer, _NOT_FEATURES) and layer.name != OUTPUT_LAYER
               and not layer.name.startswith(MASK_PREFIX) and _is_map(layer)]
    if not spatial:
        raise ValueError(f"model {model.name!r} has no layer with a spatial output")
    large = [layer for layer in spatial if min(layer.output.shape[1:3]) >= min_cells]
    if not large:
        return max(spatial, key=lambda layer: min(layer.output.shape[1:3])).name
    blocks = [layer for layer in large if layer.name.endswith(BLOCK_ENDS)]
    return (blocks or large)[-1].name


def _cam(a, g, size, hires: bool = False):
    """Grad-CAM from a block's activations ``a`` and the gradient ``g`` of the label's logit with respect to them
    (both batch x rows x columns x channels): channel weights, their positive weighted sum, enlarged, scaled.
    ``hires``: HiResCAM, the gradient kept per position (no mean over the positions)."""
    ops = keras.ops
    a, g = ops.cast(a, "float32"), ops.cast(g, "float32")
    weights = g if hires else ops.mean(g, axis=(1, 2), keepdims=True)
    cam = ops.relu(ops.sum(a * weights, axis=-1, keepdims=True))
    cam = ops.image.resize(cam, size, interpolation="bilinear")[..., 0]
    top = ops.max(cam, axis=(1, 2), keepdims=True)
    return ops.where(top > 0, cam / ops.maximum(top, 1e-12), ops.zeros_like(cam))


def _score(h, kernel, bias, j):
    """Sum over the batch of label j's logit (a one-hot pick: indexing by a traced j lost the gradient in TF)."""
    ops = keras.ops
    logits = ops.matmul(ops.cast(h, "float32"), ops.cast(kernel, "float32")) + ops.cast(bias, "float32")
    return ops.sum(logits * ops.one_hot(j, len(LABELS)))


def _build(model: keras.Model, layer: str, method: str = "gradcam"):
    """A compiled function (images, label index) -> heatmaps, for one model, layer and method."""
    hires = method == "hirescam"
    conv = model.get_layer(layer).output
    features = keras.Model(model.input, conv, name=f"{model.name}_features")
    head = keras.Model(conv, model.get_layer(OUTPUT_LAYER).input, name=f"{model.name}_head")
    dense = model.get_layer(OUTPUT_LAYER)
    size = tuple(model.input_shape[1:3])
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        spec = [tf.TensorSpec((None, *model.input_shape[1:]), tf.float32), tf.TensorSpec((), tf.int32)]

        @tf.function(input_signature=spec)  # any batch size, any label: traced once
        def run(x, j):
            a = features(x, training=False)
            with tf.GradientTape() as tape:
                tape.watch(a)
                score = _score(head(a, training=False), dense.kernel.value, dense.bias.value, j)
            return _cam(a, tape.gradient(score, a), size, hires)

        return lambda x, j: run(x, tf.constant(j, tf.int32))
    if backend == "jax":
        import jax

        f_vars = ([v.value for v in features.trainable_variables], [v.value for v in features.non_trainable_variables])
        h_vars = ([v.value for v in head.trainable_variables], [v.value for v in head.non_trainable_variables])

        @jax.jit
        def run(x, j, f_vars, h_vars, kernel, bias):
            a, _ = features.stateless_call(*f_vars, x, training=False)

            def score(a):
                h, _ = head.stateless_call(*h_vars, a, training=False)
                return _score(h, kernel, bias, j)

            return _cam(a, jax.grad(score)(a), size, hires)

        return lambda x, j: run(x, j, f_vars, h_vars, dense.kernel.value, dense.bias.value)
    if backend == "torch":
        import torch

        def run(x, j):
            with torch.no_grad():  # the backbone's forward pass needs no graph: only the map's gradient matters
                a = features(x, training=False)
            a = a.detach().requires_grad_(True)
            with torch.enable_grad():
                score = _score(head(a, training=False), dense.kernel.value, dense.bias.value, j)
                (g,) = torch.autograd.grad(score, a)
            return keras.ops.convert_to_numpy(_cam(a.detach(), g, size, hires))

        return run
    raise NotImplementedError(f"Grad-CAM is written for the torch, tensorflow and jax backends, not {backend!r}")


class GradCAM:
    """Grad-CAM of one model: the compiled function of each layer asked for is built on first use and kept here,
    with the explainer, not patched onto the model (MONAI's ``GradCAM`` keeps its state the same way).

        explain = GradCAM(model)
        heatmaps = explain(images, "subdural")            # the default layer
        coarse = explain(images, "subdural", layer=last_conv_layer(model))
    """

    def __init__(self, model: keras.Model, compiled: dict | None = None, method: str = "gradcam"):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
        self.model, self.method = model, method
        # layer name -> the compiled (images, label index) -> heatmaps; ``compiled`` lets :func:`gradcam` keep them
        self._compiled: dict[str, object] = {} if compiled is None else compiled

    def __call__(self, images: np.ndarray, label: int | str, layer: str | None = None,
                 batch_size: int = 32) -> np.ndarray:
        """Heatmaps in [0, 1] at the input size, one per image: (n, rows, cols) float32.

        Args:
            images: (n, rows, cols, 3) as the model takes them (the cache's 0-255 values).
            label: index or name in ``LABELS``.
            layer: the feature layer; default :func:`default_layer` (a map of at least 8 x 8 cells).
            batch_size: images per compiled call.
        """
        j = label_index(label)
        layer = layer or default_layer(self.model)
        key = layer if self.method == "gradcam" else (layer, self.method)
        if key not in self._compiled:
            self._compiled[key] = _build(self.model, layer, self.method)
        x = np.asarray(images, np.float32)
        if x.ndim != 4:
            raise ValueError(f"images must be (n, rows, cols, channels), got shape {x.shape}")
        out = [np.asarray(self._compiled[key](x[i:i + batch_size], j)) for i in range(0, len(x), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, *x.shape[1:3]), np.float32)


# model -> its compiled functions, gone with the model (they hold its layers, never the model itself)
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def gradcam(model: keras.Model, images: np.ndarray, label: int | str, layer: str | None = None,
            batch_size: int = 32, method: str = "gradcam") -> np.ndarray:
    """Heatmaps in [0, 1] at the input size, one per image: (n, rows, cols) float32, by a :class:`GradCAM` of
    ``model`` (its compiled functions made on the first call and kept as long as the model lives). ``model``: an
    ``ichlib.models.build_model`` model, or any with a sigmoid Dense output named "labels"; the other arguments
    as :class:`GradCAM` takes them."""
    compiled = _COMPILED.setdefault(model, {})
    return GradCAM(model, compiled, method)(images, label, layer, batch_size)


# ------------------------------------------------------------------- the book's heatmaps, read from caches
def heatmaps(src: Source, specs, models: dict, ids, label: int | str = "any",
             workers: int | None = None, layer=None, method: str = "gradcam") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Grad-CAM of ``label`` on the slices ``ids``, for each run in ``specs`` (``models``: run name -> model).

    Each run reads the slices from its own preprocessed cache. Returns ``{run name: (images, heatmaps)}``, both
    (len(ids), size, size): the images as the brain-window channel, for drawing under the heatmaps. ``layer``:
    the layer to explain (None: :func:`default_layer`), or a function of the model that names it, e.g.
    :func:`last_conv_layer`. ``method``: ``"gradcam"`` or ``"hirescam"``.
    """
    out = {}
    for spec in specs:
        data = run_cache(src, spec, workers=workers)
        images = np.stack([data.image(i) for i in ids])
        model = models[spec.name]
        chosen = layer(model) if callable(layer) else layer
        out[spec.name] = (images[..., BRAIN_CHANNEL[spec.preprocessing]], gradcam(model, images, label, layer=chosen,
                                                                                  method=method))
    return out


def layer_heatmaps(src: Source, spec, model, image_id: str, label: int | str = "any", mask: np.ndarray | None = None,
                   workers: int | None = None) -> list[dict]:
    """Grad-CAM of one slice from the default layer (a map of 8 x 8 cells or more) and from the last block, as
    panels for ``figures.gradcam_grid`` (``image``, ``heatmap``, ``mask``, ``title`` with the map's cells)."""
    image = run_cache(src, spec, workers=workers).image(image_id)
    panels = []
    for layer in (default_layer(model), last_conv_layer(model)):
        rows, cols = model.get_layer(layer).output.shape[1:3]
        panels.append({"image": image[..., BRAIN_CHANNEL[spec.preprocessing]], "mask": mask,
                       "heatmap": gradcam(model, image[None], label, layer=layer)[0],
                       "title": f"{layer}: {rows} x {cols} cells"})
    return panels
