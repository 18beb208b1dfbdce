"""The baseline PLA imitates, read from the directory ``pla-tvm train --out DIR`` writes.

PLA needs from it: the penultimate-layer outputs on the beats (the regression targets), the final
dense layer (kept as the head), and -- so that the int8 PLA operator can replace the int8
baseline's trunk inside one graph and compute what that graph computes -- the int8 model's input
and penultimate tensor quantization and its int8 head. The Keras model provides the first two
(layer ``features``: the penultimate output; layer ``head``: the final dense layer);
``baseline_int8.tflite`` provides the others (its input tensor, and its last FULLY_CONNECTED op:
input quantization, weights, scales, bias and output quantization).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pla_tvm.baseline.model import FEATURES_LAYER, HEAD_LAYER, keras
from pla_tvm.baseline.pipeline import INT8_TFLITE_FILE, KERAS_FILE
from pla_tvm.errors import ModelError
from pla_tvm.files import sha256_of
from pla_tvm.inference import KerasRunner
from pla_tvm.pla.quantize import Int8Baseline, Int8Head, QuantParams


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
    int8 : Int8Baseline or None
        The int8 model's input and penultimate quantization and its int8 head; None without an
        int8 model.
    sha256 : str
        SHA-256 of the Keras file (recorded in ``pla.npz``).
    """

    directory: Path
    keras_model: object
    outputs_model: object
    head_weights: np.ndarray
    head_bias: np.ndarray
    int8: Int8Baseline | None
    sha256: str

    def outputs(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate features ``[n, d]`` and classes ``[n]`` of float beats ``[n, D]``."""
        features, probabilities = self.outputs_model.predict(
            np.asarray(X, np.float32)[..., None], batch_size=256, verbose=0)
        return features, np.argmax(probabilities, axis=1)

    def features(self, X: np.ndarray) -> np.ndarray:
        """Penultimate-layer outputs ``[n, d]`` of float beats ``[n, D]``."""
        return self.outputs(X)[0]


def _builtin_code(model, operator) -> int:
    code = model.OperatorCodes(operator.OpcodeIndex())
    # Models from older converters only fill the deprecated 8-bit field.
    return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())


def _check_head_ends_model(path: Path, model, operators: list, head) -> None:
    """The head must be a plain FULLY_CONNECTED whose output is the model's output or feeds only
    the final SOFTMAX: anything else after it would not be in the int8 PLA model."""
    import tflite

    table = head.BuiltinOptions()
    if table is not None:
        options = tflite.FullyConnectedOptions()
        options.Init(table.Bytes, table.Pos)
        if options.FusedActivationFunction() != tflite.ActivationFunctionType.NONE:
            raise ModelError(f"{path}: the head (last FULLY_CONNECTED) has a fused activation; "
                             f"PLA keeps only a plain int8 FULLY_CONNECTED head")
    graph = model.Subgraphs(0)
    logits = head.Outputs(0)
    consumers = [op for op in operators
                 if logits in [op.Inputs(i) for i in range(op.InputsLength())]]
    outputs = [graph.Outputs(i) for i in range(graph.OutputsLength())]
    ends_model = (not consumers and logits in outputs) or (
        len(consumers) == 1
        and _builtin_code(model, consumers[0]) == tflite.BuiltinOperator.SOFTMAX
        and consumers[0].Outputs(0) in outputs)
    if not ends_model:
        raise ModelError(f"{path}: the output {graph.Tensors(logits).Name().decode()!r} of the "
                         f"last FULLY_CONNECTED op is not the model's output nor the input of "
                         f"its final SOFTMAX")


def read_int8_baseline(path: Path) -> Int8Baseline:
    """Read the input and penultimate quantization and the int8 head of an int8 classifier.

    The head is the last FULLY_CONNECTED op; it must end the model, alone or followed by one
    SOFTMAX (what the converter makes of a softmax ``Dense``), so that "PLA + this head" is the
    whole swapped graph up to a monotone softmax.

    Parameters
    ----------
    path : Path
        A full-int8 ``.tflite`` (``baseline_int8.tflite``).

    Returns
    -------
    Int8Baseline

    Raises
    ------
    ModelError
        If the file is not a TFLite model, has no FULLY_CONNECTED op, the head is not the end of
        the model or has a fused activation, or a tensor is not int8-quantized as TFLite's int8
        FULLY_CONNECTED needs (per-tensor activations, symmetric per-tensor or per-class
        weights, int32 bias).
    """
    import tflite

    buffer = path.read_bytes()
    if not tflite.Model.ModelBufferHasIdentifier(buffer, 0):
        raise ModelError(f"{path}: not a TFLite flatbuffer (no 'TFL3' identifier)")
    try:
        return _parse_int8_baseline(path, tflite.Model.GetRootAsModel(buffer, 0))
    except (struct.error, IndexError, UnicodeDecodeError) as error:
        raise ModelError(f"{path}: corrupt or truncated TFLite flatbuffer ({len(buffer):,} bytes: "
                         f"{type(error).__name__}: {error}); export the model again") from None


def _parse_int8_baseline(path: Path, model) -> Int8Baseline:
    """The body of :func:`read_int8_baseline`, on a parsed flatbuffer."""
    import tflite

    graph = model.Subgraphs(0)
    operators = [graph.Operators(i) for i in range(graph.OperatorsLength())]
    heads = [op for op in operators
             if _builtin_code(model, op) == tflite.BuiltinOperator.FULLY_CONNECTED]
    if not heads:
        raise ModelError(f"{path}: no FULLY_CONNECTED op, so no penultimate tensor to read")
    head = heads[-1]
    head_input, weights_index = head.Inputs(0), head.Inputs(1)
    bias_index = head.Inputs(2) if head.InputsLength() > 2 else -1  # -1: no bias
    logits_index = head.Outputs(0)

    def tensor_name(index: int) -> str:
        return graph.Tensors(index).Name().decode()

    def quantization(index: int, role: str) -> QuantParams:
        tensor = graph.Tensors(index)
        params = tensor.Quantization()
        if (tensor.Type() != tflite.TensorType.INT8 or params is None
                or params.ScaleLength() != 1):
            raise ModelError(f"{path}: the {role} tensor {tensor_name(index)!r} is not "
                             f"per-tensor int8-quantized")
        return QuantParams(float(params.Scale(0)), int(params.ZeroPoint(0)))

    def constant(index: int, dtype, role: str) -> np.ndarray:
        tensor = graph.Tensors(index)
        data = model.Buffers(tensor.Buffer()).DataAsNumpy()
        if tensor.Type() != {np.int8: tflite.TensorType.INT8,
                             np.int32: tflite.TensorType.INT32}[dtype] or isinstance(data, int):
            raise ModelError(f"{path}: the head's {role} {tensor_name(index)!r} is not a "
                             f"constant {np.dtype(dtype).name} tensor")
        return data.view(dtype).reshape(tensor.ShapeAsNumpy())

    _check_head_ends_model(path, model, operators, head)
    features = quantization(head_input, "penultimate (last FULLY_CONNECTED input)")
    weights = constant(weights_index, np.int8, "weights")  # [C, d], TFLite's [out, in]
    n_classes = weights.shape[0]
    weight_params = graph.Tensors(weights_index).Quantization()
    if (weight_params is None or weight_params.ScaleLength() not in (1, n_classes)
            or (weight_params.ScaleLength() > 1 and weight_params.QuantizedDimension() != 0)
            or np.any(weight_params.ZeroPointAsNumpy() != 0)):
        raise ModelError(f"{path}: the head's weights are not symmetric int8 with one scale or "
                         f"one per class")
    scales = np.broadcast_to(weight_params.ScaleAsNumpy().astype(np.float32), (n_classes,))
    bias = (constant(bias_index, np.int32, "bias") if bias_index >= 0
            else np.zeros(n_classes, np.int32))
    return Int8Baseline(
        input=quantization(graph.Inputs(0), "input"), features=features,
        head=Int8Head(weights_q=np.ascontiguousarray(weights.T), weight_scales=scales.copy(),
                      bias_q=bias.copy(), logits=quantization(logits_index, "logits")))


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
        If the Keras file is missing or unreadable or lacks the two layers, or the int8 model
        is unreadable (:func:`read_int8_baseline`).
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
    int8 = read_int8_baseline(int8_path) if int8_path.is_file() else None
    return Teacher(directory=directory, keras_model=model,
                   outputs_model=keras.Model(model.inputs, [features.output, model.output]),
                   head_weights=np.asarray(kernel, np.float64),
                   head_bias=np.asarray(bias, np.float64), int8=int8,
                   sha256=sha256_of(keras_path))
