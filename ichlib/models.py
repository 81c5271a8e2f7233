"""The paper's three backbones with its classification head, built flat so every layer is reachable by name.

Head (the paper's Figure 16 and Table 3): global average pooling, dropout 0.125, dense 128 (ReLU), dense 6
(sigmoid), one output per label in ``ichlib.labels.LABELS`` order. With it the parameter counts are the paper's:
EfficientNetB2 7,949,695, ResNet50 23,850,758, DenseNet121 7,169,478.

Inputs are 3-channel images with values 0-255 (the uint8 cache, as float). Each backbone gets the input scaling
Keras' ImageNet weights expect, as parameter-free layers: EfficientNet carries its own; ResNet50 subtracts the
"caffe" channel means; DenseNet121 applies the "torch" mean and standard deviation. The optimised variant adds
horizontal and vertical flips, active in training only.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from .backend import fused_torch_batchnorm, lean_torch_layout
from .paper import TABLE3_PARAMETERS
from .labels import LABELS

lean_torch_layout()  # torch: no copies around each convolution (ichlib.backend)
fused_torch_batchnorm()  # torch: one kernel per batch-norm layer (ichlib.backend)

ARCHITECTURES = {
    "efficientnetb2": keras.applications.EfficientNetB2,
    "resnet50": keras.applications.ResNet50,
    "densenet121": keras.applications.DenseNet121,
}
# The last convolutional block's output of each backbone: where Grad-CAM looks.
LAST_CONV = {"efficientnetb2": "top_activation", "resnet50": "conv5_block3_out", "densenet121": "relu"}
# The end of each backbone's stride-8 stage: where the mask head reads (10 x 10 cells at 80 px). Deeper maps are
# too coarse for a bleed a few pixels wide; shallower ones have seen too little of the slice to tell blood from bone.
MASK_FROM = {"efficientnetb2": "block3c_add", "resnet50": "conv3_block4_out", "densenet121": "conv3_block12_concat"}
MASK_STRIDE = 8
MASK_LOGITS = "mask_logits"  # the mask head's output: one logit per cell that the cell holds blood
SCORE_LAYER = "score"  # the model's output: the head's six probabilities, `any` read from the mask where asked
SCORES_FROM = ("head", "mask")
PAPER_PARAMETERS = TABLE3_PARAMETERS  # the paper's Table 3, quoted in ichlib.paper
FEATURE_LAYER = "head_pool"  # the pooled embedding: what a series model reads of each slice (ichlib.sequence)

_CAFFE_MEAN = [103.939, 116.779, 123.68]
_TORCH_MEAN, _TORCH_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class WeightsUnavailable(RuntimeError):
    """Pretrained weights were asked for but cannot be had (no network, nothing in the Keras cache)."""


def _input_scaling(arch: str) -> keras.layers.Layer | None:
    if arch == "resnet50":
        return keras.layers.Rescaling(1.0, offset=[-m for m in _CAFFE_MEAN], name="caffe_scaling")
    if arch == "densenet121":
        return keras.layers.Rescaling([1 / (255 * s) for s in _TORCH_STD],
                                      offset=[-m / s for m, s in zip(_TORCH_MEAN, _TORCH_STD)], name="torch_scaling")
    return None  # EfficientNet rescales and normalises inside


@keras.saving.register_keras_serializable(package="ichlib")
class Score(keras.layers.Layer):
    """The model's six probabilities from its head's and, where it has one, its mask head's outputs.

    ``from_mask=False``: the head's probabilities as they are (the mask logits only ride along, so that the mask
    head is part of the saved model). ``from_mask=True``: `any` is the sigmoid of the largest mask logit, the
    cell the network finds most likely to hold blood (segmentation for classification); the subtypes stay the
    head's.
    """

    def __init__(self, from_mask: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.from_mask = bool(from_mask)

    def call(self, labels, mask_logits):
        if not self.from_mask:
            return labels
        top = keras.ops.max(keras.ops.reshape(keras.ops.cast(mask_logits, "float32"),
                                              (keras.ops.shape(mask_logits)[0], -1)), axis=1, keepdims=True)
        return keras.ops.concatenate([keras.ops.sigmoid(top), keras.ops.cast(labels, "float32")[:, 1:]], axis=1)

    def compute_output_shape(self, labels_shape, mask_logits_shape):
        return labels_shape

    def get_config(self):
        return {**super().get_config(), "from_mask": self.from_mask}


def build_model(arch: str, image_size: int, weights: str | None = None, dropout: float = 0.125, dense: int = 128,
                flips: bool = False, seed: int = 0, bn_momentum: float | None = None, mask_head: bool = False,
                score_from: str = "head") -> keras.Model:
    """One of the paper's models.

    Args:
        arch: ``"efficientnetb2"``, ``"resnet50"`` or ``"densenet121"``.
        image_size: input rows = columns (3 channels).
        weights: None (from scratch, as here), ``"imagenet"`` (needs the weights in the Keras cache or a
            network) or a path to a weights file for the backbone.
        dropout, dense: the head (the paper: 0.125 and 128).
        flips: random horizontal and vertical flips in training (the optimised variant).
        seed: seeds the flips.
        bn_momentum: momentum of every batch-normalisation layer's running statistics (None: Keras' 0.99).
            From scratch and for a few hundred steps, 0.99 leaves the statistics used at inference far from
            the trained ones; 0.9 follows them.
        mask_head: add a light head on the stride-8 map (``MASK_FROM``: batch norm, ReLU, a 1 x 1 convolution)
            whose logits say, per cell, whether it holds blood; trained where the data has masks
            (:func:`training_model`), read as a pointer or as the score.
        score_from: ``"head"`` (the paper's head gives all six labels) or ``"mask"`` (`any` from the mask
            head's largest logit; needs ``mask_head``).

    Raises:
        ValueError: an unknown architecture.
        WeightsUnavailable: ``weights="imagenet"`` where they cannot be loaded.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHITECTURES)}")
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = inputs
    if flips:
        x = keras.layers.RandomFlip("horizontal_and_vertical", seed=seed, name="flips")(x)
    scaling = _input_scaling(arch)
    if scaling is not None:
        x = scaling(x)
    try:
        backbone = ARCHITECTURES[arch](include_top=False, weights=weights, input_tensor=x)
    except Exception as exc:  # keras raises URL / OS errors from deep inside when it cannot download
        if weights == "imagenet":
            cache = os.path.join(os.path.expanduser("~"), ".keras", "models")
            raise WeightsUnavailable(
                f"ImageNet weights for {arch} could not be loaded ({type(exc).__name__}): they are not in the Keras "
                f"cache ({cache}) and cannot be downloaded here. Train from scratch with weights=None, or pass "
                "the path of a weights file.") from None
        raise
    if bn_momentum is not None:
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = bn_momentum
    if score_from not in SCORES_FROM or (score_from == "mask" and not mask_head):
        raise ValueError(f"score_from {score_from!r}: expected one of {SCORES_FROM}, 'mask' with mask_head=True")
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(backbone.output)
    x = keras.layers.Dropout(dropout, seed=seed, name="head_dropout")(x)
    x = keras.layers.Dense(dense, activation="relu", name="head_dense")(x)
    # float32 output even under mixed precision, so the loss and probabilities stay exact
    outputs = keras.layers.Dense(len(LABELS), activation="sigmoid", dtype="float32", name="labels")(x)
    if mask_head:
        outputs = Score(score_from == "mask", name=SCORE_LAYER)(outputs, _mask_head(backbone, arch, bn_momentum))
    return keras.Model(inputs, outputs, name=arch)


def _mask_head(backbone: keras.Model, arch: str, bn_momentum: float | None):
    """The mask head's logits on the backbone's stride-8 map: batch norm, ReLU, a 1 x 1 convolution."""
    m = backbone.get_layer(MASK_FROM[arch]).output
    m = keras.layers.BatchNormalization(momentum=bn_momentum or 0.99, name="mask_bn")(m)
    m = keras.layers.Activation("relu", name="mask_relu")(m)
    # a negative bias: blood fills few cells, so the head starts near the prior instead of at one half
    return keras.layers.Conv2D(1, 1, dtype="float32", bias_initializer=keras.initializers.Constant(-3.0),
                               name=MASK_LOGITS)(m)


def has_mask_head(model: keras.Model) -> bool:
    return any(layer.name == MASK_LOGITS for layer in model.layers)


def training_model(model: keras.Model) -> keras.Model:
    """The model to fit: the model itself, or, with a mask head, the same layers with two outputs (the
    classifier head's six probabilities, the mask logits), so a mask loss can be added to the labels' loss.

    The labels' loss is always the classifier head's, whichever way the model reads `any` (``score_from``):
    the mask head learns from the masks alone, so reading `any` from it changes the reading, not the training
    (a loss on its largest cell would push one cell per slice, where the masks teach every cell)."""
    if not has_mask_head(model):
        return model
    return keras.Model(model.inputs, [model.get_layer("labels").output, model.get_layer(MASK_LOGITS).output],
                       name=f"{model.name}_with_mask")


def mask_cells(model: keras.Model) -> int:
    """The mask head's cells per side in a built model (its map's own shape, whatever the input size)."""
    return int(model.get_layer(MASK_LOGITS).output.shape[1])


def mask_model(model: keras.Model) -> keras.Model:
    """(images) -> the mask head's logits per cell, (n, size / 8, size / 8, 1), of a model with a mask head."""
    return keras.Model(model.inputs, model.get_layer(MASK_LOGITS).output, name=f"{model.name}_mask")



def with_features(model: keras.Model) -> keras.Model:
    """The same network with two outputs, (probabilities, pooled embedding): both from one forward pass."""
    return keras.Model(model.inputs, [model.outputs[0], model.get_layer(FEATURE_LAYER).output],
                       name=f"{model.name}_with_features")


def _stage(arch: str, layer_name: str) -> str:
    """Which stage of its backbone a layer belongs to, from Keras' naming."""
    if layer_name.startswith(("head_", "mask_")) or layer_name in ("labels", SCORE_LAYER):
        return "head"
    if arch == "efficientnetb2":
        return layer_name.split("_")[0].rstrip("abcdefghijklmnopqrstuvwxyz") if layer_name.startswith("block") else "stem/top"
    prefix = layer_name.split("_")[0]
    return prefix if prefix.startswith(("conv", "pool")) and prefix[-1].isdigit() else "stem/top"


def stage_parameters(model: keras.Model, arch: str) -> dict[str, int]:
    """Parameters per stage (EfficientNet's blocks 1-7, ResNet's and DenseNet's conv2-5, stem/top, head)."""
    counts: dict[str, int] = {}
    for layer in model.layers:
        stage = _stage(arch, layer.name)
        counts[stage] = counts.get(stage, 0) + int(layer.count_params())
    return counts


def model_facts(model: keras.Model, arch: str) -> dict:
    """One row about a built model: parameters (all, trainable), layers, convolutions, the last block's map."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    last = model.get_layer(LAST_CONV[arch]).output.shape
    return {"parameters": model.count_params(), "paper (Table 3)": PAPER_PARAMETERS[arch],
            "trainable": trainable, "layers": len(model.layers),
            "convolutions": sum("Conv2D" in type(layer).__name__ for layer in model.layers),
            "last conv block": LAST_CONV[arch], "its feature map": "x".join(str(d) for d in last[1:])}


def forward_flops(model: keras.Model) -> int:
    """FLOPs of one image's forward pass through the convolutions and dense layers (a multiply-add counts 2).

    Counted from each layer's own shapes: a convolution costs 2 * output positions * output channels * kernel
    area * input channels per group; a depthwise one 2 * output positions * channels * kernel area; a dense
    layer 2 * inputs * units per position. Batch norm, activations, pooling and additions are left out: they are
    a few per cent of the arithmetic (though not of the memory traffic).
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += forward_flops(layer)
            continue
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, rows, cols, channels = layer.output.shape
            total += 2 * rows * cols * channels * int(np.prod(layer.kernel_size))
        elif isinstance(layer, keras.layers.Conv2D):
            _, rows, cols, filters = layer.output.shape
            in_channels = layer.input.shape[-1] // layer.groups
            total += 2 * rows * cols * filters * int(np.prod(layer.kernel_size)) * in_channels
        elif isinstance(layer, keras.layers.Dense):
            positions = int(np.prod(layer.input.shape[1:-1])) if len(layer.input.shape) > 2 else 1
            total += 2 * positions * layer.input.shape[-1] * layer.units
    return int(total)


def training_flops(model: keras.Model) -> int:
    """FLOPs of one image's training step: the forward pass and a backward pass of twice its cost.

    The backward pass computes the gradient with respect to each layer's input and to its weights, each as
    costly as the forward product (the usual 3x rule; it slightly overcounts the first layer, whose input
    needs no gradient).
    """
    return 3 * forward_flops(model)
