"""The int8 PLA model keeps the int8 baseline's own head, so it computes what the swapped graph
computes: head arrays read from the flatbuffer, the numpy reference against TFLite Micro, and the
reference's classes against the PLA-swapped int8 baseline in TVM."""

from __future__ import annotations

import numpy as np
import pytest

from pla_tvm.errors import ModelError
from pla_tvm.inference import TFLiteRunner
from pla_tvm.pla import PLAClassifier
from pla_tvm.pla.npz_io import PLABundle
from pla_tvm.pla.quantize import quantize_pla
from pla_tvm.pla.reference import int8_logits
from pla_tvm.pla.teacher import read_int8_baseline
from pla_tvm.pla.tflite_export import int8_tflite


@pytest.fixture(scope="module")
def tiny_quantized(tiny_teacher, ecg5000):
    """A k=2 PLA model of the tiny teacher, quantized against its int8 model."""
    train = ecg5000.train
    model = PLAClassifier(n_clusters=2, alpha=10.0, head_weights=tiny_teacher.head_weights,
                          head_bias=tiny_teacher.head_bias, random_state=0)
    features = tiny_teacher.features(train.x)
    model.fit(train.x, train.y, teacher_features=features)
    return model, quantize_pla(model, train.x, baseline=tiny_teacher.int8,
                               teacher_features=features)


@pytest.fixture(scope="module")
def test_beats_q(tiny_quantized, ecg5000):
    """All 4,499 test beats (a few seconds): with a self-quantized head only 2 of them differ
    from the swapped graph, none among the first 300."""
    return tiny_quantized[1].input.quantize(ecg5000.test.x)


def test_head_is_read_as_the_tflite_interpreter_sees_it(tiny_baseline_dir, tiny_teacher):
    """The flatbuffer reader against the TFLite interpreter's view of the last FULLY_CONNECTED."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tiny_baseline_dir / "baseline_int8.tflite"))
    interpreter.allocate_tensors()
    ops = [op for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"]
    features, weights, bias = ops[-1]["inputs"]
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    head = tiny_teacher.int8.head
    np.testing.assert_array_equal(head.weights_q, interpreter.get_tensor(weights).T)
    np.testing.assert_array_equal(head.bias_q, interpreter.get_tensor(bias))
    np.testing.assert_array_equal(
        head.weight_scales, details[weights]["quantization_parameters"]["scales"])
    assert (head.logits.scale, head.logits.zero_point) == details[ops[-1]["outputs"][0]][
        "quantization"]
    assert (tiny_teacher.int8.features.scale, tiny_teacher.int8.features.zero_point) == details[
        features]["quantization"]


def test_pla_int8_head_is_the_baseline_head(tiny_teacher, tiny_quantized):
    quantized, baseline = tiny_quantized[1], tiny_teacher.int8
    np.testing.assert_array_equal(quantized.head_weights_q, baseline.head.weights_q)
    np.testing.assert_array_equal(quantized.head_weight_scales, baseline.head.weight_scales)
    np.testing.assert_array_equal(quantized.head_bias_q, baseline.head.bias_q)
    assert quantized.logits == baseline.head.logits
    assert quantized.input == baseline.input and quantized.features == baseline.features


def test_exported_model_carries_the_baseline_head(tiny_quantized, tmp_path):
    """Reading pla_int8.tflite back (its last op is the head) gives the baseline's head again."""
    quantized = tiny_quantized[1]
    path = tmp_path / "pla_int8.tflite"
    path.write_bytes(int8_tflite(quantized))
    head = read_int8_baseline(path).head
    np.testing.assert_array_equal(head.weights_q, quantized.head_weights_q)
    np.testing.assert_array_equal(head.bias_q, quantized.head_bias_q)
    assert head.logits == quantized.logits


def test_reference_is_tflite_micro_bit_exact(tiny_quantized, test_beats_q):
    quantized = tiny_quantized[1]
    tflm = TFLiteRunner(int8_tflite(quantized), "pla_int8.tflite", "tflm").raw_outputs(
        test_beats_q)
    np.testing.assert_array_equal(tflm, int8_logits(quantized, test_beats_q))


def test_reference_classes_are_the_swapped_graph_classes(tiny_baseline_dir, tiny_quantized,
                                                         test_beats_q):
    """argmax of the swapped graph's int8 probabilities == argmax of the reference's int8 logits
    (lowest index on ties in both)."""
    from pla_tvm.graph import HostRunner, prepare_module

    model, quantized = tiny_quantized
    mod = prepare_module(tiny_baseline_dir / "baseline_int8.tflite", PLABundle(model, quantized))
    probabilities = HostRunner(mod).run(test_beats_q)
    np.testing.assert_array_equal(np.argmax(probabilities, axis=1),
                                  np.argmax(int8_logits(quantized, test_beats_q), axis=1))


def test_head_of_wrong_shape_is_refused(tiny_teacher, synthetic_pla):
    model, x, *_ = synthetic_pla  # d=16, the tiny teacher's head reads 12 features
    with pytest.raises(ValueError, match="int8 baseline's head"):
        quantize_pla(model, x, baseline=tiny_teacher.int8)


def _fc_model(path, after_head: str | None = None, activation: str = "NONE"):
    """A one-FULLY_CONNECTED int8 model, optionally followed by RESHAPE or SOFTMAX."""
    from pla_tvm.pla.tflite_export import _Graph

    graph = _Graph()
    quant = {"scale": 0.1, "zero_point": 0}
    x = graph.tensor("x", [1, 4], np.int8, **quant)
    weights = graph.constant("w", np.ones((3, 4), np.int8), scale=0.01, zero_point=0)
    bias = graph.constant("b", np.arange(3, dtype=np.int32))
    logits = graph.tensor("logits", [1, 3], np.int8, **quant)
    graph.operator("FULLY_CONNECTED", [x, weights, bias], [logits], "FullyConnectedOptions",
                   fusedActivationFunction=getattr(graph.fb.ActivationFunctionType, activation))
    output = logits
    if after_head == "RESHAPE":
        shape = graph.constant("shape", np.array([3], np.int32))
        output = graph.tensor("flat", [3], np.int8, **quant)
        graph.operator("RESHAPE", [logits, shape], [output])
    elif after_head == "SOFTMAX":
        output = graph.tensor("probabilities", [1, 3], np.int8, scale=1 / 256, zero_point=-128)
        graph.operator("SOFTMAX", [logits], [output], "SoftmaxOptions", beta=1.0)
    path.write_bytes(graph.serialize([x], [output], "test"))
    return path


def test_head_with_softmax_is_read_per_tensor_scale_repeated(tmp_path):
    baseline = read_int8_baseline(_fc_model(tmp_path / "m.tflite", "SOFTMAX"))
    np.testing.assert_array_equal(baseline.head.weights_q, np.ones((4, 3), np.int8))
    np.testing.assert_array_equal(baseline.head.weight_scales, np.full(3, 0.01, np.float32))
    np.testing.assert_array_equal(baseline.head.bias_q, [0, 1, 2])


@pytest.mark.parametrize("after_head, activation, match", [
    ("RESHAPE", "NONE", "'logits' of the last FULLY_CONNECTED op is not the model's output"),
    (None, "RELU", "has a fused activation"),
])
def test_head_that_does_not_end_the_model_is_refused(tmp_path, after_head, activation, match):
    path = _fc_model(tmp_path / "m.tflite", after_head, activation)
    with pytest.raises(ModelError, match=match) as error:
        read_int8_baseline(path)
    assert str(path) in str(error.value)
