"""The default schedule for kernels nothing else scheduled: element-wise chains in one loop.

TVM's legalized operators and TE kernels come as chains of stages, each a loop writing a whole
intermediate array that the next stage reads back, e.g. a requantization's high multiplication
and its rounding division. On a microcontroller each such array is RAM (or stack) and a store
and a load per element. Computed inside its consumer's loop (``compute_at``), a stage's
intermediate shrinks to one element, which GCC and LLVM keep in a register. Inlining would do
the same but writes the stage's expression out once per use in the consumer, which duplicates
64-bit arithmetic and can blow expressions up exponentially along a chain.
"""

from __future__ import annotations

import tvm
from tvm import s_tir, tirx


def child_block_names(sch: s_tir.Schedule) -> list[str]:
    """Names of the root block's children, in order; none for a kernel of plain loops.

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of one kernel.

    Returns
    -------
    list of str
        Empty for hand-written TIR without blocks, which no schedule primitive applies to.
    """
    try:
        root = sch.get_sblock("root")
    except s_tir.ScheduleError:
        return []
    return [sch.get(b).name_hint for b in sch.get_child_blocks(root)]


def data_parallel(block: tirx.SBlock) -> bool:
    """Whether a block is element-wise: every iteration variable data-parallel (no reduction)."""
    return all(iv.iter_type == tirx.IterVar.DataPar for iv in block.iter_vars)


def _same_domain(producer: tirx.SBlock, consumer: tirx.SBlock) -> bool:
    extents = [[int(iv.dom.extent) for iv in b.iter_vars] for b in (producer, consumer)]
    return extents[0] == extents[1]


def fuse_elementwise(sch: s_tir.Schedule) -> bool:
    """Compute each element-wise stage inside its only consumer's innermost loop.

    Only where the consumer is element-wise over the same domain, so that no element is
    computed twice (a stage read by a reduction or a broadcast stays a loop of its own).

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of one kernel, changed in place.

    Returns
    -------
    bool
        Whether any stage moved.
    """
    moved = False
    for name in reversed(child_block_names(sch)):
        block_rv = sch.get_sblock(name)
        consumers = sch.get_consumers(block_rv)
        if len(consumers) != 1:
            continue
        try:
            block, consumer = sch.get(block_rv), sch.get(consumers[0])
        except ValueError:
            continue  # a consumer inside a tensorized (blockized) region: not a loop to join
        if not (data_parallel(block) and data_parallel(consumer)
                and _same_domain(block, consumer)):
            continue
        try:
            sch.compute_at(block_rv, sch.get_loops(consumers[0])[-1])
        except s_tir.ScheduleError:
            continue  # e.g. the consumer reads this stage at other indices: keep the loop
        moved = True
    return moved


def _is_copy(block: tirx.SBlock) -> bool:
    """Whether a block only copies one element of another buffer (a reshape or a view)."""
    return isinstance(block.body, tirx.BufferStore) and isinstance(
        block.body.value, tvm.ir.TensorLoad
    )


def _is_cast_of_load(block: tirx.SBlock) -> bool:
    value = block.body.value if isinstance(block.body, tirx.BufferStore) else None
    return isinstance(value, tirx.Cast) and isinstance(value.value, tvm.ir.TensorLoad)


def inline_copies_and_casts(sch: s_tir.Schedule) -> bool:
    """Remove whole-tensor intermediates that only copy or widen: a copy at the end of a kernel
    (a reshape of its result) is written by its producer directly (``reverse_compute_inline``),
    and a cast read by a reduction (an int8 tensor widened for a sum) is read inside it
    (``compute_inline``), so that neither leaves an array in RAM.

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of one kernel, changed in place.

    Returns
    -------
    bool
        Whether any stage was inlined.
    """
    moved = False
    for name in child_block_names(sch):
        block_rv = sch.get_sblock(name)
        block = sch.get(block_rv)
        if not data_parallel(block):
            continue
        try:
            if _is_copy(block) and sch.get_producers(block_rv):
                sch.reverse_compute_inline(block_rv)
                moved = True
            elif _is_cast_of_load(block) and all(
                not data_parallel(sch.get(c)) for c in sch.get_consumers(block_rv)
            ):
                sch.compute_inline(block_rv)
                moved = True
        except (s_tir.ScheduleError, ValueError):
            # ValueError: a consumer that a tensorized block replaced (a stale relation).
            continue
    return moved


#: Fewest rows a reduction must cover for :func:`reduce_row_by_row` to reorder it.
_MIN_ROWS = 8


def _reduction_over_rows(block: tirx.SBlock) -> bool:
    """A reduction whose every read ends in a data-parallel variable (a sum or a max over rows
    of a tensor, per channel), so reducing row by row reads memory contiguously."""
    spatial = {iv.var for iv in block.iter_vars if iv.iter_type == tirx.IterVar.DataPar}
    reads = [r for r in block.reads if len(r.region) > 0]
    if data_parallel(block) or block.init is None or not reads:
        return False
    for region in reads:
        last = region.region[-1].min
        if not (isinstance(last, tirx.Var) and last in spatial):
            return False
    return True


def reduce_row_by_row(sch: s_tir.Schedule) -> bool:
    """Move the reduction loops of a per-channel reduction outside its channel loop.

    TVM's legalized sums and poolings over NHWC tensors (global average pooling's ``sum``,
    ``max_pool2d``) iterate the channel outside the reduction, reading the tensor with a
    channel-sized stride and testing for the first iteration inside the loop; reduced row by
    row, with the accumulators zeroed before (``decompose_reduction``), the reads are
    contiguous and the loop body is a load, an add (or max) and a store.

    Parameters
    ----------
    sch : tvm.s_tir.Schedule
        Schedule of one kernel, changed in place.

    Returns
    -------
    bool
        Whether any block was reordered.
    """
    moved = False
    for name in child_block_names(sch):
        block_rv = sch.get_sblock(name)
        block = sch.get(block_rv)
        if not _reduction_over_rows(block):
            continue
        loops = sch.get_loops(block_rv)
        kinds = [iv.iter_type for iv in block.iter_vars]
        if len(loops) != len(kinds) or kinds[-1] == tirx.IterVar.DataPar:
            continue
        first_reduction = kinds.index(tirx.IterVar.CommReduce)
        if any(k == tirx.IterVar.DataPar for k in kinds[first_reduction:]):
            continue
        rows = 1
        for iv in block.iter_vars[first_reduction:]:
            rows *= int(iv.dom.extent)
        if rows < _MIN_ROWS:
            continue  # a small window (pooling): zeroing apart would cost more than it saves
        trial = s_tir.Schedule(sch.mod)
        try:
            trial_loops = trial.get_loops(trial.get_sblock(name))
            reduction = trial_loops[first_reduction:]
            trial.reorder(*reduction, trial_loops[first_reduction - 1])
            trial.decompose_reduction(trial.get_sblock(name), reduction[0])
        except s_tir.ScheduleError:
            continue
        loops = sch.get_loops(block_rv)
        reduction = loops[first_reduction:]
        sch.reorder(*reduction, loops[first_reduction - 1])
        sch.decompose_reduction(block_rv, reduction[0])
        moved = True
    return moved


def schedule_unscheduled(lowered: tvm.IRModule) -> tvm.IRModule:
    """Apply :func:`fuse_elementwise` to every kernel that is not scheduled yet.

    Parameters
    ----------
    lowered : tvm.IRModule
        Lowered module (``main`` a chain of ``R.call_tir``); kernels with the attribute
        ``tirx.is_scheduled`` (tensorized, or applied from a tuning database) are kept.

    Returns
    -------
    tvm.IRModule
        The module with those kernels scheduled (and marked so).
    """
    functions = dict(lowered.functions.items())
    for gvar, func in lowered.functions.items():
        if not isinstance(func, tirx.PrimFunc) or func.attrs.get("tirx.is_scheduled", False):
            continue
        sch = s_tir.Schedule(func)
        changed = inline_copies_and_casts(sch)
        changed = reduce_row_by_row(sch) or changed
        if fuse_elementwise(sch) or changed:
            functions[gvar] = sch.mod["main"].with_attr("tirx.is_scheduled", True)
    return tvm.IRModule(functions, attrs=lowered.attrs)
