"""Export a trained Keras model to TFLite: float, and full-int8 with a representative dataset.

Both models take one beat at a time (``[1, 140, 1]``, batch fixed to 1) because that is how a
microcontroller runs them and because TVM and TFLite Micro need static shapes. The int8 model
quantizes weights and activations to int8 and also takes and returns int8, so no float work is
left for the device. Pruning zeros survive conversion, but TFLite stores weights densely: only the
gzip size shows the pruning (sparse encoding would add DENSIFY ops TFLite Micro cannot run).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from pla_tvm.baseline.model import keras

#: Beats of the training split fed to the int8 converter to calibrate activation ranges.
CALIBRATION_BEATS = 300


def _single_beat_function(model: keras.Model):
    length = int(model.input_shape[1])
    spec = tf.TensorSpec([1, length, 1], tf.float32, name="beat")
    return tf.function(lambda beat: model(beat, training=False)).get_concrete_function(spec)


def to_float_tflite(model: keras.Model) -> bytes:
    """A float32 TFLite flatbuffer of ``model`` with a batch-1 input."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [_single_beat_function(model)], model)
    return converter.convert()


def to_int8_tflite(model: keras.Model, calibration_beats: np.ndarray) -> bytes:
    """A full-integer (int8 weights, activations, input and output) TFLite flatbuffer."""
    calibration = np.asarray(calibration_beats[:CALIBRATION_BEATS], dtype=np.float32)

    def representative_dataset():
        for beat in calibration:
            yield [beat.reshape(1, -1, 1)]

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [_single_beat_function(model)], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def save_keras_atomically(model: keras.Model, path: Path) -> None:
    """Save a ``.keras`` model through a temporary file (see :mod:`pla_tvm.files`)."""
    path = Path(path)
    partial = path.with_name(f".part.{path.name}")
    model.save(partial)
    os.replace(partial, path)
