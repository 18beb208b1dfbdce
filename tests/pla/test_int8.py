"""int8 PLA: quantization, the numpy integer reference, and the TFLite models in TFLite and TFLM.

Stated tolerances (also in docs/pla.md):
* float TFLite (TFLite and TFLite Micro) vs the float estimator: logits within 1e-4 (float32 vs
  float64 arithmetic; same clusters);
* int8 numpy reference vs TFLite Micro: bit-exact (same integer math, double-rounding
  requantization);
* int8 numpy reference vs the TFLite interpreter (ai-edge-litert 2.3): features within 1 LSB,
  because that build requantizes per-channel FULLY_CONNECTED with *single* rounding; with the
  single-rounding formula the features are bit-exact (checked below);
* int8 vs float: >= 97 % of classes agree on the synthetic data.
"""

from __future__ import annotations

import numpy as np
import pytest

from pla_tvm.inference import TFLiteRunner
from pla_tvm.pla.quantize import QuantParams, quantize_weights
from pla_tvm.pla.reference import int8_features, int8_logits, int8_predict
from pla_tvm.pla.tflite_export import float_tflite, int8_tflite
from relay_passes.params import reference_forward

N_BEATS = 60  # beats pushed through the interpreters (one invocation each)


def test_quantize_rounds_half_away_from_zero_like_tflite():
    params = QuantParams(scale=0.5, zero_point=3)
    np.testing.assert_array_equal(params.quantize(np.array([0.25, -0.25, 0.75, 100.0, -100.0])),
                                  [4, 2, 5, 127, -128])


def test_calibrated_range_contains_zero_and_data():
    values = np.array([0.5, 2.0, 3.0])
    params = QuantParams.calibrate(values)
    assert params.dequantize(params.quantize(np.array([0.0]))) == 0.0
    np.testing.assert_allclose(params.dequantize(params.quantize(values)), values,
                               atol=params.scale / 2 + 1e-7)


def test_weight_scales_guard_bias_overflow_and_zero_channels():
    weights = np.zeros((1, 4, 2))
    weights[0, :, 0] = 1e-9  # tiny weights, huge bias in units of s_x * s_w
    biases = np.array([[1e3, 0.0]])
    weights_q, scales, biases_q = quantize_weights(weights, biases, input_scale=0.01)
    assert scales[0, 1] == 1.0  # all-zero channel: any positive scale, TFLite rejects 0
    assert np.abs(biases_q.astype(np.int64)).max() <= 2**30 * 1.001  # room for the sums
    np.testing.assert_allclose(biases_q * 0.01 * scales.astype(np.float64), biases, rtol=1e-6)
    assert weights_q.dtype == np.int8


def test_int8_reference_matches_float_estimator(synthetic_pla, synthetic_quantized):
    model, x, *_ = synthetic_pla
    features_q = int8_features(synthetic_quantized, synthetic_quantized.input.quantize(x))
    features = synthetic_quantized.features.dequantize(features_q)
    error = np.abs(features - model.transform(x))
    assert np.median(error) <= 2 * synthetic_quantized.features.scale
    assert np.mean(int8_predict(synthetic_quantized, x) == model.predict(x)) >= 0.97


def test_int8_operator_is_relay_passes_reference(synthetic_quantized):
    """The operator part is relay_passes' specification (same parameters object)."""
    xq = np.random.default_rng(1).integers(-128, 128, size=(7, 140), dtype=np.int8)
    np.testing.assert_array_equal(int8_features(synthetic_quantized, xq),
                                  reference_forward(synthetic_quantized.operator, xq))


@pytest.fixture(scope="module")
def int8_model(synthetic_quantized):
    return int8_tflite(synthetic_quantized)


@pytest.fixture(scope="module")
def beats_q(synthetic_pla, synthetic_quantized):
    return synthetic_quantized.input.quantize(synthetic_pla[1][:N_BEATS])


def run_tflite(model: bytes, x, reference_kernels: bool = True):
    interpreter = "litert-ref" if reference_kernels else "litert"
    return TFLiteRunner(model, "pla.tflite", interpreter).raw_outputs(x)


def run_tflm(model: bytes, x):
    return TFLiteRunner(model, "pla.tflite", "tflm").raw_outputs(x)


def test_int8_tflite_micro_is_bit_exact(synthetic_quantized, int8_model, beats_q):
    np.testing.assert_array_equal(run_tflm(int8_model, beats_q),
                                  int8_logits(synthetic_quantized, beats_q))


def _single_rounding_features(model, xq):
    """Features requantized with TFLite's single-rounding MultiplyByQuantizedMultiplier."""
    op = model.operator
    xs = xq.astype(np.int64) - op.input_zero_point
    mu = op.centroids_q.astype(np.int64)
    cluster = np.argmin((mu * mu).sum(1) - 2 * xs @ mu.T, axis=1)
    acc = op.bias_q[cluster] + np.einsum("ni,nio->no", xs, op.weights_q.astype(np.int64)[cluster])
    multiplier, shift = (m[cluster].astype(np.int64) for m in op.multiplier_shift)
    total_shift = 31 - shift
    scaled = (acc * multiplier + (np.int64(1) << (total_shift - 1))) >> total_shift
    return np.clip(scaled + op.output_zero_point, -128, 127)


def test_int8_tflite_interpreter_within_one_lsb(synthetic_quantized, int8_model, beats_q):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=int8_model,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                              experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    index = {t["name"]: t["index"] for t in interpreter.get_tensor_details()}
    features = []
    for row in beats_q:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], row[None])
        interpreter.invoke()
        features.append(interpreter.get_tensor(index["features"])[0].astype(np.int64))
    features = np.stack(features)
    reference = int8_features(synthetic_quantized, beats_q).astype(np.int64)
    assert np.abs(features - reference).max() <= 1
    np.testing.assert_array_equal(features, _single_rounding_features(synthetic_quantized,
                                                                      beats_q))
    logits = run_tflite(int8_model, beats_q, reference_kernels=False)
    agree = np.argmax(logits, 1) == np.argmax(int8_logits(synthetic_quantized, beats_q), 1)
    assert agree.mean() >= 0.95


def test_float_tflite_matches_estimator_in_tflite_and_tflm(synthetic_pla):
    model, x, *_ = synthetic_pla
    flatbuffer = float_tflite(model)
    expected = model.logits(x[:N_BEATS])
    np.testing.assert_allclose(run_tflite(flatbuffer, x[:N_BEATS], reference_kernels=False),
                               expected, atol=1e-4)
    np.testing.assert_allclose(run_tflm(flatbuffer, x[:N_BEATS]), expected, atol=1e-4)


def test_int8_model_io_and_ops(synthetic_quantized, int8_model):
    import tflite

    graph = tflite.Model.GetRootAsModel(int8_model, 0)
    codes = {graph.OperatorCodes(i).BuiltinCode() for i in range(graph.OperatorCodesLength())}
    op = tflite.BuiltinOperator
    assert codes == {op.CAST, op.FULLY_CONNECTED, op.ARG_MIN, op.RESHAPE, op.GATHER}
    subgraph = graph.Subgraphs(0)
    for tensor in (subgraph.Tensors(subgraph.Inputs(0)), subgraph.Tensors(subgraph.Outputs(0))):
        assert tensor.Type() == tflite.TensorType.INT8
    assert subgraph.Tensors(subgraph.Inputs(0)).Quantization().Scale(0) == pytest.approx(
        synthetic_quantized.input.scale)
