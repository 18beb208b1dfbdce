"""Three small untrained int8 CNNs for beats, compiled with micro and checked against TFLite Micro.

The models (``tf_keras``, random weights and biases, converted to full int8 with random
calibration beats) cover the convolution kinds a small ECG network uses: ``plain`` (Conv1D,
max pooling, Conv1D), ``depthwise`` (Conv1D, DepthwiseConv1D, 1x1 Conv1D) and ``separable``
(Conv1D, SeparableConv1D), each followed by global average pooling and a 5-class dense layer
whose int8 logits are the output (no softmax: the models end where TFLite and this project's
lowering both stay in integer arithmetic). The integration tests and the benchmark's "small
CNNs" stage build them with the same code: TFLite → :func:`pla_tvm.graph.prepare_module` →
:func:`micro.build` → :func:`micro.run` in QEMU, against the ``tflm`` interpreter of
:mod:`pla_tvm.inference` on the same int8 inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import micro
from pla_tvm.data.beats import BEAT_LENGTH
from pla_tvm.graph import prepare_module
from pla_tvm.inference import TFLiteRunner

LOG = logging.getLogger(__name__)

#: Board of the small-CNN measurements (Cortex-M4 with the DSP extension).
BOARD = "mps2-an386"
#: Classes of the dense head.
NUM_CLASSES = 5
#: Random calibration beats given to the int8 converter.
CALIBRATION_BEATS = 64
#: Random int8 inputs the benchmark stage runs through each model.
STAGE_INPUTS = 50
#: The issue's target for the default (DSP micro-kernel) build.
TARGET_INSTRUCTIONS_PER_MAC = 2.5


@dataclass(frozen=True)
class SmallCNN:
    """An untrained full-int8 small CNN.

    Attributes
    ----------
    name : str
        One of :data:`SMALL_CNNS`.
    layers : str
        The architecture in words.
    tflite : bytes
        The full-int8 TFLite flatbuffer (int8 input ``[1, 140, 1]``, int8 logits ``[1, 5]``).
    macs : int
        Multiply-accumulates per beat (convolutions and dense, from the Keras layers).
    requantized_outputs : int
        int8 values per beat that a requantization produces (:func:`requantized_outputs`).
    """

    name: str
    layers: str
    tflite: bytes
    macs: int
    requantized_outputs: int


@dataclass(frozen=True)
class FirmwareComparison:
    """A small CNN's firmware outputs beside TFLite Micro's on the same int8 inputs.

    Attributes
    ----------
    firmware_outputs, tflm_outputs : numpy.ndarray
        int8 logits ``[n, 5]``.
    run : micro.RunResult
        The QEMU run (instruction counts, footprint).
    """

    firmware_outputs: np.ndarray
    tflm_outputs: np.ndarray
    run: micro.RunResult

    @property
    def inputs_equal(self) -> int:
        """Inputs whose every output equals TFLite Micro's."""
        return int(np.sum(np.all(self.firmware_outputs == self.tflm_outputs, axis=1)))


def _plain(keras):
    layers = keras.layers
    inputs = keras.Input((BEAT_LENGTH, 1), name="beat")
    x = layers.Conv1D(16, 5, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling1D(2)(x)
    x = layers.Conv1D(32, 3, padding="same", activation="relu")(x)
    return inputs, x


def _depthwise(keras):
    layers = keras.layers
    inputs = keras.Input((BEAT_LENGTH, 1), name="beat")
    x = layers.Conv1D(16, 5, padding="same", activation="relu")(inputs)
    x = layers.DepthwiseConv1D(3, padding="same", activation="relu")(x)
    x = layers.Conv1D(32, 1, activation="relu")(x)
    return inputs, x


def _separable(keras):
    layers = keras.layers
    inputs = keras.Input((BEAT_LENGTH, 1), name="beat")
    x = layers.Conv1D(16, 5, padding="same", activation="relu")(inputs)
    x = layers.SeparableConv1D(32, 3, padding="same", activation="relu")(x)
    return inputs, x


#: name → (architecture in words, trunk builder taking ``tf_keras``).
SMALL_CNNS: dict[str, tuple[str, Callable]] = {
    "plain": ("Conv1D(16, 5) + ReLU, MaxPool1D(2), Conv1D(32, 3) + ReLU, GAP, Dense(5)", _plain),
    "depthwise": ("Conv1D(16, 5) + ReLU, DepthwiseConv1D(3) + ReLU, Conv1D(32, 1) + ReLU, GAP, "
                  "Dense(5)", _depthwise),
    "separable": ("Conv1D(16, 5) + ReLU, SeparableConv1D(32, 3) + ReLU, GAP, Dense(5)",
                  _separable),
}


def build_keras_model(name: str, seed: int = 0):
    """The untrained Keras model ``name`` with random weights and random biases.

    Keras starts biases at 0, which would leave the int32 bias path of the converted model
    untested, so every layer with a bias gets one drawn from N(0, 0.1).

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`SMALL_CNNS`.
    """
    if name not in SMALL_CNNS:
        raise ValueError(f"small CNN must be one of {tuple(SMALL_CNNS)}, got {name!r}")
    from pla_tvm.baseline.model import keras

    keras.utils.set_random_seed(seed)
    inputs, trunk = SMALL_CNNS[name][1](keras)
    pooled = keras.layers.GlobalAveragePooling1D()(trunk)
    model = keras.Model(inputs, keras.layers.Dense(NUM_CLASSES)(pooled), name=f"{name}_cnn")
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if getattr(layer, "use_bias", False) and weights:
            bias = rng.normal(0, 0.1, weights[-1].shape).astype(np.float32)
            layer.set_weights([*weights[:-1], bias])
    return model


def requantized_outputs(model) -> int:
    """int8 values per beat that TFLite's integer kernels requantize: every output of a
    convolution, depthwise convolution or dense layer (a SeparableConv1D is a depthwise and a
    pointwise convolution, two requantized tensors). Each costs a bias add, a fixed-point
    multiply, a rounding shift, a clamp and a store whatever the kernel, so with the MACs it
    bounds what a model can cost per MAC."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("Conv1D", "DepthwiseConv1D", "Dense"):
            total += int(np.prod(layer.output.shape[1:]))
        elif kind == "SeparableConv1D":
            steps, _ = layer.output.shape[1:]
            total += steps * int(layer.input.shape[-1]) * layer.depth_multiplier
            total += int(np.prod(layer.output.shape[1:]))
    return total


def make_small_cnn(name: str, seed: int = 0) -> SmallCNN:
    """Build the model ``name`` and convert it to full int8 with random calibration beats."""
    from pla_tvm.baseline.costs import model_macs
    from pla_tvm.baseline.export import to_int8_tflite

    model = build_keras_model(name, seed)
    calibration = np.random.default_rng(seed).standard_normal((CALIBRATION_BEATS, BEAT_LENGTH))
    return SmallCNN(name=name, layers=SMALL_CNNS[name][0],
                    tflite=to_int8_tflite(model, calibration.astype(np.float32)),
                    macs=model_macs(model), requantized_outputs=requantized_outputs(model))


def random_int8_beats(count: int, seed: int) -> np.ndarray:
    """``count`` random int8 beats ``[count, 140]`` covering the whole int8 range."""
    return np.random.default_rng(seed).integers(-128, 128, (count, BEAT_LENGTH), dtype=np.int8)


def compare_with_tflm(cnn: SmallCNN, out_dir: Path, inputs: np.ndarray,
                      board: str = BOARD) -> FirmwareComparison:
    """Compile ``cnn`` with micro's default build for ``board``, run ``inputs`` in QEMU and
    run the same inputs on TFLite Micro.

    Parameters
    ----------
    cnn : SmallCNN
        The model.
    out_dir : Path
        Where the ``.tflite`` file and the firmware project go.
    inputs : numpy.ndarray
        int8 beats ``[n, 140]``.
    board : str
        micro board name.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{cnn.name}_int8.tflite"
    path.write_bytes(cnn.tflite)
    firmware = micro.build(prepare_module(path), board, out_dir / "firmware")
    run = micro.run(firmware, inputs.reshape((len(inputs), *firmware.input.shape)))
    tflm = TFLiteRunner(cnn.tflite, path.name, "tflm").raw_outputs(inputs)
    return FirmwareComparison(firmware_outputs=run.outputs.reshape(len(inputs), -1),
                              tflm_outputs=tflm, run=run)


def small_cnns_stage(work_dir: Path, seed: int = 0) -> dict[str, Any]:
    """Build, compile and run the three small CNNs on :data:`BOARD`; instruction counts, memory
    and bit-exactness with TFLite Micro per model (under a minute)."""
    inputs = random_int8_beats(STAGE_INPUTS, seed)
    rows = []
    for name in SMALL_CNNS:
        LOG.info("small CNNs: %s on %s, %d inputs", name, BOARD, len(inputs))
        cnn = make_small_cnn(name, seed)
        comparison = compare_with_tflm(cnn, Path(work_dir) / name, inputs)
        run = comparison.run
        rows.append({
            "model": name, "layers": cnn.layers, "macs": cnn.macs,
            "requantized_outputs": cnn.requantized_outputs,
            "instructions_per_inference": run.instructions_per_inference,
            "instructions_per_mac": run.instructions_per_inference / cnn.macs,
            "counting": run.counting,
            "model_flash_bytes": run.footprint.model_flash_bytes,
            "model_ram_bytes": run.footprint.model_ram_bytes,
            "stack_bytes": run.stack_bytes,
            "inputs": len(inputs), "inputs_bit_exact_with_tflm": comparison.inputs_equal,
        })
    return {"board": BOARD, "seed": seed,
            "target_instructions_per_mac": TARGET_INSTRUCTIONS_PER_MAC, "rows": rows}
