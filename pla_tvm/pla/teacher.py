"""The model PLA imitates: a user's Keras classifier, or the folder ``pla-tvm train`` writes.

PLA needs from it: the penultimate-layer outputs on the beats (the regression targets), the final
dense layer (kept as the head), and -- so that the int8 PLA operator can replace the int8
model's trunk inside one graph and compute what that graph computes -- the int8 model's input
and penultimate tensor quantization and its int8 head. The Keras model provides the first two
(the last Dense layer is the head; the features are its input, or a named layer that reaches it
through inference-identity layers); the int8 ``.tflite`` provides the others (its input tensor,
and its last FULLY_CONNECTED op: input quantization, weights, scales, bias and output
quantization). ``pla-tvm train`` writes ``baseline.keras`` (layers ``features`` and ``head``) and
``baseline_int8.tflite``; :func:`load_teacher` reads that folder.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pla_tvm.baseline.model import FEATURES_LAYER, HEAD_LAYER, keras
from pla_tvm.baseline.pipeline import INT8_TFLITE_FILE, KERAS_FILE, PRUNED_KERAS_FILE
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
    source : Path
        What was loaded: the Keras file, or the ``train`` folder (recorded in ``pla.npz``).
    int8_sha256 : str
        SHA-256 of the int8 model ('' without one; recorded in ``pla.npz`` so ``compile --pla``
        can tell whether it swaps the model PLA was fitted to).
    int8_bytes : int or None
        Size of the int8 model file (None without one).
    """

    directory: Path
    keras_model: object
    outputs_model: object
    head_weights: np.ndarray
    head_bias: np.ndarray
    int8: Int8Baseline | None
    sha256: str
    source: Path
    int8_sha256: str = ""
    int8_bytes: int | None = None

    @property
    def input_length(self) -> int:
        """Samples per beat the model takes."""
        return int(self.keras_model.input_shape[1])

    def outputs(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate features ``[n, d]`` and classes ``[n]`` of float beats ``[n, D]``."""
        X = np.asarray(X, np.float32)
        features, probabilities = self.outputs_model.predict(
            X.reshape(len(X), *self.keras_model.input_shape[1:]), batch_size=256, verbose=0)
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


#: Keras layers that compute the identity at inference: between the features and the head they
#: change nothing PLA has to imitate.
INFERENCE_IDENTITY_LAYERS = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise",
                             "GaussianDropout", "AlphaDropout", "ActivityRegularization")


def _producer(model, tensor):
    """The layer of ``model`` whose output is ``tensor`` (None for the model's input)."""
    return next((layer for layer in model.layers
                 if not isinstance(layer, keras.layers.InputLayer) and layer.output is tensor),
                None)


def _head(path: Path, model):
    """The last Dense layer, checked to end the model (alone or followed by a softmax)."""
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise ModelError(f"{path}: no Dense layer; PLA replaces what feeds a classifier's last "
                         f"Dense layer (its layers: {[layer.name for layer in model.layers]})")
    head = dense[-1]
    activation = keras.activations.serialize(head.activation)
    activation = activation if isinstance(activation, str) else activation.get("config", {}).get(
        "name", str(activation))
    if activation not in ("linear", "softmax"):
        raise ModelError(f"{path}: the last Dense layer {head.name!r} has activation "
                         f"{activation!r}; PLA keeps a linear or softmax head")
    output = model.outputs[0]
    last = _producer(model, output)
    if last is not head and not (
            last is not None and type(last).__name__ in ("Softmax", "Activation")
            and last.input is head.output
            and getattr(last, "activation", keras.activations.softmax)
            is keras.activations.softmax):
        raise ModelError(f"{path}: the last Dense layer {head.name!r} does not end the model "
                         f"(its output goes through {last.name if last else '?'!r}); PLA keeps "
                         f"the last Dense layer as the head, alone or followed by a softmax")
    return head


def _feature_candidates(model, head) -> list:
    """Layers whose output is the head's input up to inference-identity layers (Dropout …),
    nearest the head first."""
    candidates = []
    layer = _producer(model, head.input)
    while layer is not None:
        candidates.append(layer)
        if type(layer).__name__ not in INFERENCE_IDENTITY_LAYERS:
            break
        layer = _producer(model, layer.input)
    return candidates


def _features_layer(path: Path, model, head, name: str | None):
    """The layer PLA imitates: the input of the head by default, or the one named."""
    candidates = _feature_candidates(model, head)
    if not candidates:
        raise ModelError(f"{path}: the head {head.name!r} reads the model's input directly; "
                         f"there is no trunk for PLA to replace")
    if name is None:
        return candidates[0]
    chosen = next((layer for layer in candidates if layer.name == name), None)
    if chosen is None:
        where = ("is not in the model" if name not in [layer.name for layer in model.layers]
                 else f"does not feed the head {head.name!r} directly")
        raise ModelError(f"{path}: features layer {name!r} {where}; candidates (the head's "
                         f"input, through inference-identity layers): "
                         f"{', '.join(layer.name for layer in candidates)}")
    return chosen


def load_model_teacher(model_path: str | Path, int8_path: str | Path | None = None,
                       features: str | None = None) -> Teacher:
    """Load a user's Keras classifier (and optionally its int8 TFLite model) as a teacher.

    Parameters
    ----------
    model_path : str or Path
        A ``.keras`` or ``.h5`` classifier of single-lead beats (input ``[batch, L, 1]`` or
        ``[batch, L]``) whose last Dense layer ends it (alone or before a softmax).
    int8_path : str or Path, optional
        The full-int8 ``.tflite`` of the same model: PLA then takes its input and penultimate
        quantization and its int8 head, so ``compile --pla`` can swap the int8 model's trunk.
    features : str, optional
        The layer whose output PLA imitates; default the input of the last Dense layer (the
        structural rule of :class:`relay_passes.SwapTrunkForPLA`). Only layers that reach the
        head through inference-identity layers (Dropout …) qualify.

    Returns
    -------
    Teacher

    Raises
    ------
    ModelError
        If a file is missing or unreadable, the model does not take a beat, has no Dense head
        ending it, the features layer is not a candidate, or the int8 model's head does not
        have the Keras head's shape.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ModelError(f"{model_path}: model file not found")
    model = KerasRunner(model_path).model
    head = _head(model_path, model)
    features_layer = _features_layer(model_path, model, head, features)
    kernel, bias = head.get_weights() if head.use_bias else (
        head.get_weights()[0], np.zeros(head.units))
    int8 = None
    if int8_path is not None:
        int8_path = Path(int8_path)
        if not int8_path.is_file():
            raise ModelError(f"{int8_path}: int8 model file not found")
        int8 = read_int8_baseline(int8_path)
        if int8.head.weights_q.shape != kernel.shape:
            raise ModelError(f"{int8_path}: its head (last FULLY_CONNECTED) has weights "
                             f"{tuple(int8.head.weights_q.shape[::-1])} but {model_path}'s "
                             f"{head.name!r} has {tuple(kernel.shape[::-1])}: not the same model")
    return Teacher(directory=model_path.parent, keras_model=model,
                   outputs_model=keras.Model(model.inputs, [features_layer.output, model.output]),
                   head_weights=np.asarray(kernel, np.float64),
                   head_bias=np.asarray(bias, np.float64), int8=int8,
                   sha256=sha256_of(model_path), source=model_path,
                   int8_sha256=sha256_of(int8_path) if int8_path is not None else "",
                   int8_bytes=int8_path.stat().st_size if int8_path is not None else None)


def teacher_file(directory: str | Path) -> Path:
    """The Keras model of a ``pla-tvm train`` folder that PLA imitates.

    ``baseline_pruned.keras`` where it exists: ``baseline_int8.tflite`` is its conversion, so its
    features are the ones the int8 head PLA keeps was trained on (imitating the unpruned
    ``baseline.keras`` feeds that head features of another network; measured on the paper
    baseline, seed 0, with ``python -m pla_tvm.pla.variants --keras``: int8 macro F1 0.540 ->
    0.559, see docs/pla.md). ``baseline.keras`` for folders without a pruned model.
    """
    directory = Path(directory)
    pruned = directory / PRUNED_KERAS_FILE
    return pruned if pruned.is_file() else directory / KERAS_FILE


def load_teacher(directory: str | Path) -> Teacher:
    """Load the output folder of ``pla-tvm train`` (a shorthand for :func:`load_model_teacher`).

    Parameters
    ----------
    directory : str or Path
        Holds ``baseline.keras`` (layers ``features`` and ``head``), optionally
        ``baseline_pruned.keras`` (then the teacher, :func:`teacher_file`) and
        ``baseline_int8.tflite``.

    Returns
    -------
    Teacher

    Raises
    ------
    ModelError
        If the Keras file is missing or unreadable or lacks the two layers, or the int8 model
        is unreadable (:func:`read_int8_baseline`); if the folder has no
        ``baseline_int8.tflite`` but other ``.tflite`` files (an int8 model under another name
        would otherwise be ignored).
    """
    directory = Path(directory)
    keras_path = teacher_file(directory)
    if not keras_path.is_file():
        raise ModelError(f"{keras_path}: baseline model not found (expected the output "
                         f"directory of 'pla-tvm train'; for a model of your own use "
                         f"--model FILE.keras [--int8 FILE.tflite])")
    int8_path = directory / INT8_TFLITE_FILE
    if not int8_path.is_file():
        others = sorted(path.name for path in directory.glob("*.tflite"))
        if others:
            raise ModelError(f"{directory}: no {INT8_TFLITE_FILE} but {', '.join(others)}; "
                             f"name the int8 model with --model {keras_path} --int8 FILE")
    model = KerasRunner(keras_path).model
    names = [layer.name for layer in model.layers]
    if FEATURES_LAYER not in names or HEAD_LAYER not in names:
        raise ModelError(f"{keras_path}: needs layers named {FEATURES_LAYER!r} (penultimate "
                         f"output) and {HEAD_LAYER!r} (final dense layer); it has {names}")
    teacher = load_model_teacher(keras_path, int8_path if int8_path.is_file() else None,
                                 FEATURES_LAYER)
    return dataclasses.replace(teacher, source=directory)
