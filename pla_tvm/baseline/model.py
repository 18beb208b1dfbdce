"""Build the baseline 1-D ResNet in ``tf_keras`` (Keras 2), which tfmot's pruning requires.

Layer names are part of the interface: ``features`` is the penultimate tensor that PLA learns to
imitate (and that the TVM swap pass replaces up to), ``head`` is the final dense softmax layer
that PLA keeps.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tf_keras as keras  # noqa: E402

from pla_tvm.baseline.config import ResNetConfig  # noqa: E402

FEATURES_LAYER = "features"
HEAD_LAYER = "head"


def _residual_block(inputs, filters: int, kernel_sizes: tuple[int, ...], name: str):
    x = inputs
    for index, kernel in enumerate(kernel_sizes):
        x = keras.layers.Conv1D(filters, kernel, padding="same", name=f"{name}_conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn{index}")(x)
        if index < len(kernel_sizes) - 1:
            x = keras.layers.ReLU(name=f"{name}_relu{index}")(x)
    shortcut = inputs
    if inputs.shape[-1] != filters:
        shortcut = keras.layers.Conv1D(filters, 1, padding="same", name=f"{name}_shortcut")(inputs)
    shortcut = keras.layers.BatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
    x = keras.layers.Add(name=f"{name}_add")([x, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(x)


def build_resnet(config: ResNetConfig) -> keras.Model:
    """A fresh (untrained) 1-D ResNet for ``[batch, input_length, 1]`` beats."""
    inputs = keras.Input(shape=(config.input_length, 1), name="beat")
    x = inputs
    for block, filters in enumerate(config.filters):
        x = _residual_block(x, filters, config.kernel_sizes, name=f"block{block}")
    features = keras.layers.GlobalAveragePooling1D(name=FEATURES_LAYER)(x)
    outputs = keras.layers.Dense(config.n_classes, activation="softmax", name=HEAD_LAYER)(features)
    return keras.Model(inputs, outputs, name="resnet1d")


def feature_extractor(model: keras.Model) -> keras.Model:
    """The sub-model from the beat to the penultimate ``features`` tensor."""
    return keras.Model(model.inputs, model.get_layer(FEATURES_LAYER).output,
                       name=f"{model.name}_features")


def head_parameters(model: keras.Model):
    """The head's kernel ``[d, C]`` and bias ``[C]`` as numpy arrays."""
    kernel, bias = model.get_layer(HEAD_LAYER).get_weights()
    return kernel, bias
