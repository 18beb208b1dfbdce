"""Boards as data.

A board is everything the rest of :mod:`micro` needs to know about a target: which QEMU machine
emulates it, which compiler flags and LLVM target produce code for its core, whether it has an
FPU, MVE or the DSP extension, where its flash and RAM are and how big, and the clock that drives
SysTick (used to turn ticks into instructions). The table lives in ``templates/boards.json``
(package data, beside the firmware template it fills) so that adding a board is an edit of data,
not of code paths.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .errors import UnknownBoardError

_BOARDS_FILE = "boards.json"


@dataclass(frozen=True)
class MemoryRegion:
    """A contiguous memory region of a board.

    Attributes
    ----------
    origin : int
        First address.
    length : int
        Size in bytes.
    """

    origin: int
    length: int


@dataclass(frozen=True)
class NamedRegion(MemoryRegion):
    """A memory region besides a board's flash and RAM, by the name its memory map gives it.

    Attributes
    ----------
    name : str
        The region's name in the board's memory map (``"sram"``, ``"ddr"``, ...); it is the
        region's name in the linker script too, upper-cased.
    """

    name: str = ""


@dataclass(frozen=True)
class Board:
    """One Cortex-M board as QEMU emulates it.

    Attributes
    ----------
    name : str
        Key in ``templates/boards.json``, e.g. ``"mps2-an386"``.
    description : str
        Human-readable summary.
    qemu_machine : str
        Value of ``qemu-system-arm -M``.
    cpu : str
        Core name, e.g. ``"cortex-m4"``.
    arch : str
        Architecture profile, e.g. ``"armv7e-m"``.
    isa : str
        The instruction set kernels may use: the profile and its optional extensions, joined by
        ``+`` as GCC's ``-march`` spells them: ``"armv6-m"`` (Cortex-M0/M0+), ``"armv7-m"``
        (M3), ``"armv7e-m+dsp"`` (M4, M7), ``"armv8-m.main+dsp"`` (M33),
        ``"armv8.1-m.main+dsp+mve"`` (M55). It chooses the kernel library
        (:func:`micro.kernels.library_for`); it must agree with ``arch``, ``dsp`` and ``mve``.
    fpu : str
        ``"none"``, ``"sp"`` (single precision) or ``"dp"`` (double precision).
    mve : bool
        Whether the core has the M-profile vector extension (Helium).
    dsp : bool
        Whether the core has the DSP extension (``SXTB16``, ``SMLAD``: packed 8/16-bit
        arithmetic); :mod:`micro.kernels.dsp` decides whether kernels use it.
    gcc_flags : tuple of str
        Code-generation flags for ``arm-none-eabi-gcc`` (they also select newlib's multilib).
    llvm_target : tuple of (str, str)
        Keys and values of the LLVM target (``mtriple``, ``mcpu``, ``mfloat-abi``).
    flash, ram : MemoryRegion
        Where code/constants and data live.
    constant_regions : tuple of NamedRegion
        More memory the image can be loaded into, for the model's constants when flash cannot
        hold them with the code (:func:`micro.footprint.place_constants`); the first that fits
        is used. Empty on most boards. On mps3-an547 the ITCM (``flash``, 512 KB) is backed by
        the 2 MB SRAM at 0x01000000 that QEMU's AN547 model maps (and the FPGA image loads
        images into).
    clock_hz : int
        Core clock; SysTick counts at this rate.
    stack_bytes, heap_bytes : int
        Default stack and heap reservations of the firmware.
    """

    name: str
    description: str
    qemu_machine: str
    cpu: str
    arch: str
    isa: str
    fpu: str
    mve: bool
    dsp: bool
    gcc_flags: tuple[str, ...]
    llvm_target: tuple[tuple[str, str], ...]
    flash: MemoryRegion
    ram: MemoryRegion
    clock_hz: int
    stack_bytes: int
    heap_bytes: int
    constant_regions: tuple[NamedRegion, ...] = ()

    @property
    def has_fpu(self) -> bool:
        """Whether the core has a floating-point unit that start-up code must enable."""
        return self.fpu != "none"

    @property
    def is_armv6m(self) -> bool:
        """Cortex-M0/M0+: no configurable fault handlers (every fault is a HardFault)."""
        return self.arch == "armv6-m"

    @property
    def is_armv8m(self) -> bool:
        """Armv8-M cores: a stack-limit register (``MSPLIM``) turns overflow into a fault."""
        return self.arch.startswith("armv8")

    def tvm_target(self, kind: str) -> dict[str, str]:
        """Return the TVM target (a JSON dict) that generates kernels for this board.

        Parameters
        ----------
        kind : str
            ``"c"`` (portable C compiled by ``arm-none-eabi-gcc``) or ``"llvm"`` (object code
            from TVM's LLVM for this core).

        Returns
        -------
        dict of str to str
            A target dictionary accepted by ``tvm.target.Target``.
        """
        if kind == "c":
            return {"kind": "c"}
        if kind == "llvm":
            return {"kind": "llvm", **dict(self.llvm_target)}
        raise ValueError(f"kernel backend must be 'c' or 'llvm', got {kind!r}")

    @property
    def instructions_per_tick(self) -> float:
        """Instructions per SysTick tick under ``-icount shift=0`` (one instruction per ns)."""
        return 1e9 / self.clock_hz


def _parse(name: str, raw: dict) -> Board:
    _check_isa(name, raw)
    return Board(
        name=name,
        description=raw["description"],
        qemu_machine=raw["qemu_machine"],
        cpu=raw["cpu"],
        arch=raw["arch"],
        isa=raw["isa"],
        fpu=raw["fpu"],
        mve=bool(raw["mve"]),
        dsp=bool(raw["dsp"]),
        gcc_flags=tuple(raw["gcc_flags"]),
        llvm_target=tuple(sorted(raw["llvm_target"].items())),
        flash=MemoryRegion(**raw["flash"]),
        ram=MemoryRegion(**raw["ram"]),
        clock_hz=int(raw["clock_hz"]),
        stack_bytes=int(raw["stack_bytes"]),
        heap_bytes=int(raw["heap_bytes"]),
        constant_regions=tuple(_region(name, r) for r in raw.get("constant_regions", ())),
    )


def _region(board: str, raw: dict) -> NamedRegion:
    """One entry of a board's ``constant_regions``; a name the linker script cannot use, or one
    of its own regions' names, is refused."""
    name = str(raw.get("name", ""))
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name in ("flash", "ram"):
        raise ValueError(
            f"board {board!r} in {_BOARDS_FILE}: constant region name {name!r} should be lower-"
            f"case letters, digits and underscores, and not 'flash' or 'ram'"
        )
    return NamedRegion(origin=int(raw["origin"]), length=int(raw["length"]), name=name)


def _check_isa(name: str, raw: dict) -> None:
    """Refuse a board entry whose ``isa`` disagrees with its ``arch``, ``dsp`` and ``mve``."""
    profile, *extensions = raw["isa"].split("+")
    expected = [e for e, has in (("dsp", raw["dsp"]), ("mve", raw["mve"])) if has]
    if profile != raw["arch"] or extensions != expected:
        raise ValueError(
            f"board {name!r} in {_BOARDS_FILE}: isa {raw['isa']!r} should be "
            f"{'+'.join([raw['arch'], *expected])!r} (arch, then +dsp, +mve as the core has them)"
        )


@lru_cache(maxsize=1)
def _load_all() -> dict[str, Board]:
    source = resources.files(__package__).joinpath("templates", _BOARDS_FILE)
    table = json.loads(source.read_text(encoding="utf-8"))["boards"]
    return {name: _parse(name, raw) for name, raw in table.items()}


def list_boards() -> list[str]:
    """Return the names of all known boards, sorted.

    Returns
    -------
    list of str
        Board names accepted by :func:`get_board`.
    """
    return sorted(_load_all())


def get_board(board: str | Board) -> Board:
    """Look a board up by name.

    Parameters
    ----------
    board : str or Board
        A name from :func:`list_boards`, or a :class:`Board` (returned unchanged).

    Returns
    -------
    Board
        The board description.

    Raises
    ------
    UnknownBoardError
        If the name is not in ``templates/boards.json``.
    """
    if isinstance(board, Board):
        return board
    boards = _load_all()
    if board not in boards:
        raise UnknownBoardError(
            f"unknown board {board!r}; known boards: {', '.join(sorted(boards))}"
        )
    return boards[board]
