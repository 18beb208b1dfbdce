"""The default schedule (micro.schedules): element-wise chains computed in one loop, casts and
copies inlined, per-channel sums reduced row by row."""

from __future__ import annotations

import numpy as np
import tvm
from tvm import relax, s_tir
from tvm.script import tirx as T

import micro
from micro.lowering import lower_to_kernel_calls
from micro.schedules import fuse_elementwise, inline_copies_and_casts, reduce_row_by_row
from relay_passes import make_cluster_gated_linear_int8_kernel

from .graphs import host_reference, random_inputs, requires_toolchain


def _loops(sch: s_tir.Schedule, block: str) -> list:
    return [sch.get(loop) for loop in sch.get_loops(sch.get_sblock(block))]


def test_requantization_chain_is_fused_but_reductions_keep_their_inputs():
    kernel = make_cluster_gated_linear_int8_kernel(1, 140, 3, 16, output_zero_point=-4)
    sch = s_tir.Schedule(kernel)
    assert fuse_elementwise(sch)
    # The high product is computed inside the output loop, one element at a time (lowering then
    # shrinks its buffer to one element); the scores, read by the argmin (a reduction), keep a
    # loop of their own.
    high, out = _loops(sch, "requantize_high"), _loops(sch, "requantize")
    assert len(high) == len(out) and all(a.same_as(b) for a, b in zip(high, out, strict=True))
    assert not _loops(sch, "score")[-1].same_as(_loops(sch, "nearest_cluster")[-1])


@T.prim_func(private=True)
def _plain_loops(x: T.Buffer((8,), "int32"), y: T.Buffer((8,), "int32")):
    for i in range(8):
        y[i] = x[i] + 1


def test_a_kernel_of_plain_loops_is_left_alone():
    assert not fuse_elementwise(s_tir.Schedule(_plain_loops))


def _channel_sum(rows: int, channels: int) -> tvm.IRModule:
    """Global average pooling's sum: int8 ``[1, rows, channels]`` widened and summed over rows."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, rows, channels), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            total = bb.emit(relax.op.sum(relax.op.astype(x, "int32"), axis=[1]))
            out = bb.emit_output(relax.op.astype(relax.op.right_shift(
                total, relax.const(4, "int32")), "int8"))
        bb.emit_func_output(out)
    return bb.get()


def test_sum_over_rows_reads_row_by_row_and_pooling_windows_are_left_alone():
    lowered = lower_to_kernel_calls(_channel_sum(140, 16))
    (name,) = [gv.name_hint for gv, f in lowered.functions.items()
               if isinstance(f, tvm.tirx.PrimFunc) and "sum" in gv.name_hint]
    sch = s_tir.Schedule(lowered[name])
    inline_copies_and_casts(sch)  # the int8 → int32 cast is read inside the sum
    assert reduce_row_by_row(sch)
    block = next(b for b in sch.get_child_blocks(sch.get_sblock("root"))
                 if sch.get(b).name_hint.endswith("_update"))
    loops = sch.get_loops(block)
    assert [int(sch.get(lp).extent) for lp in loops[-2:]] == [140, 16]  # rows, then channels
    window = lower_to_kernel_calls(_channel_sum(4, 16))  # a small window: not worth it
    (small,) = [f for gv, f in window.functions.items()
                if isinstance(f, tvm.tirx.PrimFunc) and "sum" in gv.name_hint]
    assert not reduce_row_by_row(s_tir.Schedule(small))


@requires_toolchain
def test_row_by_row_sum_is_bit_exact_and_cheaper(tmp_path):
    mod = _channel_sum(140, 16)
    inputs = random_inputs(mod, 3)
    result = micro.run(micro.build(mod, "mps2-an386", tmp_path / "rows"), inputs)
    np.testing.assert_array_equal(result.outputs, host_reference(mod, inputs))
    lowered = lower_to_kernel_calls(mod)  # the same kernels, TVM's loop order, cast inlined
    for gvar, func in list(lowered.functions.items()):
        if isinstance(func, tvm.tirx.PrimFunc):
            sch = s_tir.Schedule(func)
            inline_copies_and_casts(sch)
            fuse_elementwise(sch)
            lowered[gvar] = sch.mod["main"].with_attr("tirx.is_scheduled", True)
    plain = micro.run(micro.build(lowered, "mps2-an386", tmp_path / "plain"), inputs)
    np.testing.assert_array_equal(plain.outputs, result.outputs)
    assert result.instructions_per_inference < plain.instructions_per_inference
