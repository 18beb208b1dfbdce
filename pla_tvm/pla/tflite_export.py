"""PLA as TFLite flatbuffers (float32 and int8) that TFLite and TFLite Micro both run.

The models are written directly with TFLite's flatbuffer schema rather than produced by the
TensorFlow converter, because the int8 model must carry exactly the quantization parameters of
:class:`~pla_tvm.pla.quantize.QuantizedPLA` (the converter calibrates its own scales) and an exact
integer nearest-centroid selection (an int8 op would requantize the scores first). Both models use
only builtin ops that TFLite Micro implements, in one topology::

    scores  = FULLY_CONNECTED(x, -2 mu, ||mu||^2)         [1, k]   float32
    cluster = ARG_MIN(scores)                             [1]      int32
    all     = FULLY_CONNECTED(x, W [k*d, D], b [k*d])     [1, k*d] every cluster's map
    feat    = GATHER(RESHAPE(all, [k, d]), cluster)       [1, d]
    logits  = FULLY_CONNECTED(h, head [C, d], bias [C])   [1, C]

In the int8 model ``x`` is int8; the score branch first CASTs it to float32 (the integer values,
not dequantized) and uses the integer centroids, so every score is an integer below 2**24 and
float32 computes it exactly -- the same argmin as the int32 reference. The map branch is one int8
FULLY_CONNECTED with per-output-channel scales over all ``k*d`` channels, which is TFLite's own
per-channel requantization of each cluster's channels: bit-exact with the reference at ``k`` times
the multiply-accumulates of the gated operator (the TVM operator computes only the chosen cluster).
A low-rank model is exported factored: the map branch becomes two such stages, ::

    all_h   = FULLY_CONNECTED(x, U [k*r, D], b_h [k*r])   [1, k*r] every cluster's x U_c
    h       = GATHER(RESHAPE(all_h, [k, r]), cluster)     [1, r]   (int8 intermediate)
    all     = FULLY_CONNECTED(h, V [k*d, r], b [k*d])     [1, k*d] h V_j for every j
    feat    = GATHER(RESHAPE(all, [k, d]), cluster)       [1, d]

(the second one applies the chosen cluster's ``h`` to every cluster's ``V_j`` and keeps
``j = c``), each with TFLite's per-channel requantization, bit-exact with the factored reference.
The outputs are the logits (no softmax), int8 in the int8 model. The int8 head is
:class:`~pla_tvm.pla.quantize.QuantizedPLA`'s -- the baseline int8 model's own FULLY_CONNECTED
when PLA imitates one (weights, bias and logit quantization copied; per-class scales, equal ones
for a per-tensor baseline head, which TFLite requantizes identically).

A model with 4-bit maps (``weight_bits=4``) has two files. :func:`int8_tflite` stores the 4-bit
values in int8 tensors: the same integers, so TFLite and TFLite Micro run it bit-exact with the
reference, at the int8 size. ``int8_tflite(model, int4=True)`` stores the maps as TFLite INT4
tensors (two values a byte, low nibble first, over the flattened ``[k*d, D]`` rows): the size the
4-bit model deploys at. LiteRT's default kernels run it bit-exact; its reference kernels
(``litert-ref``) requantize 4-bit FULLY_CONNECTED differently (up to 2 LSB measured) and the
installed TFLite Micro refuses 4-bit FULLY_CONNECTED weights with int8 inputs (docs/pla.md).
"""

from __future__ import annotations

import numpy as np

from pla_tvm.pla.estimator import PLAClassifier
from pla_tvm.pla.quantize import QuantizedPLA
from relay_passes.params import QuantizedFactoredClusterGatedLinearParams, pack_int4


def _schema():
    """TFLite's generated flatbuffer schema (object API), imported on first use: it loads TF."""
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


_TYPES = {np.dtype(np.float32): "FLOAT32", np.dtype(np.int8): "INT8",
          np.dtype(np.int32): "INT32"}


class _Graph:
    """A single-subgraph TFLite model under construction."""

    def __init__(self) -> None:
        self.fb = _schema()
        self.buffers = [self.fb.BufferT()]  # buffer 0: the empty buffer of activations
        self.tensors: list = []
        self.operators: list = []
        self.opcodes: dict[int, int] = {}

    def _quantization(self, scales, zero_points, axis: int = 0):
        params = self.fb.QuantizationParametersT()
        params.scale = [float(s) for s in np.atleast_1d(scales)]
        params.zeroPoint = [int(z) for z in np.atleast_1d(zero_points)]
        params.quantizedDimension = axis
        return params

    def tensor(self, name: str, shape, dtype, *, data: np.ndarray | None = None,
               scale=None, zero_point=None, int4: bool = False) -> int:
        """Add a tensor (a constant when ``data`` is given); returns its index. ``int4``: an
        INT4 constant, ``data`` packed two values a byte (:func:`~relay_passes.pack_int4` of the
        flattened values)."""
        tensor = self.fb.TensorT()
        tensor.name = name
        tensor.shape = np.asarray(shape, dtype=np.int32)
        tensor.type = getattr(self.fb.TensorType, "INT4" if int4 else _TYPES[np.dtype(dtype)])
        if scale is not None:
            tensor.quantization = self._quantization(scale, zero_point)
        if data is not None:
            buffer = self.fb.BufferT()
            raw = (pack_int4(np.ravel(data)) if int4
                   else np.ascontiguousarray(data, dtype=dtype))
            buffer.data = np.frombuffer(raw.tobytes(), dtype=np.uint8)
            self.buffers.append(buffer)
            tensor.buffer = len(self.buffers) - 1
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def constant(self, name: str, data: np.ndarray, **quantization) -> int:
        """Add a constant tensor holding ``data``."""
        return self.tensor(name, data.shape, data.dtype, data=data, **quantization)

    def operator(self, op: str, inputs: list[int], outputs: list[int],
                 options: str | None = None, **fields) -> None:
        """Add a builtin operator with its options table."""
        code = getattr(self.fb.BuiltinOperator, op)
        if code not in self.opcodes:
            self.opcodes[code] = len(self.opcodes)
        operator = self.fb.OperatorT()
        operator.opcodeIndex = self.opcodes[code]
        operator.inputs = np.asarray(inputs, dtype=np.int32)
        operator.outputs = np.asarray(outputs, dtype=np.int32)
        if options:
            table = getattr(self.fb, f"{options}T")()
            for key, value in fields.items():
                setattr(table, key, value)
            operator.builtinOptionsType = getattr(self.fb.BuiltinOptions, options)
            operator.builtinOptions = table
        self.operators.append(operator)

    def fully_connected(self, x: int, weights: int, bias: int, out: int) -> None:
        """FULLY_CONNECTED without fused activation, output [batch, units]."""
        self.operator("FULLY_CONNECTED", [x, weights, bias], [out], "FullyConnectedOptions",
                      fusedActivationFunction=self.fb.ActivationFunctionType.NONE)

    def serialize(self, inputs: list[int], outputs: list[int], description: str) -> bytes:
        """The finished model as flatbuffer bytes."""
        import flatbuffers

        subgraph = self.fb.SubGraphT()
        subgraph.tensors, subgraph.operators = self.tensors, self.operators
        subgraph.inputs = np.asarray(inputs, dtype=np.int32)
        subgraph.outputs = np.asarray(outputs, dtype=np.int32)
        subgraph.name = "main"
        model = self.fb.ModelT()
        model.version = 3
        model.description = description
        model.subgraphs, model.buffers = [subgraph], self.buffers
        model.operatorCodes = []
        for code in self.opcodes:  # dicts keep insertion order = opcode index order
            opcode = self.fb.OperatorCodeT()
            opcode.builtinCode = code
            opcode.deprecatedBuiltinCode = min(code, 127)
            opcode.version = 1
            model.operatorCodes.append(opcode)
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _select_cluster(graph: _Graph, x_scores: int, centroids: np.ndarray,
                    offsets: np.ndarray) -> int:
    """scores = offsets - 2 x . mu (float32); returns the int32 [1] ARG_MIN tensor."""
    k = centroids.shape[0]
    weights = graph.constant("score_weights", (-2.0 * centroids).astype(np.float32))
    bias = graph.constant("score_offsets", offsets.astype(np.float32))
    scores = graph.tensor("scores", [1, k], np.float32)
    graph.fully_connected(x_scores, weights, bias, scores)
    axis = graph.constant("argmin_axis", np.array([1], dtype=np.int32))
    cluster = graph.tensor("cluster", [1], np.int32)
    graph.operator("ARG_MIN", [scores, axis], [cluster], "ArgMinOptions",
                   outputType=graph.fb.TensorType.INT32)
    return cluster


def _gather_cluster(graph: _Graph, all_maps: int, cluster: int, k: int, d: int, dtype,
                    name: str = "features", prefix: str = "cluster_map", **quantization) -> int:
    """RESHAPE [1, k*d] -> [k, d] and GATHER row ``cluster``; returns the [1, d] tensor."""
    shape = graph.constant(f"{prefix}_shape", np.array([k, d], dtype=np.int32))
    rows = graph.tensor(f"{prefix}s", [k, d], dtype, **quantization)
    graph.operator("RESHAPE", [all_maps, shape], [rows], "ReshapeOptions", newShape=[k, d])
    features = graph.tensor(name, [1, d], dtype, **quantization)
    graph.operator("GATHER", [rows, cluster], [features], "GatherOptions", axis=0, batchDims=0)
    return features


def _rows(weights: np.ndarray) -> np.ndarray:
    """``[k, n, m]`` maps as FULLY_CONNECTED rows ``[k*m, n]`` (cluster-major)."""
    k, n, m = weights.shape
    return np.ascontiguousarray(weights.transpose(0, 2, 1).reshape(k * m, n))


def float_tflite(model: PLAClassifier) -> bytes:
    """The float32 PLA model (input float32 ``[1, D]``, output float32 logits ``[1, C]``).

    Parameters
    ----------
    model : PLAClassifier
        Fitted float model.

    Returns
    -------
    bytes
        The ``.tflite`` flatbuffer.
    """
    centroids = model.centroids_.astype(np.float32)
    k, dim = centroids.shape
    d, n_classes = model.head_weights_.shape
    graph = _Graph()
    x = graph.tensor("beat", [1, dim], np.float32)
    cluster = _select_cluster(graph, x, centroids, np.einsum("jd,jd->j", centroids, centroids))
    left = getattr(model, "coef_left_", None)
    if left is None:
        maps_in, map_weights = x, model.coef_
    else:  # factored: h = GATHER(x U), then h V for every cluster
        r = left.shape[2]
        left_rows = graph.constant("cluster_left_weights", _rows(left).astype(np.float32))
        zeros = graph.constant("cluster_left_biases", np.zeros(k * r, np.float32))
        all_hidden = graph.tensor("all_cluster_hidden", [1, k * r], np.float32)
        graph.fully_connected(x, left_rows, zeros, all_hidden)
        maps_in = _gather_cluster(graph, all_hidden, cluster, k, r, np.float32, name="hidden",
                                  prefix="cluster_hidden")
        map_weights = model.coef_right_
    maps = graph.constant("cluster_weights", _rows(map_weights).astype(np.float32))
    biases = graph.constant("cluster_biases", model.intercept_.reshape(-1).astype(np.float32))
    all_maps = graph.tensor("all_cluster_maps", [1, k * d], np.float32)
    graph.fully_connected(maps_in, maps, biases, all_maps)
    features = _gather_cluster(graph, all_maps, cluster, k, d, np.float32)
    head = graph.constant("head_weights", model.head_weights_.T.astype(np.float32))
    head_bias = graph.constant("head_bias", model.head_bias_.astype(np.float32))
    logits = graph.tensor("logits", [1, n_classes], np.float32)
    graph.fully_connected(features, head, head_bias, logits)
    return graph.serialize([x], [logits], f"PLA float32, k={k}, d={d}")


def int8_tflite(model: QuantizedPLA, int4: bool = False) -> bytes:
    """The int8 PLA model (input int8 ``[1, D]``, output int8 logits ``[1, C]``).

    Parameters
    ----------
    model : QuantizedPLA
        The int8 model; the flatbuffer carries exactly its integers and scales.
    int4 : bool
        For 4-bit maps (``weight_bits=4``): store them as INT4 tensors (see the module
        docstring). Ignored for 8-bit maps.

    Returns
    -------
    bytes
        The ``.tflite`` flatbuffer.
    """
    op = model.operator
    k, dim, d = op.num_clusters, op.input_size, op.output_size
    n_classes = model.head_bias_q.size
    int4 = int4 and op.weight_bits == 4
    graph = _Graph()
    x = graph.tensor("beat", [1, dim], np.int8, scale=op.input_scale,
                     zero_point=op.input_zero_point)
    x_float = graph.tensor("beat_integers", [1, dim], np.float32)
    graph.operator("CAST", [x], [x_float])
    cluster = _select_cluster(graph, x_float, op.centroids_q.astype(np.float32),
                              op.score_offsets.astype(np.float32))
    if isinstance(op, QuantizedFactoredClusterGatedLinearParams):
        r = op.rank
        hidden_quant = {"scale": op.hidden_scale, "zero_point": op.hidden_zero_point}
        left = graph.constant("cluster_left_weights", _rows(op.left_q),
                              scale=op.left_scales.reshape(-1),
                              zero_point=np.zeros(k * r, dtype=np.int64), int4=int4)
        left_bias = graph.constant("cluster_left_biases", op.left_bias_q.reshape(-1))
        all_hidden = graph.tensor("all_cluster_hidden", [1, k * r], np.int8, **hidden_quant)
        graph.fully_connected(x, left, left_bias, all_hidden)
        maps_in = _gather_cluster(graph, all_hidden, cluster, k, r, np.int8, name="hidden",
                                  prefix="cluster_hidden", **hidden_quant)
        map_weights, channel_scales = op.right_q, op.right_scales.reshape(-1)
    else:
        maps_in, map_weights, channel_scales = x, op.weights_q, op.weight_scales.reshape(-1)
    maps = graph.constant("cluster_weights", _rows(map_weights), scale=channel_scales,
                          zero_point=np.zeros(k * d, dtype=np.int64), int4=int4)
    # No quantization parameters on the int32 bias: the FULLY_CONNECTED kernels of TFLite and
    # TFLite Micro add it as is and never read them, and k*d scales + int64 zero points would
    # cost 12 bytes a channel (4.6 KB at k=3, d=128, the difference between 64 KB and 69 KB).
    biases = graph.constant("cluster_biases", op.bias_q.reshape(-1))
    feature_quant = {"scale": op.output_scale, "zero_point": op.output_zero_point}
    all_maps = graph.tensor("all_cluster_maps", [1, k * d], np.int8, **feature_quant)
    graph.fully_connected(maps_in, maps, biases, all_maps)
    features = _gather_cluster(graph, all_maps, cluster, k, d, np.int8, **feature_quant)
    head = graph.constant("head_weights", np.ascontiguousarray(model.head_weights_q.T),
                          scale=model.head_weight_scales, zero_point=np.zeros(n_classes, np.int64))
    head_bias = graph.constant(
        "head_bias", model.head_bias_q,
        scale=np.float64(op.output_scale) * model.head_weight_scales.astype(np.float64),
        zero_point=np.zeros(n_classes, np.int64))
    logits = graph.tensor("logits", [1, n_classes], np.int8, scale=model.logits.scale,
                          zero_point=model.logits.zero_point)
    graph.fully_connected(features, head, head_bias, logits)
    width = "int8, 4-bit maps" if op.weight_bits == 4 else "int8"
    return graph.serialize([x], [logits], f"PLA {width}, k={k}, d={d}")
