"""A depthwise pass and its requantization epilogue as one micro-kernel call (the DSP library's
last stages, after the requantization tables).

Per pass, :func:`.depthwise.schedule_depthwise` leaves two calls: ``micro_dsp_depthwise_q15``
writes the pass's int32 sums to an accumulator buffer, then the epilogue, once its constants
are tabulated (:mod:`.requantize_table`), ``micro_dsp_requantize_table_q7`` reads them back and
stores int8. :func:`fuse_depthwise_epilogues` joins each such pair into one call of
``micro_dsp_depthwise_requantize_q15`` (``c/dsp/depthwise_requantize.c``), which requantizes
each sum in registers as it is made: no accumulator store, load or second loop, and no
accumulator buffer.

The pair is joined only when the depthwise call writes its sums (a one-row kernel: its
``accumulate`` argument is 0), the epilogue reads exactly the region it writes (same buffer,
same region) and both cover the same positions and channels; the joined block reads what both
read but the accumulators and writes what the epilogue writes, through their match buffers. A
kernel with other calls in between, a 2-D depthwise kernel (several rows added up) or an
epilogue without a table keeps its two calls.
"""

from __future__ import annotations

import tvm
import tvm_ffi
from tvm import ir, s_tir, tirx
from tvm.sym import Analyzer

from .depthwise import DEPTHWISE_KERNEL
from .requantize_table import TABLE_KERNEL

FUSED_KERNEL = "micro_dsp_depthwise_requantize_q15"


def fuse_depthwise_epilogues(mod: tvm.IRModule) -> tvm.IRModule:
    """Join every depthwise call and the tabulated epilogue reading its sums into one call.

    Parameters
    ----------
    mod : tvm.IRModule
        A scheduled module whose epilogue constants are tabulated.

    Returns
    -------
    tvm.IRModule
        The module with each qualifying pair as one :data:`FUSED_KERNEL` call (see the module
        docstring).
    """
    functions = {}
    for gvar, func in mod.functions.items():
        if isinstance(func, tirx.PrimFunc):
            callback = _sequence_fuser(_unit_loop_vars(func.body))
            func = func.with_body(tvm_ffi.structural_mutate(func.body,
                                                            [(tirx.SeqStmt, callback)]))
        functions[gvar] = func
    return tvm.IRModule(functions, attrs=mod.attrs)


def _sequence_fuser(units: list):
    """The mutator callback joining the pairs of a sequence (:func:`_fuse_sequence`)."""

    def fuse(seq: tirx.SeqStmt, mutator: tvm_ffi.StructuralMutator) -> tirx.Stmt:
        return _fuse_sequence(seq, mutator, units)

    return fuse


def _unit_loop_vars(body: tirx.Stmt) -> list:
    """The variables of a kernel's loops of one iteration (always 0)."""
    found = []

    def visit(loop: tirx.For, visitor) -> None:
        if isinstance(loop.extent, tirx.IntImm) and int(loop.extent) == 1:
            found.append(loop.loop_var)
        visitor.default_visit(loop)

    tvm_ffi.structural_visit(body, [(tirx.For, visit)])
    return found


def _fuse_sequence(seq: tirx.SeqStmt, mutator: tvm_ffi.StructuralMutator,
                   units: list) -> tirx.Stmt:
    seq = mutator.default_mutate(seq)
    stmts = list(seq.seq) if isinstance(seq, tirx.SeqStmt) else [seq]
    out, index, changed = [], 0, False
    while index < len(stmts):
        fused = (_fused(stmts[index], stmts[index + 1], units) if index + 1 < len(stmts)
                 else None)
        if fused is None:
            out.append(stmts[index])
            index += 1
        else:
            out.append(fused)
            index += 2
            changed = True
    if not changed:
        return seq
    return out[0] if len(out) == 1 else tirx.SeqStmt(out)


def _unwrap(stmt: tirx.Stmt) -> tuple[s_tir.SBlockRealize | None, list[tirx.Var]]:
    """The block realize below unit loops, and those loops' variables."""
    unit_vars = []
    while isinstance(stmt, tirx.For) and int(stmt.extent) == 1:
        unit_vars.append(stmt.loop_var)
        stmt = stmt.body
    return (stmt if isinstance(stmt, s_tir.SBlockRealize) else None), unit_vars


def _call(realize: s_tir.SBlockRealize, symbol: str):
    body = realize.block.body
    if not isinstance(body, tirx.Evaluate):
        return None
    call = body.value
    if (isinstance(call, ir.expr.Call) and getattr(call.op, "name", "") == "tirx.call_extern"
            and str(call.args[0].value) == symbol):
        return call
    return None


def _match_source(block: s_tir.SBlock, pointer):
    """The match buffer an access pointer of ``block`` reads through, or None."""
    if not (isinstance(pointer, ir.expr.Call) and pointer.op.name == "tirx.tvm_access_ptr"):
        return None
    data = pointer.args[1]
    if not (isinstance(data, ir.expr.Call) and data.op.name == "tirx.buffer_data"):
        return None
    return next((m for m in block.match_buffers if m.buffer.same_as(data.args[0])), None)


def _same_region(a: ir.expr.TensorRegion, b: ir.expr.TensorRegion, analyzer: Analyzer) -> bool:
    return a.source.same_as(b.source) and all(
        analyzer.can_prove_equal(x.min, y.min) and analyzer.can_prove_equal(x.extent, y.extent)
        for x, y in zip(a.region, b.region, strict=True))


def _fused(first: tirx.Stmt, second: tirx.Stmt, units: list) -> tirx.Stmt | None:
    """The joined call of a depthwise realize ``first`` and an epilogue realize ``second``, or
    None when they do not qualify; ``units`` are the kernel's loop variables of one iteration."""
    dw_realize, dw_units = _unwrap(first)
    rq_realize, rq_units = _unwrap(second)
    if dw_realize is None or rq_realize is None:
        return None
    dw_call, rq_call = _call(dw_realize, DEPTHWISE_KERNEL), _call(rq_realize, TABLE_KERNEL)
    if dw_call is None or rq_call is None:
        return None
    dw, rq = dw_realize.block, rq_realize.block
    # depthwise: (symbol, window, weight, acc, positions, channels, pairs, stride, channel_step,
    #             weight_step, acc_step, accumulate)
    # epilogue:  (symbol, acc, table, out, positions, channels, acc_step, out_step, zp, qmin,
    #             qmax)
    if not (isinstance(dw_call.args[11], tirx.IntImm) and int(dw_call.args[11]) == 0):
        return None
    same = [(dw_call.args[4], rq_call.args[4]), (dw_call.args[5], rq_call.args[5])]
    if not all(isinstance(a, tirx.IntImm) and isinstance(b, tirx.IntImm) and int(a) == int(b)
               for a, b in same):
        return None
    sums, read_back = _match_source(dw, dw_call.args[3]), _match_source(rq, rq_call.args[1])
    if sums is None or read_back is None:
        return None
    analyzer = Analyzer()
    for var in (*dw_units, *rq_units):
        analyzer.bind(var, tirx.const(0, str(var.ty)))
    dw_values = [analyzer.simplify(v) for v in dw_realize.iter_values]
    rq_values = [analyzer.simplify(v) for v in rq_realize.iter_values]
    # Compare the two regions with both blocks' variables at their values for this pass (the
    # kernel's one-iteration loops at 0).
    compare = Analyzer()
    for var in units:
        if not any(var.same_as(u) for u in (*dw_units, *rq_units)):
            compare.bind(var, tirx.const(0, str(var.ty)))
    for iv, value in zip([*dw.iter_vars, *rq.iter_vars], [*dw_values, *rq_values], strict=True):
        compare.bind(iv.var, compare.simplify(value))
    if not _same_region(sums.source, read_back.source, compare):
        return None
    accumulators = sums.source.source
    call = tirx.call_extern(
        "int32", FUSED_KERNEL, dw_call.args[1], dw_call.args[2], rq_call.args[2],
        rq_call.args[3], dw_call.args[4], dw_call.args[5], dw_call.args[6], dw_call.args[7],
        dw_call.args[8], dw_call.args[9], rq_call.args[7], rq_call.args[8], rq_call.args[9],
        rq_call.args[10])
    iter_vars = [tirx.IterVar(iv.dom, iv.var, tirx.IterVar.DataPar)
                 for iv in (*dw.iter_vars, *rq.iter_vars)]
    reads = [r for r in (*dw.reads, *rq.reads) if not r.source.same_as(accumulators)]
    matches = [m for m in (*dw.match_buffers, *rq.match_buffers)
               if not m.source.source.same_as(accumulators)]
    block = s_tir.SBlock(iter_vars, reads, list(rq.writes), f"{dw.name_hint}_requantized",
                         tirx.Evaluate(call), None, [], matches, {})
    return s_tir.SBlockRealize([*dw_values, *rq_values], True, block)
