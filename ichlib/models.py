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


def build_model(arch: str, image_size: int, weights: str | None = None, dropout: float = 0.125, dense: int = 128,
                flips: bool = False, seed: int = 0, bn_momentum: float | None = None) -> keras.Model:
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
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(backbone.output)
    x = keras.layers.Dropout(dropout, seed=seed, name="head_dropout")(x)
    x = keras.layers.Dense(dense, activation="relu", name="head_dense")(x)
    # float32 output even under mixed precision, so the loss and probabilities stay exact
    outputs = keras.layers.Dense(len(LABELS), activation="sigmoid", dtype="float32", name="labels")(x)
    return keras.Model(inputs, outputs, name=arch)



def with_features(model: keras.Model) -> keras.Model:
    """The same network with two outputs, (probabilities, pooled embedding): both from one forward pass."""
    return keras.Model(model.inputs, [model.outputs[0], model.get_layer(FEATURE_LAYER).output],
                       name=f"{model.name}_with_features")


def _stage(arch: str, layer_name: str) -> str:
    """Which stage of its backbone a layer belongs to, from Keras' naming."""
    if layer_name.startswith("head_") or layer_name == "labels":
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
