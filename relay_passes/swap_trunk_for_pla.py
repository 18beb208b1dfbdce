"""Swap a classifier's feature trunk for the cluster-gated linear operator (PLA).

A PLA model replaces everything from the model input to the penultimate features (the "trunk",
e.g. a 1-D ResNet) with one cluster-gated affine map, and keeps the classifier head. This pass
does that surgery on an imported Relax module, so the head (dense + softmax, and in a full-int8
model the quantize/dequantize around them) and the input/output signature stay exactly as the
TFLite frontend produced them.

Where it goes: right after ``tvm.relax.frontend.tflite.from_tflite`` and before
:class:`relay_passes.LowerQDQToInteger` (int8 models) and ``LegalizeOps``. It only edits the
function ``main``; the kernel it adds is a private PrimFunc (``cluster_gated_linear`` or
``cluster_gated_linear_int8``) called with ``R.call_tir``.

The boundary (the penultimate tensor) is found structurally: the first operand of the last
``R.matmul``/``R.linear`` in ``main`` that depends on the model input; in a QDQ graph that operand
is ``R.dequantize(q)`` and the boundary is the int8 tensor ``q``. A user can name the boundary
instead: the name is the Relax variable's ``name`` as ``mod.script()`` prints it (the TFLite
frontend numbers them ``lv``, ``lv1``, ...; only inputs keep TFLite tensor names); naming the
dequantized float tensor of an int8 boundary selects that int8 tensor.

Limits: ``main`` must have one data input (the ``num_input`` attribute, else all parameters) of
static shape ``[N, ...]`` whose trailing dimensions hold ``D`` elements, and the boundary must be a
static ``[N, d]`` tensor bound in a dataflow block. Float parameters need a float32 input and
boundary; int8 parameters need an int8 input and an int8 boundary read through a per-tensor
``R.dequantize`` whose scale and zero point equal the parameters' output quantization (relative
tolerance 1e-6 on scales); the input's first per-tensor dequantize, if any, must match the input
quantization the same way. The frontend's ``params`` function attribute (a copy of all imported
weights, unused by compilation) is dropped because it would keep the removed trunk's weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax
from tvm.ir.module import IRModule
from tvm.relax.expr_functor import PyExprMutator, mutator

from ._relax_utils import as_dequantize, op_name, var_bindings
from .cluster_gated_linear import emit_cluster_gated_linear
from .errors import BoundaryNotFoundError, ParameterMismatchError
from .params import (
    ClusterGatedLinearParams,
    QuantizedClusterGatedLinearParams,
    QuantizedFactoredClusterGatedLinearParams,
)

_PARAM_TYPES = (ClusterGatedLinearParams, QuantizedClusterGatedLinearParams,
                QuantizedFactoredClusterGatedLinearParams)

_DENSE_OPS = ("relax.matmul", "relax.linear")
_LAYOUT_OPS = ("relax.reshape", "relax.expand_dims", "relax.squeeze", "relax.permute_dims")
_SCALE_RTOL = 1e-6


@tvm.transform.module_pass(opt_level=0, name="SwapTrunkForPLA")
class SwapTrunkForPLA:
    """Replace the trunk of ``main`` (input -> penultimate tensor) with the PLA operator.

    Parameters
    ----------
    params : ClusterGatedLinearParams, QuantizedClusterGatedLinearParams or \
             QuantizedFactoredClusterGatedLinearParams
        Operator parameters; their type selects the float, the int8 or the factored (low-rank)
        int8 operator.
    boundary : str, optional
        Relax variable name (``Var.name``) of the penultimate tensor in ``main``; by default the
        first operand of the last dense/matmul that depends on the input (see the module
        docstring).

    Raises
    ------
    BoundaryNotFoundError
        No dense head, or no variable with the given name.
    ParameterMismatchError
        The parameters do not fit: ``d`` differs from the boundary's width, ``D`` from the input
        size, dtypes disagree, or int8 scales/zero points differ from the model's.

    Examples
    --------
    .. code-block:: python

        import tvm
        from tvm import relax
        from relay_passes import SwapTrunkForPLA, LowerQDQToInteger

        seq = tvm.transform.Sequential([
            SwapTrunkForPLA(params),            # params: QuantizedClusterGatedLinearParams
            LowerQDQToInteger(),
            relax.transform.LegalizeOps(),
        ])
        with tvm.transform.PassContext(opt_level=3):
            mod = seq(mod)                       # mod from relax.frontend.tflite.from_tflite
    """

    def __init__(
        self,
        params: ClusterGatedLinearParams | QuantizedClusterGatedLinearParams
        | QuantizedFactoredClusterGatedLinearParams,
        boundary: str | None = None,
    ) -> None:
        if not isinstance(params, _PARAM_TYPES):
            raise TypeError(f"params must be ClusterGatedLinearParams, "
                            f"QuantizedClusterGatedLinearParams or "
                            f"QuantizedFactoredClusterGatedLinearParams, got "
                            f"{type(params).__name__}")
        self.params = params
        self.boundary = boundary

    def transform_module(self, mod: IRModule, _ctx: tvm.transform.PassContext) -> IRModule:
        """Swap the trunk of ``main``."""
        if "main" not in [gv.name_hint for gv in mod.get_global_vars()]:
            raise BoundaryNotFoundError("the module has no function 'main' to swap a trunk in")
        func = mod["main"]
        model_input = _model_input(func)
        boundary = _find_boundary(func, self.boundary)
        _check_fit(func, model_input, boundary, self.params)
        return _TrunkSwapper(mod, boundary.var, model_input, self.params).transform()


@dataclass(frozen=True)
class _Boundary:
    """The tensor to replace and, for an int8 tensor, its (scale, zero point)."""

    var: relax.Var
    quantization: tuple[float, int] | None


def _model_input(func: relax.Function) -> relax.Var:
    num_input = int(func.attrs["num_input"]) if func.attrs and "num_input" in func.attrs else len(
        func.params)
    if num_input != 1:
        raise ParameterMismatchError(f"'main' must have exactly one data input, found {num_input} "
                                     f"({[p.name for p in func.params[:num_input]]})")
    return func.params[0]


def _input_dependent(func: relax.Function, model_input: relax.Var) -> set[relax.Var]:
    dependent = {model_input}
    for binding in var_bindings(func):
        if any(v in dependent for v in relax.analysis.free_vars(binding.value)):
            dependent.add(binding.var)
    return dependent


def _dequantize_params(call: relax.Expr) -> tuple[float, int] | None:
    """(scale, zero point) of a per-tensor ``R.dequantize`` call, else None."""
    dequantized = as_dequantize(call)
    if dequantized is None or not dequantized.per_tensor:
        return None
    return float(dequantized.scale[0]), int(dequantized.zero_point[0])


def _through_dequantize(func: relax.Function, var: relax.Var) -> _Boundary:
    """Map a float tensor ``dequantize(q)`` with int8 ``q`` to the int8 boundary ``q``."""
    value = relax.analysis.get_var2val(func).get(var)
    if op_name(value) == "relax.dequantize" and isinstance(value.args[0], relax.Var):
        quantized = value.args[0]
        if quantized.ty.dtype == "int8":
            return _Boundary(quantized, _dequantize_params(value))
    if var.ty.dtype == "int8":
        consumers = [b.value for b in var_bindings(func)
                     if op_name(b.value) == "relax.dequantize" and b.value.args[0].same_as(var)]
        return _Boundary(var, _dequantize_params(consumers[0]) if consumers else None)
    return _Boundary(var, None)


def _find_boundary(func: relax.Function, name: str | None) -> _Boundary:
    if name is not None:
        named = relax.analysis.name_to_binding(func).get(name)
        if not named:
            names = [b.var.name for b in var_bindings(func)]
            raise BoundaryNotFoundError(
                f"boundary {name!r} is not a variable bound in 'main'; bound names are "
                f"{names[:12]}{' ...' if len(names) > 12 else ''}")
        if len(named) > 1:
            raise BoundaryNotFoundError(f"boundary {name!r} names {len(named)} bindings in 'main'")
        return _through_dequantize(func, named[0].var)

    dependent = _input_dependent(func, func.params[0])
    dense = [b for b in var_bindings(func) if op_name(b.value) in _DENSE_OPS]
    if not dense:
        ops = sorted({op_name(b.value) or type(b.value).__name__ for b in var_bindings(func)})
        raise BoundaryNotFoundError(
            f"no dense head in 'main': looked for R.matmul/R.linear whose first operand depends "
            f"on the input; found ops {ops}")
    data = dense[-1].value.args[0]
    if not isinstance(data, relax.Var) or data not in dependent:
        raise BoundaryNotFoundError(
            f"the last dense op in 'main' ({dense[-1].var.name} = "
            f"{op_name(dense[-1].value)}) has a first operand that does not depend on the input")
    return _through_dequantize(func, data)


def _static_shape(var: relax.Var, what: str) -> tuple[int, ...]:
    shape = var.ty.shape
    if shape is None or not all(isinstance(s, tvm.tirx.IntImm) for s in shape):
        raise ParameterMismatchError(f"{what} {var.name!r} must have a static shape, "
                                     f"got {shape}")
    return tuple(int(s) for s in shape)


def _input_quantization(func: relax.Function, model_input: relax.Var) -> tuple[float, int] | None:
    """(scale, zero point) of the first dequantize of the input (through layout ops), if any."""
    aliases = {model_input}
    for binding in var_bindings(func):
        value = binding.value
        if op_name(value) in _LAYOUT_OPS and value.args[0] in aliases:
            aliases.add(binding.var)
        elif op_name(value) == "relax.dequantize" and value.args[0] in aliases:
            return _dequantize_params(value)
    return None


def _check_quantization(what: str, found: tuple[float, int], scale: float, zero_point: int):
    found_scale, found_zero_point = found
    if not np.isclose(found_scale, scale, rtol=_SCALE_RTOL, atol=0) or found_zero_point != (
            zero_point):
        raise ParameterMismatchError(
            f"{what} quantization differs: the model has scale={found_scale!r}, "
            f"zero_point={found_zero_point}; the parameters have scale={scale!r}, "
            f"zero_point={zero_point}")


def _check_fit(func, model_input, boundary: _Boundary, params) -> None:
    quantized = isinstance(params, (QuantizedClusterGatedLinearParams,
                                    QuantizedFactoredClusterGatedLinearParams))
    dtype = "int8" if quantized else "float32"
    input_shape = _static_shape(model_input, "input")
    boundary_shape = _static_shape(boundary.var, "boundary")
    name = boundary.var.name
    if len(boundary_shape) != 2:
        raise ParameterMismatchError(f"boundary {name!r} must be [N, d], got shape "
                                     f"{list(boundary_shape)}")
    if boundary_shape[1] != params.output_size:
        raise ParameterMismatchError(
            f"feature size differs: boundary {name!r} has d={boundary_shape[1]} "
            f"(shape {list(boundary_shape)}); the parameters have d={params.output_size}")
    per_sample = int(np.prod(input_shape[1:]))
    if per_sample != params.input_size or input_shape[0] != boundary_shape[0]:
        raise ParameterMismatchError(
            f"input size differs: input {model_input.name!r} has shape {list(input_shape)} "
            f"({per_sample} values per sample, batch {input_shape[0]}); the parameters have "
            f"D={params.input_size} and the boundary batch is {boundary_shape[0]}")
    for what, var in (("input", model_input), ("boundary", boundary.var)):
        if var.ty.dtype != dtype:
            raise ParameterMismatchError(
                f"{type(params).__name__} needs a {dtype} {what}, but {var.name!r} is "
                f"{var.ty.dtype}")
    if not quantized:
        return
    if boundary.quantization is None:
        raise ParameterMismatchError(
            f"int8 boundary {name!r} is not read through a per-tensor R.dequantize with constant "
            f"scale and zero point, so its quantization cannot be checked")
    _check_quantization(f"output (boundary {name!r})", boundary.quantization,
                        params.output_scale, params.output_zero_point)
    found = _input_quantization(func, model_input)
    if found is not None:
        _check_quantization("input", found, params.input_scale, params.input_zero_point)


@mutator
class _TrunkSwapper(PyExprMutator):
    """Rebind the boundary to ``operator(reshape(input))`` and drop what becomes unused."""

    def __init__(self, mod: IRModule, boundary: relax.Var, model_input: relax.Var, params):
        super().__init__(mod)
        self.mod = mod
        self.boundary = boundary
        self.model_input = model_input
        self.params = params

    def transform(self) -> IRModule:
        gvar = self.mod.get_global_var("main")
        func = self.visit_expr(self.mod["main"])
        func = relax.analysis.remove_all_unused(func)
        if "params" in func.attrs:
            func = func.without_attr("params")
        self.builder_.update_func(gvar, func)
        return self.builder_.get()

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        if not binding.var.same_as(self.boundary):
            super().visit_var_binding_(binding)
            return
        x = self.visit_expr(self.model_input)
        flat_shape = [int(self.boundary.ty.shape[0]), self.params.input_size]
        if [int(s) for s in x.ty.shape] != flat_shape:
            x = self.builder_.emit(relax.op.reshape(x, flat_shape))
        features = emit_cluster_gated_linear(self.builder_, x, self.params)
        self.set_var_remap(binding.var, features)
