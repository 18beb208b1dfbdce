"""Small read-only helpers over Relax IR shared by the passes of this package.

The TFLite frontend binds every operator to a variable, so both passes look through bindings,
compare operator names and read constant scales/zero points of ``R.dequantize`` calls; keeping
those helpers here keeps the two passes consistent.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tvm
from tvm import relax


def op_name(expr: relax.Expr) -> str | None:
    """Operator name of a call to a Relax operator (``"relax.matmul"``), else None."""
    if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
        return expr.op.name
    return None


def constant_array(expr: relax.Expr) -> np.ndarray | None:
    """Value of a Relax tensor constant as a numpy array, else None."""
    if not isinstance(expr, tvm.ir.expr.Constant):
        return None
    value = expr.value  # a runtime Tensor, or a Python scalar for some scalar constants
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def var_bindings(func: relax.Function) -> list[relax.VarBinding]:
    """All variable bindings of ``func``'s body, in order."""
    return [b for block in func.body.blocks for b in block.bindings
            if isinstance(b, relax.VarBinding)]


class Dequantized:
    """The quantized operand of an ``R.dequantize`` call and its constant parameters."""

    def __init__(self, data: relax.Expr, scale: np.ndarray, zero_point: np.ndarray, axis: int):
        self.data = data
        self.scale = scale.reshape(-1).astype(np.float64)
        self.zero_point = zero_point.reshape(-1).astype(np.int64)
        self.axis = axis

    @property
    def per_tensor(self) -> bool:
        """One scale and one zero point for the whole tensor."""
        return self.scale.size == 1 and self.zero_point.size == 1

    @property
    def symmetric(self) -> bool:
        """All zero points are 0."""
        return bool(np.all(self.zero_point == 0))


def as_dequantize(
    expr: relax.Expr, resolve: Callable[[relax.Expr], relax.Expr] = lambda e: e
) -> Dequantized | None:
    """Read ``expr`` as ``R.dequantize(data, scale, zero_point)`` with constant parameters.

    Parameters
    ----------
    expr : tvm.relax.Expr
        The candidate call (after ``resolve``).
    resolve : callable, optional
        Maps a variable to the value bound to it (identity by default).

    Returns
    -------
    Dequantized or None
        None if ``expr`` is not such a call.
    """
    call = resolve(expr)
    if op_name(call) != "relax.dequantize":
        return None
    scale = constant_array(resolve(call.args[1]))
    zero_point = constant_array(resolve(call.args[2]))
    if scale is None or zero_point is None:
        return None
    return Dequantized(call.args[0], scale, zero_point, int(call.attrs.axis))
