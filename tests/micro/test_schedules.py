"""The default schedule (micro.schedules): element-wise chains computed in one loop."""

from __future__ import annotations

from tvm import s_tir
from tvm.script import tirx as T

from micro.schedules import fuse_elementwise
from relay_passes import make_cluster_gated_linear_int8_kernel


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
