"""The model as a list of kernel calls on named tensors.

After :func:`micro.lowering.lower_to_kernel_calls`, Relax ``main`` is a chain of ``R.call_tir``.
This module reads that chain into plain Python data (tensors with static shapes and dtypes,
constants as NumPy arrays, steps naming a kernel and its argument tensors) so that memory
planning and C generation never touch TVM objects. Anything outside that subset is refused here,
with the offending construct named.

Kernels that only give their input a new shape (reshape, squeeze, expand_dims, flatten: the
output is the input's bytes in the same order) become aliases here instead of steps, so the
device neither copies the bytes nor holds them twice.
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


def _tensor_info(graph: Graph, name: str) -> TensorInfo:
    if name == INPUT:
        return graph.input
    if name in graph.constants:
        value = graph.constants[name]
        return TensorInfo(name, tuple(value.shape), str(value.dtype))
    return graph.intermediates[name]


def _is_view(step: Step, mod: tvm.IRModule, graph: Graph) -> bool:
    """Whether ``step``'s output is its input's bytes, unchanged and in the same order.

    ``has_reshape_pattern`` proves that each output element reads the input element at the same
    flattened index (the analysis behind Relax's ``RewriteDataflowReshape``; it errs only towards
    "no"). It also accepts a leading slice, hence the equal dtype and size.
    """
    if len(step.inputs) != 1 or len(step.outputs) != 1:
        return False
    func = mod[step.kernel]
    source = _tensor_info(graph, step.inputs[0])
    result = graph.intermediates[step.outputs[0]]
    return (
        isinstance(func, tvm.tirx.PrimFunc)
        and (source.dtype, source.nbytes) == (result.dtype, result.nbytes)
        and relax.analysis.has_reshape_pattern(func)
    )


def _alias_views(graph: Graph, mod: tvm.IRModule, result: str) -> dict[str, str]:
    """Drop view steps; every later step names the viewed storage instead of the view.

    Naming the storage itself in the readers is what keeps the memory plan right without it
    knowing about views: the storage stays alive until its last alias is read, and the input and
    constants stay read-only because kernels only read their inputs. A view that is the model's
    result keeps its kernel (a copy into the caller's output buffer) when its storage is the input
    or a constant; when the storage is a kernel output, that kernel writes the output buffer
    directly (see :func:`extract_graph`).

    Returns
    -------
    dict of str to str
        Each removed view's name → the name of the tensor holding its bytes.
    """
    storage: dict[str, str] = {}
    kept: list[Step] = []
    for step in graph.steps:
        step = Step(step.kernel, tuple(storage.get(t, t) for t in step.inputs), step.outputs)
        aliasable = step.outputs[0] != result or step.inputs[0] in graph.intermediates
        if aliasable and _is_view(step, mod, graph):
            storage[step.outputs[0]] = step.inputs[0]
        else:
            kept.append(step)
    graph.steps = kept
    for alias in storage:
        del graph.intermediates[alias]
    return storage


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
        Reshape-like kernels are not steps: their readers use the reshaped tensor's storage.

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
    info = graph.intermediates[produced]
    location = _alias_views(graph, mod, produced).get(produced, produced)
    graph.intermediates.pop(location)
    graph.output = TensorInfo(OUTPUT, info.shape, info.dtype)
    _rename(graph, location, OUTPUT)
    return graph
