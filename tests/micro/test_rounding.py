"""Rounding in firmware (micro_round.c on FPU cores, newlib elsewhere) equals the host's."""

from __future__ import annotations

import numpy as np
import pytest
from tvm import relax

import micro

from .graphs import host_reference, requires_toolchain

# Ties both ways, both signs, the 2**23 boundary where floats become integers, and beyond.
_VALUES = np.array(
    [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, -0.3, 0.3, 3.4999998, -3.5000002, 8388607.5, -8388607.5,
     8388608.0, 8388609.0, 1e10, -1e10, 0.0, -0.0, 126.5, -127.5],
    dtype=np.float32,
)


def _rounding_model() -> relax.expr.Function:
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, _VALUES.size), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.round(x))
        bb.emit_func_output(out)
    return bb.get()


@requires_toolchain
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an385"])
def test_round_half_to_even_matches_the_host_bit_for_bit(tmp_path, board):
    model = _rounding_model()
    inputs = _VALUES[None, None]
    got = micro.run(micro.build(model, board, tmp_path / board), inputs).outputs.reshape(-1)
    expected = host_reference(model, inputs).reshape(-1)
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
    np.testing.assert_array_equal(got, np.round(_VALUES))
