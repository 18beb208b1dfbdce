"""What the DSP library's convolution kernels share: registering an intrinsic once, block
iteration variables for descriptions, and computing a whole kernel in passes of output positions.
"""

from __future__ import annotations

from collections.abc import Callable

from tvm import s_tir, tirx
from tvm.s_tir import TensorIntrin


def register_intrinsic(
    name: str, make: Callable[[], tuple[tirx.PrimFunc, tirx.PrimFunc]]
) -> str:
    """Register the tensor intrinsic ``make()`` builds under ``name``, once; return the name.

    Parameters
    ----------
    name : str
        The intrinsic's name (it encodes the shape it was made for).
    make : callable
        Returns the description and the implementation.

    Returns
    -------
    str
        ``name``, for ``Schedule.tensorize``.
    """
    if TensorIntrin.get(name, allow_missing=True) is None:
        TensorIntrin.register(name, *make())
    return name


def iter_var(kind, extent: int, loop):
    """A description block's iteration variable over ``loop``, or 0 for a loop of extent 1.

    A loop of extent 1 stays in a blockized region, but its iteration variable is gone, so a
    description binds only the variables of longer loops (use with ``T.meta_var``).
    """
    return kind(extent, loop) if extent > 1 else 0


def find_annotated_block(sch: s_tir.Schedule, attr: str) -> s_tir.SBlockRV | None:
    """The root's child block annotated with ``attr`` (a kernel's TE stage), if there is one."""
    try:
        root = sch.get_sblock("root")
    except s_tir.ScheduleError:
        return None  # plain loops, written by hand
    for block_rv in sch.get_child_blocks(root):
        if attr in sch.get(block_rv).annotations:
            return block_rv
    return None


def root_block_names(sch: s_tir.Schedule) -> list[str]:
    """Names of the root block's children, in order."""
    return [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]


def output_width_loop(sch: s_tir.Schedule, reduction: s_tir.SBlockRV) -> s_tir.LoopRV | None:
    """The width loop of the kernel's output nest, when that nest is the reduction's NHWC
    domain (the kernel's last block, over the same four extents); else None."""
    extents = [int(iv.dom.extent) for iv in sch.get(reduction).iter_vars[:4]]
    output_loops = sch.get_loops(sch.get_sblock(root_block_names(sch)[-1]))
    if len(output_loops) != 4 or [int(sch.get(lp).extent) for lp in output_loops] != extents:
        return None
    return output_loops[2]


def compute_in_passes(
    sch: s_tir.Schedule, reduction: s_tir.SBlockRV, width: s_tir.LoopRV, pass_size
) -> s_tir.LoopRV:
    """Split the output's width loop into passes and compute every stage at the pass loop.

    Consumers first (the epilogue and the stages feeding it from other inputs, e.g. a residual
    add's rescaling), then the reduction, then the window stage it reads: each stage is then
    computed for the pass's positions only, so no stage keeps a whole tensor.

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of one kernel, changed in place.
    reduction : tvm.s_tir.SBlockRV
        The convolution's reduction block (its only producer is the window stage).
    width : tvm.s_tir.LoopRV
        From :func:`output_width_loop`.
    pass_size : int or ExprRV
        Positions per pass (a sampled value in a tuning rule).

    Returns
    -------
    tvm.s_tir.LoopRV
        The pass loop.
    """
    pass_loop, _ = sch.split(width, [None, pass_size])
    reduction_name = sch.get(reduction).name_hint
    window_name = sch.get(sch.get_producers(reduction)[0]).name_hint
    for name in reversed(root_block_names(sch)[:-1]):
        if name not in (reduction_name, window_name):
            sch.compute_at(sch.get_sblock(name), pass_loop)
    sch.compute_at(reduction, pass_loop)
    sch.compute_at(sch.get_sblock(window_name), pass_loop)
    return pass_loop
