"""Parameters, FLOPs and sizes from the operator's shapes."""

from __future__ import annotations

from pla_tvm.pla.costs import (
    PLAShape,
    flops_per_beat,
    int8_tflite_bytes,
    parameter_bytes,
    parameter_counts,
)
from pla_tvm.pla.tflite_export import int8_tflite

PAPER = PLAShape(k=3, D=140, d=144, C=5)


def test_paper_shape_counts():
    counts = parameter_counts(PAPER)
    assert counts == {"centroids": 420, "cluster_weights": 60_480, "cluster_biases": 432,
                      "head": 725, "total": 62_057}
    flops = flops_per_beat(PAPER)
    assert flops["distances"] == 3 * 281 and flops["affine"] == 2 * 140 * 144 + 144
    assert flops["head"] == 2 * 144 * 5 + 5
    assert flops["total"] == flops["distances"] + flops["affine"] + flops["head"]
    assert flops["tflite_macs"] - flops["macs"] == 2 * 140 * 144
    assert parameter_bytes(PAPER) == {"float32": 4 * 62_057,
                                      "int8": 420 + 60_480 + 8 * 432 + 720 + 40}


def test_int8_size_from_shape_is_exact(synthetic_pla, synthetic_quantized):
    shape = PLAShape.of(synthetic_pla[0])
    assert int8_tflite_bytes(shape) == len(int8_tflite(synthetic_quantized))
