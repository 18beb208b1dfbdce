"""The factored (low-rank) int8 operator on micro: both int8 layers on the DSP micro-kernels."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax

import micro
from micro.kernels import dsp
from relay_passes import (
    emit_cluster_gated_linear,
    make_factored_cluster_gated_linear_int8_kernel,
    reference_forward,
)
from tests.relay_passes.test_factored_cluster_gated_linear import factored_params

from .graphs import host_reference, random_inputs, requires_toolchain


def _extern_calls(func: tvm.tirx.PrimFunc, symbol: str) -> int:
    return func.script().count(f'call_extern("int32", "{symbol}"')


def pla_factored_int8(k: int, dim: int, r: int, d: int, seed: int = 0):
    """The factored int8 operator with random parameters as a Relax module, and its params."""
    params = factored_params(np.random.default_rng(seed), k=k, dim=dim, r=r, d=d)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, dim), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(emit_cluster_gated_linear(bb, x, params))
        bb.emit_func_output(out)
    return bb.get(), params


@pytest.mark.parametrize(("r", "relaid_shapes"), [(5, [[3, 5, 140], [3, 16, 5]]),
                                                   (8, [[3, 2, 35, 4, 4], [3, 4, 2, 4, 4]])])
def test_both_factored_layers_are_tensorized(r, relaid_shapes):
    kernel = make_factored_cluster_gated_linear_int8_kernel(1, 140, 3, r, 16, 0, -4, True)
    scheduled, relaid_out = dsp.schedule_int8_dots(kernel)
    calls = (_extern_calls(scheduled, dsp.MICRO_KERNEL)
             + _extern_calls(scheduled, dsp.MICRO_KERNEL_X4))
    assert calls == 3  # centroids, x U_c, h V_c
    assert [index for index, _ in relaid_out] == [3, 7]  # left_q, right_q
    assert [[int(s) for s in scheduled.params[i].shape] for i in (3, 7)] == relaid_shapes


@requires_toolchain
@pytest.mark.parametrize(("k", "dim", "r", "d", "board"),
                         [(3, 140, 5, 128, "mps2-an386"), (2, 30, 4, 6, "mps2-an386"),
                          (4, 61, 3, 7, "mps2-an505")])
def test_factored_firmware_is_bit_exact_with_the_reference(tmp_path, k, dim, r, d, board):
    model, params = pla_factored_int8(k, dim, r, d, seed=k + r)
    inputs = random_inputs(model, 6)
    lowered = dsp.apply_dsp(model, micro.get_board(board))
    kernel = lowered["cluster_gated_linear_factored_int8"]
    assert _extern_calls(kernel, dsp.MICRO_KERNEL) + _extern_calls(kernel, dsp.MICRO_KERNEL_X4) == 3
    firmware = micro.build(lowered, board, tmp_path / "dsp", backend="c")
    got = micro.run(firmware, inputs).outputs
    expected = np.stack([reference_forward(params, x) for x in inputs])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, host_reference(model, inputs))
