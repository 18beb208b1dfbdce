"""What every kernel library does to a lowered module once its schedules changed a constant's
layout: swap the scheduled kernels in and re-lay out the Relax constants they read."""

from __future__ import annotations

from collections.abc import Callable

import tvm
from tvm import relax, tirx

from ..errors import BuildError

#: A parameter whose layout a schedule changed: its index and the map to its new layout.
Relayout = tuple[int, tirx.IndexMap]


def rewrite_calls(
    mod: tvm.IRModule, scheduled: dict[str, tuple[tirx.PrimFunc, list[Relayout]]]
) -> tvm.IRModule:
    """Swap in the scheduled kernels and re-lay out the constants whose layout they changed.

    Parameters
    ----------
    mod : tvm.IRModule
        A lowered module (a chain of ``R.call_tir``).
    scheduled : dict of str to (tvm.tirx.PrimFunc, list of Relayout)
        Per kernel name, its new PrimFunc and the parameters whose layout it changed.

    Returns
    -------
    tvm.IRModule
        The module with the new kernels and the constants they read re-laid out.

    Raises
    ------
    BuildError
        If a re-laid-out parameter is not passed a constant.
    """
    new_mod = tvm.IRModule({gv: f for gv, f in mod.functions.items()}, attrs=mod.attrs)
    for name, (func, _) in scheduled.items():
        new_mod[mod.get_global_var(name)] = func

    @relax.expr_functor.mutator
    class _Relayout(relax.PyExprMutator):
        def visit_call_(self, call: relax.Call) -> relax.Expr:
            call = super().visit_call_(call)
            if getattr(call.op, "name", "") != "relax.call_tir":
                return call
            entry = scheduled.get(call.args[0].name_hint)
            if entry is None:
                return call
            args = list(call.args[1].fields)
            for index, index_map in entry[1]:
                if not isinstance(args[index], tvm.ir.expr.GenericConst):
                    raise BuildError(
                        f"{call.args[0].name_hint}: argument {index} must be a constant to change"
                        " its layout for a micro-kernel"
                    )
                args[index] = relax.const(index_map.map_tensor(args[index].value))
            return relax.call_tir(call.args[0], relax.Tuple(args), call.ty_args[0])

    main_gvar = mod.get_global_var("main")
    new_mod[main_gvar] = _Relayout().visit_expr(mod["main"])
    return new_mod


def schedule_unscheduled_kernels(
    lowered: tvm.IRModule,
    schedule: Callable[[tirx.PrimFunc], tuple[tirx.PrimFunc, list[Relayout]] | None],
    *,
    mark_scheduled: bool,
) -> tvm.IRModule:
    """Apply a library's ``schedule`` to every kernel not scheduled yet, then :func:`rewrite_calls`.

    Parameters
    ----------
    lowered : tvm.IRModule
        A lowered module; kernels with ``tirx.is_scheduled`` are left as they are.
    schedule : callable
        A kernel → its new PrimFunc and re-laid-out parameters, or None to leave it.
    mark_scheduled : bool
        Mark the new kernels ``tirx.is_scheduled`` (their final schedule, not a tuning
        preparation).

    Returns
    -------
    tvm.IRModule
        The module with the new kernels and re-laid-out constants.
    """
    scheduled: dict[str, tuple[tirx.PrimFunc, list[Relayout]]] = {}
    for gvar, func in lowered.functions.items():
        if not isinstance(func, tirx.PrimFunc) or func.attrs.get("tirx.is_scheduled", False):
            continue
        result = schedule(func)
        if result is not None:
            new, relaid_out = result
            if mark_scheduled:
                new = new.with_attr("tirx.is_scheduled", True)
            scheduled[gvar.name_hint] = (new, relaid_out)
    return rewrite_calls(lowered, scheduled) if scheduled else lowered
