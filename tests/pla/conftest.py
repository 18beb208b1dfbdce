"""A tiny baseline-like directory for the PLA tests (until ``pla-tvm train`` output is at hand).

The teacher has the baseline's interface: input ``(140, 1)``, a penultimate
GlobalAveragePooling1D layer named ``features`` and a softmax Dense layer named ``head``; the
directory holds ``baseline.keras`` and a full-int8 ``baseline_int8.tflite`` with int8 input and
output, as ``pla-tvm train --out DIR`` writes them.
"""

from __future__ import annotations

import numpy as np
import pytest

#: Feature size of the tiny teacher (the paper's baseline has 144).
TINY_FEATURES = 12


def _tiny_teacher(x: np.ndarray, y: np.ndarray):
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    inputs = tf_keras.Input(shape=(140, 1), name="beat")
    hidden = tf_keras.layers.Conv1D(TINY_FEATURES, 7, padding="same", activation="relu")(inputs)
    features = tf_keras.layers.GlobalAveragePooling1D(name="features")(hidden)
    outputs = tf_keras.layers.Dense(5, activation="softmax", name="head")(features)
    model = tf_keras.Model(inputs, outputs)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2),
                  loss="sparse_categorical_crossentropy")
    model.fit(x[..., None], y, epochs=15, batch_size=32, verbose=0)
    return model, tf


def _int8_tflite(model, tf, calibration: np.ndarray) -> bytes:
    function = tf.function(lambda beat: model(beat, training=False)).get_concrete_function(
        tf.TensorSpec([1, 140, 1], tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([beat.reshape(1, 140, 1)] for beat in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


@pytest.fixture(scope="session")
def tiny_baseline_dir(tmp_path_factory, ecg5000):
    """A baseline directory with a tiny teacher trained on ECG5000's training beats."""
    directory = tmp_path_factory.mktemp("tiny-pla-baseline")
    model, tf = _tiny_teacher(ecg5000.train.x, ecg5000.train.y)
    model.save(directory / "baseline.keras")
    (directory / "baseline_int8.tflite").write_bytes(
        _int8_tflite(model, tf, ecg5000.train.x[:100]))
    return directory


@pytest.fixture(scope="session")
def tiny_teacher(tiny_baseline_dir):
    from pla_tvm.pla.teacher import load_teacher

    return load_teacher(tiny_baseline_dir)


@pytest.fixture(scope="session")
def synthetic_pla():
    """A fitted k=3 PLA model on synthetic 140-sample beats (d=16, 5 classes) and its data."""
    from pla_tvm.pla import PLAClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 140)).astype(np.float32)
    x[:, :10] += rng.integers(0, 3, size=(400, 1)) * 3.0  # three regions
    features = np.tanh(x @ rng.normal(size=(140, 16)) * 0.2)
    head_weights, head_bias = rng.normal(size=(16, 5)), rng.normal(size=5) * 0.1
    y = np.argmax(features @ head_weights + head_bias, axis=1)
    model = PLAClassifier(n_clusters=3, alpha=1.0, head_weights=head_weights,
                          head_bias=head_bias, random_state=0)
    return model.fit(x, y, teacher_features=features), x, y, features


@pytest.fixture(scope="session")
def synthetic_quantized(synthetic_pla):
    from pla_tvm.pla.quantize import quantize_pla

    model, x, _, features = synthetic_pla
    return quantize_pla(model, x, teacher_features=features)
