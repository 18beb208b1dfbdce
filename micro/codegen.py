"""TIR kernels with plain C signatures, as C source or as an object for the board's core.

TVM's default TIR pipeline wraps every PrimFunc in the packed TVM-FFI calling convention, which
needs the TVM runtime on the device. Here the kernels keep ordinary signatures,
``int32_t kernel(float* a, int8_t* b, ...)`` (one pointer per tensor, inputs then outputs,
returning 0), so that the generated entry point can call them directly: a pass placed where
``MakePackedAPI`` would run turns buffer parameters into pointer parameters and marks the
function as already lowered. Parallel loops (from schedules or tuning) run serially, since there is
one core and no thread pool. A kernel's intermediate buffers (all but tiny ones) are requested with
``TVMBackendAllocWorkspace``, not kept on the stack; the firmware serves those from a static arena
whose size is computed here, so the stack a model needs stays small and the RAM it needs shows in
the footprint. Kernels may call C functions of their own (``call_extern``, e.g. a hand-written
micro-kernel): the C sources registered for them with :func:`register_extern_source` are copied
next to the kernels and built into the firmware when, and only when, a kernel calls them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable
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
#: Intermediate buffers of a kernel larger than this many bytes go to the workspace arena; smaller
#: ones stay on the stack. Half of TVM's 1 KiB: one kernel's stack arrays then stay well inside a
#: 1 KiB stack, while an accumulator row of up to 128 int32 (a common layer width) stays on the
#: stack, where GCC keeps its element in a register through a reduction loop; in the arena it
#: stores the element on every iteration (about one instruction more per MAC in a plain loop).
STACK_ALLOCATION_LIMIT = 512
#: Annotation of a tensor intrinsic's implementation block (``Schedule.tensorize`` copies it onto
#: the block it replaces) saying that the implementation writes every element of the block's write
#: regions and reads none of them. The tensorized block keeps the init of its reduction (TVM's
#: tensorize keeps it whatever the description says); :func:`_drop_overwritten_inits` removes that
#: now-dead zeroing before ``LowerInitBlock`` turns it into code.
OVERWRITES_ATTR = "micro.overwrites"
#: Optional annotation beside :data:`OVERWRITES_ATTR`: the constant the implementation's
#: reduction starts from (0 when absent: a sum), which the dropped init must store (-128 for an
#: int8 maximum).
OVERWRITES_FROM_ATTR = "micro.overwrites_from"
_WORKSPACE_OP = "tirx.TVMBackendAllocWorkspace"
_EXTERN_OPS = ("tirx.call_extern", "tirx.call_pure_extern")
_KDL_CPU = 1


@dataclass(frozen=True)
class ExternSource:
    """A C source file that defines functions kernels call with ``call_extern``.

    Attributes
    ----------
    name : str
        File name in the project's ``src/`` (its object is named after its stem).
    text : str
        The C source.
    headers : tuple of (str, str)
        Headers it includes from its own folder, as (file name, text).
    """

    name: str
    text: str
    headers: tuple[tuple[str, str], ...] = ()


_EXTERN_SOURCES: dict[str, ExternSource] = {}


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
    extern_sources : tuple of Path
        Registered C sources of the extern functions the kernels call, copied next to the
        kernels; they are compiled with the firmware and count as model code.
    extern_symbols : frozenset of str
        Every function the kernels call with ``call_extern`` (registered or from the C library).
    """

    backend: str
    path: Path
    symbols: dict[str, str]
    workspace_bytes: int
    extern_sources: tuple[Path, ...] = ()
    extern_symbols: frozenset[str] = frozenset()


def _read_source(source: str | os.PathLike | Traversable, default_name: str) -> tuple[str, str]:
    """(file name, text) of a source given as a file (path or package resource) or as text."""
    if isinstance(source, str):
        if "\n" not in source and source.endswith((".c", ".h")):
            raise ValueError(f"{source!r} looks like a file name: pass it as a pathlib.Path")
        return default_name, source
    if isinstance(source, os.PathLike):
        source = Path(source)
    return source.name, source.read_text(encoding="utf-8")


def register_extern_source(
    symbol: str,
    source: str | os.PathLike | Traversable,
    *,
    header: str | os.PathLike | Traversable | None = None,
) -> None:
    """Declare the C source that defines ``symbol``, a function kernels call with ``call_extern``.

    TVM's code generators only declare an extern function (from the call's argument types); its
    definition must come with the firmware. When a kernel of a build calls ``symbol``, the source
    (and its header) is copied into the project's ``src/``, compiled with the board's GCC flags
    for either kernel back end, linked in and counted as model code; builds whose kernels do not
    call it are unaffected (so a source may use instructions only some cores have). Several
    symbols may share one source; registering a symbol again replaces its source.

    Parameters
    ----------
    symbol : str
        The C function's name, as in ``T.call_extern(dtype, symbol, ...)``.
    source : str, os.PathLike or importlib Traversable
        A file (path or package resource: read now, copied under its own name) or the C text
        itself (a ``str``, written as ``<symbol>.c``).
    header : str, os.PathLike or importlib Traversable, optional
        A header the source includes, the same way (text is written as ``<symbol>.h``).
    """
    if not _C_IDENTIFIER.fullmatch(symbol):
        raise ValueError(f"symbol must be a C identifier, got {symbol!r}")
    name, text = _read_source(source, f"{symbol}.c")
    headers = () if header is None else (_read_source(header, f"{symbol}.h"),)
    _EXTERN_SOURCES[symbol] = ExternSource(name, text, headers)


def extern_calls(mod: tvm.IRModule) -> frozenset[str]:
    """Names of the functions a lowered module calls with ``call_extern``/``call_pure_extern``."""
    names: set[str] = set()

    def visit(call: tvm.ir.Call, visitor: tvm_ffi.StructuralVisitor) -> None:
        if getattr(call.op, "name", "") in _EXTERN_OPS and isinstance(call.args[0], ir.StringImm):
            names.add(str(call.args[0].value))
        visitor.default_visit(call)

    for func in mod.functions.values():
        tvm_ffi.structural_visit(func.body, [(tvm.ir.Call, visit)])
    return frozenset(names)


def _copy_extern_sources(symbols: frozenset[str], out_dir: Path) -> tuple[Path, ...]:
    """Write the registered sources of the called symbols (each file once) into ``out_dir``."""
    sources: dict[str, Path] = {}
    for symbol in sorted(symbols & _EXTERN_SOURCES.keys()):
        extern = _EXTERN_SOURCES[symbol]
        for name, text in ((extern.name, extern.text), *extern.headers):
            (out_dir / name).write_text(text, encoding="utf-8")
        sources[extern.name] = out_dir / extern.name
    return tuple(sources.values())


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


def _stores_only(init: tirx.Stmt, start: int) -> bool:
    """Whether every store of a block's init writes the constant ``start``."""
    values: list[tvm.ir.PrimExpr] = []

    def visit(store: tirx.BufferStore, visitor: tvm_ffi.StructuralVisitor) -> None:
        values.append(store.value)
        visitor.default_visit(store)

    tvm_ffi.structural_visit(init, [(tirx.BufferStore, visit)])
    return bool(values) and all(isinstance(v, tirx.IntImm) and int(v) == start for v in values)


def _without_dead_init(block: s_tir.SBlock, mutator: tvm_ffi.StructuralMutator) -> s_tir.SBlock:
    block = mutator.default_mutate(block)
    if block.init is None or OVERWRITES_ATTR not in block.annotations:
        return block
    partial = [iv.var.name for iv in block.iter_vars
               if iv.iter_type == tirx.IterVar.CommReduce and not _is_one(iv.dom.extent)]
    if partial:  # the block runs once per step of these: its init is live, the result wrong
        raise BuildError(
            f"block {block.name_hint} is tensorized with an implementation that overwrites its "
            f"output, but reduces over {', '.join(partial)} outside it"
        )
    start = int(block.annotations.get(OVERWRITES_FROM_ATTR, 0))
    if not _stores_only(block.init, start):
        raise BuildError(f"block {block.name_hint}: an overwriting implementation replaces a "
                         f"reduction whose init is not {start}, the value it starts from")
    return s_tir.SBlock(
        block.iter_vars, block.reads, block.writes, block.name_hint, block.body, None,
        block.alloc_buffers, block.match_buffers, block.annotations, block.span,
    )  # fmt: skip


def _is_one(extent: tvm.ir.PrimExpr) -> bool:
    return isinstance(extent, tirx.IntImm) and int(extent) == 1


@tvm.transform.module_pass(opt_level=0, name="micro.DropOverwrittenInits")
def _drop_overwritten_inits(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
    """Remove the init of blocks tensorized with an implementation marked :data:`OVERWRITES_ATTR`.

    Such a block writes its whole output from its inputs, so zeroing the output first (the init
    ``LowerInitBlock`` would emit) is dead. Sound only when the block holds its whole reduction
    (every reduction iteration variable of extent 1: it runs once per output) and the init
    stores what the implementation's reduction starts from (0, or the block's
    :data:`OVERWRITES_FROM_ATTR`); otherwise the build fails rather than keep a wrong kernel.
    """
    callbacks = [(s_tir.SBlock, _without_dead_init)]
    functions = {
        gvar: func.with_body(tvm_ffi.structural_mutate(func.body, callbacks))
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


def _constant_bytes(buffer: tirx.Buffer) -> int | None:
    """Size of a buffer of constant shape in bytes, None for a symbolic shape."""
    dtype = tvm.DataType(str(buffer.dtype))
    nbytes = dtype.bits * dtype.lanes // 8
    for extent in buffer.shape:
        if not isinstance(extent, tirx.IntImm):
            return None
        nbytes *= int(extent)
    return nbytes


def _goes_to_workspace(stmt: tirx.Stmt) -> bool:
    if not isinstance(stmt, tirx.AllocBuffer) or stmt.buffer.scope() != "global":
        return False
    nbytes = _constant_bytes(stmt.buffer)
    return nbytes is not None and nbytes > STACK_ALLOCATION_LIMIT


def _workspace_alloc(buffer: tirx.Buffer) -> tuple[list[tirx.Stmt], tirx.Stmt]:
    """The statements LowerTVMBuiltin writes for a large buffer: alloc + null check, and free."""
    dtype = tvm.DataType(str(buffer.dtype))
    device = (tirx.const(_KDL_CPU, "int32"), tirx.const(0, "int32"))
    nbytes = tirx.const(_constant_bytes(buffer), "uint64")
    alloc = tirx.call_intrin(
        "handle", _WORKSPACE_OP, *device, nbytes, dtype.type_code, dtype.bits
    )
    fail = tirx.Evaluate(tirx.call_intrin("int32", "tirx.tvm_throw_last_error"))
    is_null = tirx.call_intrin("bool", "tirx.isnullptr", buffer.data)
    free = tirx.call_intrin("int32", "tirx.TVMBackendFreeWorkspace", *device, buffer.data)
    return (
        [tirx.DeclBuffer(buffer, data=alloc), tirx.IfThenElse(is_null, fail, None)],
        tirx.IfThenElse(free != 0, fail, None),
    )


def _sequence_to_workspace(seq: tirx.SeqStmt, mutator: tvm_ffi.StructuralMutator) -> tirx.Stmt:
    """Allocate a sequence's buffers from the workspace; free them, last first, at its end.

    An ``AllocBuffer`` is visible to the rest of its sequence, so nested sequences are flattened
    first: the end of the flattened sequence is the end of the buffer's scope.
    """
    items: list[tirx.Stmt] = []
    for stmt in seq.seq:
        stmt = mutator.mutate(stmt)
        items += list(stmt.seq) if isinstance(stmt, tirx.SeqStmt) else [stmt]
    lowered, frees = [], []
    for stmt in items:
        if _goes_to_workspace(stmt):
            alloc, free = _workspace_alloc(stmt.buffer)
            lowered += alloc
            frees.append(free)
        else:
            lowered.append(stmt)
    return tirx.SeqStmt(lowered + frees[::-1])


@tvm.transform.module_pass(opt_level=0, name="micro.IntermediatesToWorkspace")
def _intermediates_to_workspace(
    mod: tvm.IRModule, _ctx: tvm.transform.PassContext
) -> tvm.IRModule:
    """Serve kernel intermediates above :data:`STACK_ALLOCATION_LIMIT` bytes from the workspace.

    TVM's ``LowerTVMBuiltin`` keeps CPU buffers below 1 KiB on the stack; on a microcontroller
    the stack is a fixed reservation sized for the worst kernel, invisible in the model's
    footprint, so this pass (placed before it) turns them into the same
    ``TVMBackendAllocWorkspace``/``TVMBackendFreeWorkspace`` calls that it writes for large ones,
    served from the static workspace arena.
    """
    callbacks = [(tirx.SeqStmt, _sequence_to_workspace)]
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
            _drop_overwritten_inits,
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
            _intermediates_to_workspace,
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


_C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
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
        What was written (kernels, registered sources of the extern functions they call) and the
        workspace the kernels need.

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
    externs = extern_calls(lowered)
    out_dir.mkdir(parents=True, exist_ok=True)
    if backend == "c":
        path = out_dir / "kernels.c"
        path.write_text(_self_contained_c(library.inspect_source()), encoding="utf-8")
    else:
        path = out_dir / "kernels.o"
        library.write_to_file(str(path))
    extern_sources = _copy_extern_sources(externs, out_dir)
    return Kernels(backend, path, symbols, workspace, extern_sources, externs)
