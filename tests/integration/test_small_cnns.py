"""TF → TFLite → Relax → firmware → QEMU on three small int8 CNNs, bit for bit against TFLite
Micro's interpreter on the same random int8 inputs.

The models end in a dense layer's int8 logits, without softmax (this project computes softmax in
float, TFLite in int8, so a softmax output could legitimately differ by 1 LSB); global average
pooling is TFLite's int8 MEAN, which the integer lowering reproduces exactly, so every output is
compared with ``assert_array_equal``.
"""

from __future__ import annotations

import numpy as np
import pytest

from pla_tvm.bench.small_cnns import compare_with_tflm, make_small_cnn, random_int8_beats
from tests.micro.graphs import requires_toolchain

INPUTS = 20


@requires_toolchain
@pytest.mark.parametrize("fixture", ["plain_cnn", "depthwise_cnn", "separable_cnn"])
def test_firmware_is_bit_exact_with_tflite_micro(fixture, request, tmp_path):
    cnn = request.getfixturevalue(fixture)
    comparison = compare_with_tflm(cnn, tmp_path, random_int8_beats(INPUTS, seed=7))
    np.testing.assert_array_equal(comparison.firmware_outputs, comparison.tflm_outputs)
    assert comparison.inputs_equal == INPUTS
    # The logits are not constant: the comparison would otherwise prove little.
    assert len(np.unique(comparison.tflm_outputs)) > 10
    assert comparison.run.counting == "plugin" and comparison.run.instructions_per_inference > 0


def test_macs_are_counted_per_layer_kind(plain_cnn, depthwise_cnn, separable_cnn):
    conv_16x5 = 140 * 16 * 5 * 1
    dense = 32 * 5
    assert plain_cnn.macs == conv_16x5 + 70 * 32 * 3 * 16 + dense
    depthwise_then_1x1 = 140 * 16 * 3 + 140 * 32 * 16
    assert depthwise_cnn.macs == conv_16x5 + depthwise_then_1x1 + dense
    assert separable_cnn.macs == depthwise_cnn.macs


def test_unknown_model_name_is_refused():
    expected = r"one of \('plain', 'depthwise', 'separable'\), got 'vgg'"
    with pytest.raises(ValueError, match=expected):
        make_small_cnn("vgg")
