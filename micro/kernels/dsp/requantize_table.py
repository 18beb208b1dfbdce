"""Per-channel requantization constants precomputed at compile time (the DSP library's last stage).

A convolution pass's epilogue (:func:`.requantize.tensorize_epilogue`) calls
``micro_dsp_requantize_channels_q7`` with the kernel's bias, multiplier and shift tensors. For
every channel of every pass that micro-kernel first derives its constants from them: the
rounding division's shift ``e - 1`` and the 64-bit rounding constant's high word ``khi``, after
checking that the channel suits its fast path, 10 instructions per channel, as many as five per
output when a pass has two positions. Those constants depend only on the model, so
:func:`tabulate_requantizations` computes them once, at compile time:

* it finds the kernels whose epilogues all call ``micro_dsp_requantize_channels_q7`` on the
  same three parameters (read nowhere else) with the same zero point, and the calls of the
  Relax ``main`` that pass them constants;
* for each call it builds the table ``[C, 4]`` int32 of ``(bias, mult, e - 1, khi)``
  (:func:`channel_table`; ``e = -shift``, ``khi = (2 zp + 1) << (e - 2)``), provided every
  channel is of the micro-kernel's fast path (``mult >= 0``, ``2 <= e <= 24``), which TFLite's
  per-channel convolutions are in practice;
* the kernel then takes the table in place of the three tensors (one parameter instead of
  three) and its epilogue calls ``micro_dsp_requantize_table_q7``, which loads a channel's
  constants with one ``LDM``; the call passes the table constant.

A kernel any of whose calls has a channel outside the fast path, a non-constant argument or a
different layout is left exactly as it was. It runs on the scheduled module (default schedules
and kernels applied from a tuning database alike), before the graph is extracted; one-kernel
tuning benchmarks measure the epilogue without its table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm
import tvm_ffi
from tvm import ir, relax, s_tir, tirx

from .requantize import REQUANTIZE_CHANNELS_KERNEL

TABLE_KERNEL = "micro_dsp_requantize_table_q7"
#: The fast path's range of ``e = -shift`` (see requantize.c and requantize_table.c).
SHIFT_RANGE = (2, 24)


def channel_table(bias: np.ndarray, mult: np.ndarray, shift: np.ndarray,
                  zero_point: int) -> np.ndarray | None:
    """The constants ``micro_dsp_requantize_table_q7`` reads, or None if a channel is not in
    its fast path.

    Parameters
    ----------
    bias, mult : numpy.ndarray
        ``[C]`` int32 per-channel bias and multiplier.
    shift : numpy.ndarray
        ``[C]`` int8 per-channel shifts (``<= 0``: right shifts).
    zero_point : int
        The output zero point.

    Returns
    -------
    numpy.ndarray or None
        ``[C, 4]`` int32: ``(bias, mult, e - 1, (2 zero_point + 1) << (e - 2))`` per channel,
        ``e = -shift``; None if a multiplier is negative or an ``e`` lies outside
        :data:`SHIFT_RANGE`.
    """
    e = -shift.astype(np.int64)
    if np.any(mult < 0) or np.any(e < SHIFT_RANGE[0]) or np.any(e > SHIFT_RANGE[1]):
        return None
    khi = (2 * int(zero_point) + 1) * (np.int64(1) << (e - 2))
    table = np.stack([bias.astype(np.int64), mult.astype(np.int64), e - 1, khi], axis=1)
    return np.ascontiguousarray(table.astype(np.int32))


@dataclass(frozen=True)
class _Epilogues:
    """What a kernel's epilogue calls share: the parameters (indices in the kernel's
    signature) of the bias, multiplier and shift, their channel count and the zero point."""

    bias: int
    mult: int
    shift: int
    channels: int
    zero_point: int


def _call_name(node) -> str | None:
    """The symbol of a ``call_extern`` expression, else None."""
    if not isinstance(node, ir.expr.Call) or getattr(node.op, "name", "") != "tirx.call_extern":
        return None
    return str(node.args[0].value)


def _epilogue_call(block: s_tir.SBlock):
    """The ``micro_dsp_requantize_channels_q7`` call a tensorized epilogue block is, or None."""
    body = block.body
    if isinstance(body, tirx.Evaluate) and _call_name(body.value) == REQUANTIZE_CHANNELS_KERNEL:
        return body.value
    return None


def _source_parameter(block: s_tir.SBlock, pointer, params: list) -> int | None:
    """The index of the kernel parameter an access pointer of ``block`` reads whole."""
    if not (isinstance(pointer, ir.expr.Call) and pointer.op.name == "tirx.tvm_access_ptr"):
        return None
    data = pointer.args[1]  # tirx.buffer_data(buffer)
    if not (isinstance(data, ir.expr.Call) and data.op.name == "tirx.buffer_data"):
        return None
    for match in block.match_buffers:
        if match.buffer.same_as(data.args[0]):
            source = match.source
            for index, param in enumerate(params):
                if source.source.same_as(param):
                    whole = all(int(r.min) == 0 and int(r.extent) == int(s)
                                for r, s in zip(source.region, param.shape, strict=True))
                    return index if whole else None
    return None


def _analyse(func: tirx.PrimFunc) -> _Epilogues | None:
    """The shared parameters of a kernel's requantization epilogues, or None when it has none,
    they differ, or the parameters are read anywhere else."""
    params = list(func.params)
    found: list[_Epilogues | None] = []
    epilogue_blocks = []

    def visit(block: s_tir.SBlock, visitor) -> None:
        call = _epilogue_call(block)
        if call is not None:
            epilogue_blocks.append(block)
            indices = [_source_parameter(block, call.args[i], params) for i in (2, 3, 4)]
            zero_point = call.args[10]
            if None in indices or not isinstance(zero_point, tirx.IntImm):
                found.append(None)
            else:
                found.append(_Epilogues(*indices, channels=int(call.args[7]),
                                        zero_point=int(zero_point)))
        visitor.default_visit(block)

    tvm_ffi.structural_visit(func.body, [(s_tir.SBlock, visit)])
    if not found or any(f is None or f != found[0] for f in found):
        return None
    shared = found[0]
    if len({shared.bias, shared.mult, shared.shift}) != 3:
        return None
    if _read_elsewhere(func, [params[i] for i in (shared.bias, shared.mult, shared.shift)],
                       epilogue_blocks):
        return None
    return shared


def _read_elsewhere(func: tirx.PrimFunc, buffers: list, blocks: list) -> bool:
    """Whether a block other than ``blocks`` (or a load outside them) touches ``buffers``."""
    touched = []

    def uses(region_buffer) -> bool:
        return any(region_buffer.same_as(b) for b in buffers)

    def visit_block(block: s_tir.SBlock, visitor) -> None:
        if not any(block.same_as(b) for b in blocks):
            regions = [*block.reads, *block.writes, *(m.source for m in block.match_buffers)]
            if any(uses(r.source) for r in regions):
                touched.append(block.name_hint)
            visitor.default_visit(block)

    def visit_load(load: ir.TensorLoad, visitor) -> None:
        if uses(load.source):
            touched.append("load")
        visitor.default_visit(load)

    tvm_ffi.structural_visit(func.body, [(s_tir.SBlock, visit_block),
                                         (ir.TensorLoad, visit_load)])
    return bool(touched)


def _rewrite_kernel(func: tirx.PrimFunc, shared: _Epilogues) -> tirx.PrimFunc:
    """The kernel with the table parameter in place of the three tensors and its epilogues on
    :data:`TABLE_KERNEL`."""
    params = list(func.params)
    old = [params[i] for i in (shared.bias, shared.mult, shared.shift)]
    table = tirx.decl_buffer((shared.channels, 4), "int32", name="requantize_table")

    def is_old(buffer) -> bool:
        return any(buffer.same_as(b) for b in old)

    def mutate_block(block: s_tir.SBlock, mutator) -> s_tir.SBlock:
        call = _epilogue_call(block)
        if call is None:
            return mutator.default_mutate(block)
        args = list(call.args)
        # (symbol, acc, bias, mult, shift, out, positions, channels, acc_step, out_step, zp,
        #  qmin, qmax) -> (symbol, acc, table, out, positions, ..., zp, qmin, qmax)
        new_call = tirx.call_extern("int32", TABLE_KERNEL, args[1], table.access_ptr("r"),
                                    *args[5:])
        whole = [ir.Range.from_min_extent(0, shared.channels), ir.Range.from_min_extent(0, 4)]
        table_region = ir.expr.TensorRegion(table, whole, block.reads[0].ty)
        reads = [r for r in block.reads if not is_old(r.source)] + [table_region]
        matches = [m for m in block.match_buffers if not is_old(m.source.source)]
        return s_tir.SBlock(
            block.iter_vars, reads, block.writes, block.name_hint, tirx.Evaluate(new_call),
            block.init, block.alloc_buffers, matches, block.annotations, block.span,
        )  # fmt: skip

    body = tvm_ffi.structural_mutate(func.body, [(s_tir.SBlock, mutate_block)])
    new_params = [table if index == shared.bias else param for index, param in enumerate(params)
                  if index not in (shared.mult, shared.shift)]
    return tirx.PrimFunc(new_params, body, ret_type=func.ret_type, attrs=func.attrs)


def _constant(expr) -> np.ndarray | None:
    if isinstance(expr, tvm.ir.expr.GenericConst):
        return expr.value.numpy()
    return None


def tabulate_requantizations(mod: tvm.IRModule) -> tvm.IRModule:
    """Give every convolution epilogue it can its per-channel constants as a compile-time table.

    Parameters
    ----------
    mod : tvm.IRModule
        A scheduled module (a Relax ``main`` calling TIR kernels with ``R.call_tir``).

    Returns
    -------
    tvm.IRModule
        The module whose eligible kernels read a table (see the module docstring); the others,
        and the module if none is eligible, unchanged.
    """
    candidates = {}
    for gvar, func in mod.functions.items():
        if isinstance(func, tirx.PrimFunc):
            shared = _analyse(func)
            if shared is not None:
                candidates[gvar.name_hint] = shared
    if not candidates:
        return mod
    tables = _call_tables(mod, candidates)
    chosen = {name: shared for name, shared in candidates.items() if name in tables}
    if not chosen:
        return mod
    new_mod = tvm.IRModule({gv: f for gv, f in mod.functions.items()}, attrs=mod.attrs)
    for name, shared in chosen.items():
        gvar = mod.get_global_var(name)
        new_mod[gvar] = _rewrite_kernel(mod[gvar], shared)

    @relax.expr_functor.mutator
    class _PassTables(relax.PyExprMutator):
        def visit_call_(self, call: relax.Call) -> relax.Expr:
            call = super().visit_call_(call)
            if getattr(call.op, "name", "") != "relax.call_tir":
                return call
            name = call.args[0].name_hint
            if name not in chosen:
                return call
            shared = chosen[name]
            args = list(call.args[1].fields)
            table = _table_for(args, shared)
            new_args = [relax.const(table) if index == shared.bias else arg
                        for index, arg in enumerate(args)
                        if index not in (shared.mult, shared.shift)]
            return relax.call_tir(call.args[0], relax.Tuple(new_args), call.ty_args[0])

    main = mod.get_global_var("main")
    new_mod[main] = _PassTables().visit_expr(mod["main"])
    return new_mod


def _table_for(args: list, shared: _Epilogues) -> np.ndarray | None:
    """The table of one call's constants, or None (not constants, or a channel off the fast
    path)."""
    values = [_constant(args[i]) for i in (shared.bias, shared.mult, shared.shift)]
    if any(v is None for v in values):
        return None
    bias, mult, shift = values
    if not (bias.shape == mult.shape == shift.shape == (shared.channels,)):
        return None
    return channel_table(bias, mult, shift, shared.zero_point)


def _call_tables(mod: tvm.IRModule, candidates: dict[str, _Epilogues]) -> set[str]:
    """The candidate kernels every call of which can pass a table."""
    calls: dict[str, list[bool]] = {}

    @relax.expr_functor.visitor
    class _Calls(relax.PyExprVisitor):
        def visit_call_(self, call: relax.Call) -> None:
            super().visit_call_(call)
            if getattr(call.op, "name", "") == "relax.call_tir":
                name = call.args[0].name_hint
                if name in candidates:
                    ok = _table_for(list(call.args[1].fields), candidates[name]) is not None
                    calls.setdefault(name, []).append(ok)

    _Calls().visit_expr(mod["main"])
    return {name for name, oks in calls.items() if all(oks)}
