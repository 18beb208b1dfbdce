"""4-bit cluster maps (``weight_bits=4``): quantization, the TFLite files, size, pla.npz."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from pla_tvm.inference import TFLiteRunner
from pla_tvm.pla import costs
from pla_tvm.pla.npz_io import BaselineRef, PLABundle, load_pla, save_pla
from pla_tvm.pla.quantize import quantize_pla
from pla_tvm.pla.reference import int8_logits, int8_predict
from pla_tvm.pla.tflite_export import int8_tflite


@pytest.fixture(scope="module")
def pla4(synthetic_pla):
    """The synthetic model deployed with 4-bit maps: (model, quantized, x), full and factored."""
    model, x, _, features = synthetic_pla
    full = copy.deepcopy(model).set_params(weight_bits=4)
    return full, quantize_pla(full, x, teacher_features=features), x


def test_4_bit_maps_are_symmetric_and_keep_the_classes(pla4, synthetic_pla,
                                                       synthetic_quantized):
    model, quantized, x = pla4
    weights = quantized.operator.weights_q
    assert quantized.operator.weight_bits == 4
    assert weights.min() >= -7 and weights.max() <= 7 and np.abs(weights).max() == 7
    np.testing.assert_array_equal(quantized.operator.centroids_q,
                                  synthetic_quantized.operator.centroids_q)
    agree = int8_predict(quantized, x) == model.predict(x)
    assert agree.mean() >= 0.9


def test_4_bit_int8_file_runs_bit_exact_in_tflite_micro(pla4):
    _, quantized, x = pla4
    xq = quantized.input.quantize(x[:40])
    outputs = TFLiteRunner(int8_tflite(quantized), "pla.tflite", "tflm").raw_outputs(xq)
    np.testing.assert_array_equal(outputs, int8_logits(quantized, xq))


def test_int4_file_is_the_budgeted_size_and_runs_in_litert(pla4):
    model, quantized, x = pla4
    int4 = int8_tflite(quantized, int4=True)
    k, dim, d = quantized.operator.weights_q.shape
    assert len(int8_tflite(quantized)) - len(int4) >= k * dim * d // 2 - 8  # maps packed
    assert len(int4) == costs.int8_tflite_bytes(costs.PLAShape.of(model))
    xq = quantized.input.quantize(x[:40])
    outputs = TFLiteRunner(int4, "pla_int4.tflite", "litert").raw_outputs(xq)
    assert np.abs(outputs.astype(int) - int8_logits(quantized, xq)).max() <= 2


def test_factored_4_bit_round_trips_through_pla_npz(tmp_path, synthetic_pla):
    model, x, _, features = synthetic_pla
    low_rank = copy.deepcopy(model).set_params(rank=4, weight_bits=4)
    low_rank.fit(x, synthetic_pla[2], teacher_features=features)
    quantized = quantize_pla(low_rank, x, teacher_features=features)
    assert quantized.operator.weight_bits == 4 and quantized.operator.left_q.max() <= 7
    path = save_pla(tmp_path / "pla.npz", PLABundle(low_rank, quantized, BaselineRef("", "")))
    loaded = load_pla(path)
    assert loaded.quantized.operator.weight_bits == 4 and loaded.model.weight_bits == 4
    np.testing.assert_array_equal(int8_predict(loaded.quantized, x), int8_predict(quantized, x))
    assert costs.PLAShape.of(loaded.model).weight_bits == 4
