"""The baseline PLA imitates, read from the directory ``pla-tvm train --out DIR`` writes.

PLA needs four things from it: the penultimate-layer outputs on the beats (the regression targets),
the final dense layer (kept as the head), and -- so that the int8 PLA operator can replace the
int8 baseline's trunk inside one graph -- the int8 model's input and penultimate tensor
quantization. The Keras model provides the first two (layer ``features``: the penultimate output;
layer ``head``: the final dense layer); ``baseline_int8.tflite`` provides the others (its input
tensor, and the input of its last FULLY_CONNECTED op).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pla_tvm.baseline.model import FEATURES_LAYER, HEAD_LAYER, keras
from pla_tvm.baseline.pipeline import INT8_TFLITE_FILE, KERAS_FILE
from pla_tvm.errors import ModelError
from pla_tvm.inference import KerasRunner
from pla_tvm.pla.quantize import QuantParams


@dataclass(frozen=True, eq=False)
class Teacher:
    """A loaded baseline.

    Attributes
    ----------
    directory : Path
        The baseline directory.
    keras_model : tf_keras.Model
        The full classifier (beats ``[n, D, 1]`` -> probabilities).
    outputs_model : tf_keras.Model
        The same network with two outputs, features and probabilities (one pass for both).
    head_weights, head_bias : np.ndarray
        The ``head`` layer's kernel ``[d, C]`` and bias ``[C]``.
    input_quant, feature_quant : QuantParams or None
        The int8 model's input and penultimate quantization; None without an int8 model.
    sha256 : str
        SHA-256 of the Keras file (recorded in ``pla.npz``).
    """

    directory: Path
    keras_model: object
    outputs_model: object
    head_weights: np.ndarray
    head_bias: np.ndarray
    input_quant: QuantParams | None
    feature_quant: QuantParams | None
    sha256: str

    def outputs(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate features ``[n, d]`` and classes ``[n]`` of float beats ``[n, D]``."""
        features, probabilities = self.outputs_model.predict(
            np.asarray(X, np.float32)[..., None], batch_size=256, verbose=0)
        return features, np.argmax(probabilities, axis=1)

    def features(self, X: np.ndarray) -> np.ndarray:
        """Penultimate-layer outputs ``[n, d]`` of float beats ``[n, D]``."""
        return self.outputs(X)[0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def int8_boundary_quantization(path: Path) -> tuple[QuantParams, QuantParams]:
    """Input and penultimate-tensor quantization of an int8 TFLite classifier.

    Parameters
    ----------
    path : Path
        A full-int8 ``.tflite`` whose last FULLY_CONNECTED op is the classifier head.

    Returns
    -------
    input_quant, feature_quant : QuantParams
        Of the model's input tensor and of the head's input tensor.

    Raises
    ------
    ModelError
        If the file is not a TFLite model, has no FULLY_CONNECTED op, or the tensors are not
        per-tensor int8-quantized.
    """
    import tflite

    buffer = path.read_bytes()
    if not tflite.Model.ModelBufferHasIdentifier(buffer, 0):
        raise ModelError(f"{path}: not a TFLite flatbuffer (no 'TFL3' identifier)")
    model = tflite.Model.GetRootAsModel(buffer, 0)
    graph = model.Subgraphs(0)
    heads = [graph.Operators(i) for i in range(graph.OperatorsLength())
             if max(model.OperatorCodes(graph.Operators(i).OpcodeIndex()).BuiltinCode(),
                    model.OperatorCodes(graph.Operators(i).OpcodeIndex()).DeprecatedBuiltinCode())
             == tflite.BuiltinOperator.FULLY_CONNECTED]
    if not heads:
        raise ModelError(f"{path}: no FULLY_CONNECTED op, so no penultimate tensor to read")

    def quantization(index: int, role: str) -> QuantParams:
        tensor = graph.Tensors(index)
        params = tensor.Quantization()
        if (tensor.Type() != tflite.TensorType.INT8 or params is None
                or params.ScaleLength() != 1):
            raise ModelError(f"{path}: the {role} tensor {tensor.Name().decode()!r} is not "
                             f"per-tensor int8-quantized")
        return QuantParams(float(params.Scale(0)), int(params.ZeroPoint(0)))

    return (quantization(graph.Inputs(0), "input"),
            quantization(heads[-1].Inputs(0), "penultimate (last FULLY_CONNECTED input)"))


def load_teacher(directory: str | Path) -> Teacher:
    """Load a baseline directory.

    Parameters
    ----------
    directory : str or Path
        Holds ``baseline.keras`` (layers ``features`` and ``head``) and, optionally,
        ``baseline_int8.tflite``.

    Returns
    -------
    Teacher

    Raises
    ------
    ModelError
        If the Keras file is missing or unreadable or lacks the two layers.
    """
    directory = Path(directory)
    keras_path = directory / KERAS_FILE
    if not keras_path.is_file():
        raise ModelError(f"{keras_path}: baseline model not found (expected the output "
                         f"directory of 'pla-tvm train')")
    model = KerasRunner(keras_path).model
    try:
        features = model.get_layer(FEATURES_LAYER)
        head = model.get_layer(HEAD_LAYER)
    except ValueError:
        raise ModelError(f"{keras_path}: needs layers named {FEATURES_LAYER!r} (penultimate "
                         f"output) and {HEAD_LAYER!r} (final dense layer); it has "
                         f"{[layer.name for layer in model.layers]}") from None
    kernel, bias = head.get_weights()
    int8_path = directory / INT8_TFLITE_FILE
    input_quant, feature_quant = (int8_boundary_quantization(int8_path) if int8_path.is_file()
                                  else (None, None))
    return Teacher(directory=directory, keras_model=model,
                   outputs_model=keras.Model(model.inputs, [features.output, model.output]),
                   head_weights=np.asarray(kernel, np.float64),
                   head_bias=np.asarray(bias, np.float64), input_quant=input_quant,
                   feature_quant=feature_quant, sha256=_sha256(keras_path))
