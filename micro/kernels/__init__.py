"""micro's kernel libraries, one package per instruction-set family, and the choice among them.

* :mod:`micro.kernels.scalar`: Armv6-M and Armv7-M (Cortex-M0/M0+, M3), no DSP extension: int8
  dot products and requantization on LDRSB + MLA / MULS (C sources under ``c/scalar/``);
* :mod:`micro.kernels.dsp`: the DSP extension of Armv7E-M / Armv8-M (Cortex-M4, M7, M33): int8
  convolution, dot product, requantization and pooling on SMLAD (C sources under ``c/dsp/``);
* :mod:`micro.kernels.mve`: MVE (Helium) of Armv8.1-M (Cortex-M55): int8 dot products and
  requantization on VMLADAVA / VQRDMULH with tail predication (C sources under ``c/mve/``).

A library contributes tensor intrinsics whose implementations call its C micro-kernels, the
schedules that use them and, if it needs one, a Relax lowering for the operators it takes. Every
library module has the same interface: ``register()``, ``lower(mod, board)``,
``schedule_module(lowered, board)``, ``prepare_for_tuning(mod, board)``,
``tensorize_annotated(sch)``. The board's ISA (:attr:`micro.boards.Board.isa`) chooses it
(:func:`library_for`); :func:`resolve` applies a build's options; :func:`lower`,
:func:`schedule_module`, :func:`prepare_for_tuning` and :func:`tensorize_annotated` dispatch to it
(``library=None``: TVM's plain lowering, no micro-kernels). Nothing is registered at import:
:func:`register` declares the libraries' C sources to the code generator.
"""

from __future__ import annotations

from types import ModuleType

import tvm
from tvm import s_tir

from ..boards import Board
from ..lowering import lower_to_kernel_calls
from . import dsp as dsp_library
from . import mve, scalar

#: The ISAs :mod:`micro.kernels.scalar` serves (``Board.isa``).
SCALAR_ISAS = ("armv6-m", "armv7-m")


def register() -> None:
    """Declare every library's C sources to :mod:`micro.codegen` (idempotent)."""
    dsp_library.register()
    scalar.register()
    mve.register()


def library_for(board: Board) -> ModuleType | None:
    """The kernel library a board's builds use by default.

    Parameters
    ----------
    board : Board
        Target board.

    Returns
    -------
    module or None
        :mod:`micro.kernels.mve` for cores with MVE (Helium), :mod:`micro.kernels.dsp` for
        cores with the DSP extension and without MVE, :mod:`micro.kernels.scalar` for Armv6-M
        and Armv7-M, None (TVM's plain lowering) for the others.
    """
    if board.mve:
        return mve
    if board.dsp:
        return dsp_library
    if board.isa in SCALAR_ISAS:
        return scalar
    return None


def library_name(library: ModuleType | None) -> str:
    """``"dsp"``, ``"scalar"``, ... (the package's last name), or ``"plain"`` for None."""
    return "plain" if library is None else library.__name__.rsplit(".", 1)[-1]


def resolve(board: Board, *, dsp: bool | None = None, plain: bool = False) -> ModuleType | None:
    """The library a build with these options uses (the ``dsp=``/``plain=`` options of
    :func:`micro.build` and :func:`micro.tuning.tune`).

    Parameters
    ----------
    board : Board
        Target board.
    dsp : bool, optional
        None: the board's library (:func:`library_for`); False: TVM's plain lowering; True: the
        DSP library, which the board's core must have (e.g. on an MVE core).
    plain : bool
        TVM's plain lowering, no micro-kernels (the same as ``dsp=False``).

    Returns
    -------
    module or None
        The library, or None for TVM's plain lowering.

    Raises
    ------
    BuildError
        If ``dsp=True`` and the board's core lacks the DSP extension, or ``dsp=True`` with
        ``plain=True``.
    """
    if plain:
        if dsp:
            from ..errors import BuildError

            raise BuildError("dsp=True contradicts plain=True")
        return None
    if dsp is None:
        return library_for(board)
    return dsp_library if dsp_library.uses_dsp(board, dsp) else None


def _options(library: ModuleType) -> dict:
    """What a library's entry points need beyond (mod, board): dsp's take ``dsp=``, mve's
    ``mve=``."""
    if library is dsp_library:
        return {"dsp": True}
    return {"mve": True} if library is mve else {}


def lower(mod: tvm.IRModule, board: Board, library: ModuleType | None) -> tvm.IRModule:
    """The lowering stage of :func:`micro.build`: the library's, or TVM's plain one.

    Parameters
    ----------
    mod : tvm.IRModule
        Relax module.
    board : Board
        Target board.
    library : module or None
        From :func:`resolve`.

    Returns
    -------
    tvm.IRModule
        A chain of kernel calls (unscheduled kernels).
    """
    if library is None:
        return lower_to_kernel_calls(mod, rewrites=[])
    return library.lower(mod, board, **_options(library))


def schedule_module(
    lowered: tvm.IRModule, board: Board, library: ModuleType | None
) -> tvm.IRModule:
    """The library's default schedules of a lowered module (unchanged without a library)."""
    if library is None:
        return lowered
    return library.schedule_module(lowered, board, **_options(library))


def prepare_for_tuning(
    mod: tvm.IRModule, board: Board, library: ModuleType | None
) -> tvm.IRModule:
    """Lower and prepare a module for a MetaSchedule search with the library's rules."""
    if library is None:
        return lower(mod, board, None)
    return library.prepare_for_tuning(mod, board, **_options(library))


def tensorize_annotated(sch: s_tir.Schedule, library: ModuleType | None) -> None:
    """The library's default schedule of a prepared kernel (nothing without a library)."""
    if library is not None:
        library.tensorize_annotated(sch)
