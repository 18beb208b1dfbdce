"""Shared fixtures for the relay_passes tests: tiny tf_keras 1-D models converted to TFLite.

The models are built once per session (TensorFlow is imported only when a test asks for them) and
kept tiny so the whole directory runs in well under a minute of model building on 2 cores: a
1-D ResNet (float and full-int8), and three full-int8 models with depthwise convolutions
(``SeparableConv1D`` on the one-channel input, ``DepthwiseConv1D`` and ``SeparableConv1D`` after
a ``Conv1D``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest

INPUT_LENGTH = 140
NUM_CLASSES = 5


@dataclass(frozen=True)
class TinyResNet:
    """An untrained tiny 1-D ResNet and its TFLite exports."""

    float_tflite: bytes
    int8_tflite: bytes
    train_x: np.ndarray  # [n, 140, 1] float32, also the representative data set
    train_features: np.ndarray  # [n, d] penultimate (GAP) features from Keras
    dense_weight: np.ndarray  # [d, classes]
    dense_bias: np.ndarray  # [classes]


def _build_keras_model(filters: int, seed: int):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tf_keras as keras  # noqa: PLC0415

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inp = keras.Input((INPUT_LENGTH, 1), name="beat")
    x = layers.Conv1D(filters, 8, padding="same")(inp)
    x = layers.BatchNormalization()(x)
    stem = layers.MaxPooling1D(2)(layers.ReLU()(x))
    x = layers.Conv1D(filters, 5, padding="same")(stem)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    y = layers.Conv1D(filters, 3, padding="same")(x)
    y = layers.BatchNormalization()(y)
    shortcut = layers.BatchNormalization()(layers.Conv1D(filters, 1, padding="same")(stem))
    x = layers.ReLU()(layers.Add()([y, shortcut]))
    # Second block with an identity shortcut: its BatchNorm cannot be folded into a convolution,
    # so TFLite keeps it as MUL and ADD by per-channel constants (as in the paper's baseline).
    y = layers.BatchNormalization()(layers.Conv1D(filters, 3, padding="same")(x))
    x = layers.ReLU()(layers.Add()([y, layers.BatchNormalization()(x)]))
    x = layers.AveragePooling1D(2)(x)
    features = layers.GlobalAveragePooling1D(name="features")(x)
    logits = layers.Dense(NUM_CLASSES, name="head")(features)
    model = keras.Model(inp, layers.Softmax()(logits))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
    head = model.get_layer("head")
    kernel, _ = head.get_weights()
    head.set_weights([kernel, rng.normal(0, 0.2, NUM_CLASSES).astype(np.float32)])
    return keras.Model(inp, features), model


def _convert(model, data: np.ndarray | None) -> bytes:
    import tensorflow as tf  # noqa: PLC0415

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if data is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([data[i:i + 1]] for i in range(len(data)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


@pytest.fixture(scope="session")
def tiny_resnet() -> TinyResNet:
    """A 32-filter 1-D ResNet: stem conv 8 + max pool, a residual block (kernels 5/3, 1x1
    shortcut), a block with an identity shortcut (conv 3; BatchNorm as MUL/ADD), average pool,
    GAP, dense 5, softmax; random BatchNorm statistics and head bias."""
    feature_model, model = _build_keras_model(filters=32, seed=0)
    rng = np.random.default_rng(0)
    train_x = rng.standard_normal((64, INPUT_LENGTH, 1)).astype(np.float32)
    head = model.get_layer("head")
    kernel, bias = head.get_weights()
    return TinyResNet(
        float_tflite=_convert(model, None),
        int8_tflite=_convert(model, train_x),
        train_x=train_x,
        train_features=feature_model.predict(train_x, verbose=0),
        dense_weight=kernel,
        dense_bias=bias,
    )


def _keras_layers(seed: int):
    """``tf_keras`` with its random seed set, and its layers module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tf_keras as keras  # noqa: PLC0415

    keras.utils.set_random_seed(seed)
    return keras, keras.layers


def _int8_with_random_biases(model, seed: int) -> bytes:
    """``model`` as full-int8 TFLite, after giving every layer random biases (Keras starts them at
    0, which would leave the int32 bias path of the converted model untested)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if getattr(layer, "use_bias", False) and weights:
            bias = weights[-1]
            layer.set_weights([*weights[:-1], rng.normal(0, 0.1, bias.shape).astype(np.float32)])
    data = rng.standard_normal((64, INPUT_LENGTH, 1)).astype(np.float32)
    return _convert(model, data)


@pytest.fixture(scope="session")
def separable_on_input_int8() -> bytes:
    """Full-int8 ``SeparableConv1D(8, 5)`` on the one-channel beat -> GAP -> dense 5.

    Its depthwise weight ``[1, 1, 5, 1]`` has one scale, stored with quantized dimension 3.
    """
    keras, layers = _keras_layers(seed=1)
    inp = keras.Input((INPUT_LENGTH, 1), name="beat")
    x = layers.SeparableConv1D(8, 5, padding="same", activation="relu")(inp)
    x = layers.GlobalAveragePooling1D()(x)
    return _int8_with_random_biases(keras.Model(inp, layers.Dense(NUM_CLASSES)(x)), seed=1)


@pytest.fixture(scope="session")
def depthwise_int8() -> bytes:
    """Full-int8 ``Conv1D(8, 5)`` -> ``DepthwiseConv1D(3)`` -> ``Conv1D(12, 1)`` -> GAP -> dense 5
    (ReLU after each convolution)."""
    keras, layers = _keras_layers(seed=2)
    inp = keras.Input((INPUT_LENGTH, 1), name="beat")
    x = layers.Conv1D(8, 5, padding="same", activation="relu")(inp)
    x = layers.DepthwiseConv1D(3, padding="same", activation="relu")(x)
    x = layers.Conv1D(12, 1, activation="relu")(x)
    x = layers.GlobalAveragePooling1D()(x)
    return _int8_with_random_biases(keras.Model(inp, layers.Dense(NUM_CLASSES)(x)), seed=2)


@pytest.fixture(scope="session")
def separable_int8() -> bytes:
    """Full-int8 ``Conv1D(8, 5)`` -> ``SeparableConv1D(12, 5, depth_multiplier=2)`` -> GAP ->
    dense 5 (ReLU after each convolution); the depthwise part has 16 output channels."""
    keras, layers = _keras_layers(seed=3)
    inp = keras.Input((INPUT_LENGTH, 1), name="beat")
    x = layers.Conv1D(8, 5, padding="same", activation="relu")(inp)
    x = layers.SeparableConv1D(12, 5, depth_multiplier=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling1D()(x)
    return _int8_with_random_biases(keras.Model(inp, layers.Dense(NUM_CLASSES)(x)), seed=3)
