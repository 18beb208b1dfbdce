"""TIR kernels with plain C signatures, as C source or as an object for the board's core.

TVM's default TIR pipeline wraps every PrimFunc in the packed TVM-FFI calling convention, which
needs the TVM runtime on the device. Here the kernels keep ordinary signatures,
``int32_t kernel(float* a, int8_t* b, ...)`` (one pointer per tensor, inputs then outputs,
returning 0), so that the generated entry point can call them directly: a pass placed where
``MakePackedAPI`` would run turns buffer parameters into pointer parameters and marks the
function as already lowered. Parallel loops (from schedules or tuning) run serially, since there is
one core and no thread pool. Intermediates that TVM does not keep on the stack are requested with
``TVMBackendAllocWorkspace``; the firmware serves those from a static arena whose size is
computed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import tvm
import tvm_ffi
from tvm import ir, s_tir, tirx
from tvm.ir import CallingConv
from tvm.tirx.buffer import is_buffer_var
from tvm.tirx.build import codegen_build

from .boards import Board
from .errors import BuildError
from .memplan import align_up

BACKEND_HEADER = "micro_backend.h"
_WORKSPACE_OP = "tirx.TVMBackendAllocWorkspace"
_KDL_CPU = 1


@dataclass(frozen=True)
class Kernels:
    """Generated kernels, ready to be compiled or linked.

    Attributes
    ----------
    backend : str
        ``"c"`` or ``"llvm"``.
    path : Path
        ``kernels.c`` (C backend) or ``kernels.o`` (LLVM backend).
    symbols : dict of str to str
        C symbol of each kernel, by PrimFunc name.
    workspace_bytes : int
        Largest workspace any single kernel requests (kernels run one at a time).
    """

    backend: str
    path: Path
    symbols: dict[str, str]
    workspace_bytes: int


@tvm.transform.module_pass(opt_level=0, name="micro.PlainCSignature")
def _plain_c_signature(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
    """Replace buffer parameters by data pointers, return 0, and skip ``MakePackedAPI``."""
    functions = {}
    for gvar, func in mod.functions.items():
        params, decls = [], []
        for param in func.params:
            if is_buffer_var(param):
                pointer = tirx.Var(param.name, ir.PointerType(ir.PrimType(param.dtype)))
                params.append(pointer)
                decls.append(tirx.DeclBuffer(param, data=pointer))
            else:
                params.append(param)
        # Workspace allocation reads the device from these attributes (MakePackedAPI sets them
        # for packed functions); the CPU is device type 1, id 0.
        node = ir.StringImm("default")
        body = tirx.AttrStmt(
            node,
            "device_id",
            tirx.const(0, "int32"),
            tirx.AttrStmt(
                node,
                "device_type",
                tirx.const(_KDL_CPU, "int32"),
                tirx.SeqStmt([*decls, func.body]),
            ),
        )
        body = tirx.SeqStmt([body, tirx.Return(tirx.const(0, "int32"))])
        new = tirx.PrimFunc(params, body, ret_type=ir.PrimType("int32"), attrs=func.attrs)
        functions[gvar] = new.with_attr("calling_conv", int(CallingConv.C_PACKED_FUNC))
    return tvm.IRModule(functions, attrs=mod.attrs)


def _serial(loop: tirx.For, mutator: tvm_ffi.StructuralMutator) -> tirx.For:
    body = mutator.mutate(loop.body)
    kind = tirx.ForKind.SERIAL if loop.kind == tirx.ForKind.PARALLEL else loop.kind
    return tirx.For(
        loop.loop_var, loop.min, loop.extent, kind, body,
        loop.thread_binding, loop.annotations, loop.step, loop.span,
    )  # fmt: skip


@tvm.transform.module_pass(opt_level=0, name="micro.SerializeParallelLoops")
def _serialize_parallel_loops(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
    """Run parallel loops (from a schedule or a tuner) serially: one core, no thread pool."""
    functions = {
        gvar: func.with_body(tvm_ffi.structural_mutate(func.body, [(tirx.For, _serial)]))
        for gvar, func in mod.functions.items()
    }
    return tvm.IRModule(functions, attrs=mod.attrs)


def _select(node: tvm.ir.PrimExpr, mutator: tvm_ffi.StructuralMutator) -> tvm.ir.PrimExpr:
    a, b = mutator.mutate(node.a), mutator.mutate(node.b)
    return tirx.Select(a > b if isinstance(node, tirx.Max) else a < b, a, b)


@tvm.transform.module_pass(opt_level=0, name="micro.MinMaxToSelect")
def _min_max_to_select(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
    """Write ``max(a, b)`` as ``a > b ? a : b`` (and min alike) before C code generation.

    TVM's C code generator prints min/max through cached temporaries keyed by the operand's text
    and reuses a temporary across later stores to the same element, which miscompiles straight-line
    (unrolled) reductions such as ``x[0] = max(x[0], a); x[0] = max(x[0], b)``. A select has the
    same semantics (NaN included) and is printed without the cache.
    """
    callbacks = [(tirx.Max, _select), (tirx.Min, _select)]
    functions = {
        gvar: func.with_body(tvm_ffi.structural_mutate(func.body, callbacks))
        for gvar, func in mod.functions.items()
    }
    return tvm.IRModule(functions, attrs=mod.attrs)


def _tir_pipeline(backend: str) -> tvm.transform.Pass:
    """TVM's CPU lowering passes, with :func:`_plain_c_signature` in place of MakePackedAPI."""
    c_only = [_min_max_to_select] if backend == "c" else []
    return tvm.transform.Sequential(
        [
            _serialize_parallel_loops,
            s_tir.transform.CanonicalizeLoop(),
            s_tir.transform.LowerInitBlock(),
            s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
            s_tir.transform.ConvertBlocksToOpaque(),
            s_tir.transform.CompactBufferAllocation(),
            s_tir.transform.LowerMatchBuffer(),
            s_tir.transform.StmtSimplify(),
            s_tir.transform.LowerOpaqueBlock(),
            tirx.transform.FlattenBuffer(),
            tirx.transform.BF16ComputeLegalize(),
            tirx.transform.NarrowDataType(32),
            s_tir.transform.LoopPartition(),
            # C: vectorized loops stay loops (GCC vectorizes for the core, and TVM's C vector
            # emulation is avoided); LLVM: vectorized for the core's SIMD/MVE.
            tirx.transform.VectorizeLoop(backend == "llvm"),
            tirx.transform.StorageRewrite(),
            s_tir.transform.HoistIfThenElse(),
            tirx.transform.UnrollLoop(),
            s_tir.transform.RenormalizeSplitPattern(),
            tirx.transform.StmtSimplify(),
            tirx.transform.RemoveNoOp(),
            s_tir.transform.RewriteUnsafeSelect(),
            tirx.transform.CommonSubexprElim(),
            tirx.transform.FP8ComputeLegalize(),
            tirx.transform.VerifyMemory(),
            _plain_c_signature,
            tirx.transform.FP8StorageLegalize(),
            tirx.transform.BF16StorageLegalize(),
            tirx.transform.LowerTVMBuiltin(),
            tirx.transform.LowerIntrin(),
            *c_only,
        ],
        name="micro.TIRPipeline",
    )


def _workspace_bytes(func: tirx.PrimFunc, alignment: int) -> int:
    """Sum of the workspace requests of one lowered kernel (an upper bound of its peak)."""
    sizes: list[int] = []

    def visit(call: tvm.ir.Call, visitor: tvm_ffi.StructuralVisitor) -> None:
        if getattr(call.op, "name", "") == _WORKSPACE_OP:
            nbytes = call.args[2]
            if not isinstance(nbytes, tvm.tirx.IntImm):
                raise BuildError(f"kernel requests a workspace of non-constant size {nbytes}")
            sizes.append(align_up(int(nbytes.value), alignment))
        visitor.default_visit(call)

    tvm_ffi.structural_visit(func.body, [(tvm.ir.Call, visit)])
    return sum(sizes)


_RUNTIME_LINES = re.compile(r'#include "tvm/|#define TVM_EXPORTS|void\* __tvm_ffi__library_ctx')


def _self_contained_c(source: str) -> str:
    """Swap TVM's runtime headers (and its unused library context) for the backend header."""
    lines = [line for line in source.splitlines() if not _RUNTIME_LINES.match(line)]
    return f'#include "{BACKEND_HEADER}"\n' + "\n".join(lines) + "\n"


def generate_kernels(
    mod: tvm.IRModule,
    kernels: list[str],
    board: Board,
    backend: str,
    out_dir: Path,
    prefix: str,
    alignment: int,
) -> Kernels:
    """Compile the PrimFuncs the model calls into plain-C-signature kernels.

    Parameters
    ----------
    mod : tvm.IRModule
        Lowered module (see :func:`micro.lowering.lower_to_kernel_calls`).
    kernels : list of str
        Names of the PrimFuncs to generate.
    board : Board
        Target board (selects the LLVM triple and CPU).
    backend : {"c", "llvm"}
        Emit C source for ``arm-none-eabi-gcc`` or an object from TVM's LLVM.
    out_dir : Path
        Where ``kernels.c`` or ``kernels.o`` is written.
    prefix : str
        Prefix of the C symbols (``<prefix>_<kernel>``).
    alignment : int
        Alignment the firmware's workspace allocator gives each request.

    Returns
    -------
    Kernels
        What was written and the workspace the kernels need.

    Raises
    ------
    ValueError
        If ``backend`` is not ``"c"`` or ``"llvm"``.
    BuildError
        If TVM fails to lower or generate a kernel.
    """
    symbols = {name: f"{prefix}_{name}" for name in kernels}
    target = tvm.target.Target(board.tvm_target(backend))
    funcs = {name: mod[name].with_attr("global_symbol", symbols[name]) for name in kernels}
    try:
        with tvm.transform.PassContext(opt_level=3, config={"tirx.disable_assert": True}):
            lowered = tirx.transform.BindTarget(target)(tvm.IRModule(funcs))
            lowered = _tir_pipeline(backend)(lowered)
            library = codegen_build(lowered, target)
    except (RuntimeError, ValueError, TypeError) as exc:  # TVM's errors are these kinds
        raise BuildError(f"TVM could not generate the kernels for {board.name}: {exc}") from exc
    workspace = max((_workspace_bytes(f, alignment) for f in lowered.functions.values()), default=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    if backend == "c":
        path = out_dir / "kernels.c"
        path.write_text(_self_contained_c(library.inspect_source()), encoding="utf-8")
    else:
        path = out_dir / "kernels.o"
        library.write_to_file(str(path))
    return Kernels(backend, path, symbols, workspace)
