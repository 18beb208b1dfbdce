"""The model as a list of kernel calls on named tensors.

After :func:`micro.lowering.lower_to_kernel_calls`, Relax ``main`` is a chain of ``R.call_tir``.
This module reads that chain into plain Python data (tensors with static shapes and dtypes,
constants as NumPy arrays, steps naming a kernel and its argument tensors) so that memory
planning and C generation never touch TVM objects. Anything outside that subset is refused here,
with the offending construct named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax

from .errors import UnsupportedModelError

INPUT = "input"
OUTPUT = "output"


@dataclass(frozen=True)
class TensorInfo:
    """Shape and dtype of one tensor.

    Attributes
    ----------
    name : str
        Unique C identifier of the tensor inside the model.
    shape : tuple of int
        Static shape.
    dtype : str
        NumPy dtype name, e.g. ``"float32"``.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def nbytes(self) -> int:
        """Size in bytes."""
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class Step:
    """One kernel call: ``kernel(*inputs, *outputs)``.

    Attributes
    ----------
    kernel : str
        Name of the PrimFunc in the lowered module.
    inputs, outputs : tuple of str
        Tensor names, in the kernel's parameter order.
    """

    kernel: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass
class Graph:
    """A lowered model: the kernel calls and every tensor they touch.

    Attributes
    ----------
    input, output : TensorInfo
        The model's single input and output (named :data:`INPUT` and :data:`OUTPUT`).
    constants : dict of str to numpy.ndarray
        Weights and other constants, by tensor name.
    intermediates : dict of str to TensorInfo
        Kernel outputs other than the model output.
    steps : list of Step
        Kernel calls in execution order.
    """

    input: TensorInfo
    output: TensorInfo
    constants: dict[str, np.ndarray] = field(default_factory=dict)
    intermediates: dict[str, TensorInfo] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)

    @property
    def kernels(self) -> list[str]:
        """Names of the kernels used, in first-call order, without repeats."""
        return list(dict.fromkeys(step.kernel for step in self.steps))


def _tensor_type(ty, what: str) -> tuple[tuple[int, ...], str]:
    if not isinstance(ty, relax.TensorType) or ty.shape is None:
        raise UnsupportedModelError(f"{what} must be a tensor with a known shape, got {ty}")
    dims = []
    for dim in getattr(ty.shape, "values", ()):
        if not isinstance(dim, tvm.tirx.IntImm):
            raise UnsupportedModelError(f"{what} has a dynamic shape {ty}; only static shapes work")
        dims.append(int(dim.value))
    return tuple(dims), str(ty.dtype)


class _Names:
    """Maps Relax variables to tensor names (Relax names need not be unique or valid C)."""

    def __init__(self) -> None:
        self._vars: list[tuple[relax.Var, object]] = []
        self._used: set[str] = {INPUT, OUTPUT}

    def fresh(self, hint: str) -> str:
        base = re.sub(r"\W", "_", hint) or "t"
        name, i = base, 1
        while name in self._used:
            name, i = f"{base}_{i}", i + 1
        self._used.add(name)
        return name

    def bind(self, var: relax.Var, value: object) -> None:
        self._vars.append((var, value))

    def lookup(self, var: relax.Var) -> object:
        for known, value in self._vars:
            if known.same_as(var):
                return value
        raise UnsupportedModelError(f"variable {var.name} is used before it is defined")


def _argument(expr, names: _Names, graph: Graph) -> str:
    if isinstance(expr, tvm.ir.expr.GenericConst):
        name = names.fresh("const")
        graph.constants[name] = expr.value.numpy()
        return name
    if isinstance(expr, relax.Var):
        value = names.lookup(expr)
        if isinstance(value, str):
            return value
        raise UnsupportedModelError(f"{expr.name} is a tuple; kernels take tensors only")
    raise UnsupportedModelError(f"unsupported kernel argument {type(expr).__name__}: {expr}")


def _call_tir(binding, names: _Names, graph: Graph) -> None:
    call = binding.value
    if len(call.args) > 2:
        raise UnsupportedModelError(
            f"{binding.var.name}: call_tir with symbolic TIR arguments needs dynamic shapes"
        )
    kernel = call.args[0].name_hint
    inputs = tuple(_argument(arg, names, graph) for arg in call.args[1].fields)
    outputs = []
    types = [t for ty in call.ty_args for t in (ty.fields if hasattr(ty, "fields") else [ty])]
    for ty in types:
        shape, dtype = _tensor_type(ty, f"output of {kernel}")
        name = names.fresh(binding.var.name)
        graph.intermediates[name] = TensorInfo(name, shape, dtype)
        outputs.append(name)
    names.bind(binding.var, outputs[0] if len(outputs) == 1 else tuple(outputs))
    graph.steps.append(Step(kernel, inputs, tuple(outputs)))


def _binding(binding, names: _Names, graph: Graph) -> None:
    value = binding.value
    if isinstance(value, tvm.ir.Call) and getattr(value.op, "name", "") == "relax.call_tir":
        _call_tir(binding, names, graph)
    elif isinstance(value, relax.TupleGetItem):
        fields = names.lookup(value.tuple_value)
        if not isinstance(fields, tuple):
            raise UnsupportedModelError(f"{binding.var.name} indexes a tensor as a tuple")
        names.bind(binding.var, fields[value.index])
    elif isinstance(value, relax.Var):
        names.bind(binding.var, names.lookup(value))
    elif isinstance(value, tvm.ir.expr.GenericConst):
        names.bind(binding.var, _argument(value, names, graph))
    else:
        op = getattr(value, "op", None)
        what = getattr(op, "name", None) or getattr(op, "name_hint", None) or type(value).__name__
        raise UnsupportedModelError(
            f"{binding.var.name} = {what}: only R.call_tir is supported after legalization"
        )


def _rename(graph: Graph, old: str, new: str) -> None:
    graph.steps = [
        Step(
            s.kernel,
            tuple(new if t == old else t for t in s.inputs),
            tuple(new if t == old else t for t in s.outputs),
        )
        for s in graph.steps
    ]


def extract_graph(mod: tvm.IRModule) -> Graph:
    """Read the kernel-call chain of a lowered module's ``main``.

    Parameters
    ----------
    mod : tvm.IRModule
        Output of :func:`micro.lowering.lower_to_kernel_calls`.

    Returns
    -------
    Graph
        Tensors and steps. The input tensor is named ``"input"`` and the output ``"output"``.

    Raises
    ------
    UnsupportedModelError
        For several inputs or outputs, dynamic shapes, or non-kernel operations.
    """
    main = mod["main"]
    if len(main.params) != 1:
        raise UnsupportedModelError(
            f"main must take exactly one tensor, it takes {len(main.params)}"
        )
    in_shape, in_dtype = _tensor_type(main.params[0].ty, "the model input")
    placeholder = TensorInfo(OUTPUT, (), "int8")  # replaced once main's result is known
    graph = Graph(TensorInfo(INPUT, in_shape, in_dtype), placeholder)
    names = _Names()
    names.bind(main.params[0], INPUT)
    for block in main.body.blocks:
        for binding in block.bindings:
            _binding(binding, names, graph)
    result = main.body.body
    produced = names.lookup(result) if isinstance(result, relax.Var) else None
    if not isinstance(produced, str) or produced not in graph.intermediates:
        raise UnsupportedModelError(
            "main must return one tensor computed by a kernel"
            " (not a tuple, the input or a constant)"
        )
    info = graph.intermediates.pop(produced)
    graph.output = TensorInfo(OUTPUT, info.shape, info.dtype)
    _rename(graph, produced, OUTPUT)
    return graph
