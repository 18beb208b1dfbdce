"""Your own C code around the model: :class:`App`, a ``step`` function the harness calls per record.

Without an app, the harness reads records of the model's input size, runs the model once per
record and writes one output record each. An :class:`App` replaces that loop's body: the harness
reads records of ``input_bytes`` (e.g. one ADC sample), calls the user's
``int32_t step(const void* record, void* out)`` once per record between the counting markers, and
appends the 0 to ``output_max_bytes`` bytes the step reports to the output file. The step keeps
its own state in static variables and calls the model (``MODEL_RUN`` from ``model.h``) when it
likes. micro knows nothing of what the app does.

This module holds the description and what is derived from it: the validation (one-line
:class:`~micro.errors.InvalidAppError` naming the field), the ``micro_config.h`` definitions of the
harness's app path, the block sizes of its buffered I/O, and the ``metadata.json`` record that
:meth:`micro.Firmware.load` reads back. docs/micro.md ("Applications") has the C contract.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .boards import Board
from .errors import InvalidAppError
from .firmware import TEMPLATE_SOURCES

_C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Macro prefixes micro defines itself (``micro_config.h``, ``model.h``): not for ``defines``.
RESERVED_PREFIXES = ("MICRO_", "MODEL_")
#: Files of the firmware project an app source must not replace (the template, the model).
PROJECT_SOURCES = frozenset({*TEMPLATE_SOURCES, "model.c", "kernels.c"})
#: Target size of one semihosting read or write of the app path, in bytes (a whole number of
#: records; at least one record, at most 1/16 of the board's RAM).
IO_BLOCK_BYTES = 4096


def _paths(value: object, name: str) -> tuple[Path, ...]:
    if isinstance(value, (str, os.PathLike)):
        value = (value,)
    if not isinstance(value, Iterable):
        raise InvalidAppError(f"App.{name} must be a path or a sequence of paths, got {value!r}")
    paths = []
    for item in value:
        if not isinstance(item, (str, os.PathLike)):
            raise InvalidAppError(f"App.{name} must hold paths, got {item!r}")
        paths.append(Path(item))
    return tuple(paths)


def _identifier(value: object, name: str) -> None:
    if not isinstance(value, str) or not _C_IDENTIFIER.fullmatch(value):
        raise InvalidAppError(f"App.{name} must be a C identifier, got {value!r}")


def _size(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidAppError(f"App.{name} must be an int >= 1, got {value!r}")


def _defines(value: object) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise InvalidAppError(f"App.defines must be a mapping of macro name to C literal, got "
                              f"{value!r}")
    defines = {}
    for key, literal in value.items():
        if not isinstance(key, str) or not _C_IDENTIFIER.fullmatch(key):
            raise InvalidAppError(f"App.defines: {key!r} is not a C identifier")
        if key.startswith(RESERVED_PREFIXES):
            raise InvalidAppError(f"App.defines: {key!r} uses a prefix micro reserves "
                                  f"({', '.join(RESERVED_PREFIXES)})")
        if isinstance(literal, bool) or not isinstance(literal, (str, int)):
            raise InvalidAppError(f"App.defines[{key!r}] must be a str or an int, got {literal!r}")
        text = str(literal).strip()
        if not text or "\n" in text or "\r" in text:
            raise InvalidAppError(f"App.defines[{key!r}] must be a one-line C literal, got "
                                  f"{literal!r}")
        defines[key] = text
    return MappingProxyType(defines)


@dataclass(frozen=True, kw_only=True)
class App:
    """User C code between the input records and the model, run by the firmware's harness.

    The harness calls ``init`` once (if given), then ``step`` once per input record of
    ``input_bytes`` bytes, each call counted exactly (one entry of
    :attr:`micro.RunResult.instruction_counts` per record). A step returns how many bytes it
    wrote to ``out`` (0 to ``output_max_bytes``); a negative value stops the run with an error.
    The sources include ``"model.h"`` to run the model (``MODEL_RUN(input, output)``,
    ``MODEL_INPUT_BYTES``, ...) and ``"micro_config.h"`` for ``defines``. Static memory only.

    Attributes
    ----------
    sources : tuple of Path
        C files (``.c``, distinct names), copied into the project's ``src/`` and compiled with
        the firmware's flags (``-O2 -Wall`` and the board's).
    step : str
        Name of ``int32_t step(const void* record, void* out)``.
    input_bytes : int
        Size of one input record (>= 1).
    output_max_bytes : int
        Most bytes one step may write to ``out`` (>= 1).
    init : str or None
        Name of ``int32_t init(void)``, called once before the first record; nonzero is an error.
    include_dirs : tuple of Path
        More folders for ``#include`` (checked when building).
    defines : mapping of str to str
        Macro name to C literal (an int becomes its decimal text), written to ``micro_config.h``;
        names starting with ``MICRO_`` or ``MODEL_`` are micro's.

    Raises
    ------
    InvalidAppError
        Naming the field, if a field is invalid or a source file is missing.

    Examples
    --------
    >>> app = micro.App(sources=["app/qrs.c"], step="qrs_step", init="qrs_init",
    ...                 input_bytes=2, output_max_bytes=16,
    ...                 defines={"WINDOW": 140})                           # doctest: +SKIP
    >>> firmware = micro.build(mod, "mps2-an386", "build/qrs", app=app)    # doctest: +SKIP
    """

    sources: tuple[Path, ...]
    step: str
    input_bytes: int
    output_max_bytes: int
    init: str | None = None
    include_dirs: tuple[Path, ...] = ()
    defines: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sources = _paths(self.sources, "sources")
        if not sources:
            raise InvalidAppError("App.sources must name at least one C file")
        names = set()
        for path in sources:
            if path.suffix != ".c":
                raise InvalidAppError(f"App.sources: {path} is not a .c file")
            if not path.is_file():
                raise InvalidAppError(f"App.sources: {path} does not exist")
            if path.name in PROJECT_SOURCES:
                raise InvalidAppError(f"App.sources: {path.name} is the name of a file of the "
                                      f"firmware project; rename it")
            if path.name in names:
                raise InvalidAppError(f"App.sources: two files are named {path.name}")
            names.add(path.name)
        _identifier(self.step, "step")
        if self.init is not None:
            _identifier(self.init, "init")
            if self.init == self.step:
                raise InvalidAppError(f"App.init and App.step are both {self.step!r}")
        _size(self.input_bytes, "input_bytes")
        _size(self.output_max_bytes, "output_max_bytes")
        object.__setattr__(self, "sources", tuple(p.resolve() for p in sources))
        include_dirs = tuple(p.resolve() for p in _paths(self.include_dirs, "include_dirs"))
        object.__setattr__(self, "include_dirs", include_dirs)
        object.__setattr__(self, "defines", _defines(self.defines))

    def check_include_dirs(self) -> None:
        """Refuse include folders that do not exist (when building; a loaded app keeps them).

        Raises
        ------
        InvalidAppError
            Naming the folder.
        """
        for folder in self.include_dirs:
            if not folder.is_dir():
                raise InvalidAppError(f"App.include_dirs: {folder} is not a folder")

    def as_metadata(self) -> dict:
        """The app as plain data for ``metadata.json`` (source file names, as in ``src/``).

        Returns
        -------
        dict
            ``step``, ``init``, ``input_bytes``, ``output_max_bytes``, ``sources`` (names),
            ``include_dirs`` (absolute paths) and ``defines``.
        """
        return {
            "step": self.step,
            "init": self.init,
            "input_bytes": self.input_bytes,
            "output_max_bytes": self.output_max_bytes,
            "sources": [path.name for path in self.sources],
            "include_dirs": [str(path) for path in self.include_dirs],
            "defines": dict(self.defines),
        }

    @classmethod
    def from_metadata(cls, raw: Mapping, src_dir: Path) -> App:
        """The app a firmware folder was built with, its sources the copies in ``src_dir``.

        Parameters
        ----------
        raw : mapping
            What :meth:`as_metadata` wrote.
        src_dir : Path
            The folder's ``src/``.

        Returns
        -------
        App

        Raises
        ------
        InvalidAppError
            If a field is invalid or a copied source is missing.
        KeyError, TypeError
            If a field is missing or of the wrong kind.
        """
        return cls(
            sources=tuple(src_dir / str(name) for name in raw["sources"]),
            step=raw["step"],
            init=raw["init"],
            input_bytes=raw["input_bytes"],
            output_max_bytes=raw["output_max_bytes"],
            include_dirs=tuple(raw["include_dirs"]),
            defines=raw["defines"],
        )


def io_blocks(app: App, board: Board) -> tuple[int, int]:
    """Records per input block and bytes of the output block of the harness's app path.

    Parameters
    ----------
    app : App
        The app.
    board : Board
        Its board (small RAM: smaller blocks).

    Returns
    -------
    tuple of int
        Input records read per semihosting call (>= 1); output bytes buffered before a write
        (>= ``output_max_bytes``).
    """
    block = min(IO_BLOCK_BYTES, board.ram.length // 16)
    return max(1, block // app.input_bytes), max(block, app.output_max_bytes)


def config_defines(app: App, board: Board) -> dict[str, str]:
    """The ``micro_config.h`` definitions that select and size the harness's app path.

    Parameters
    ----------
    app : App
        The app.
    board : Board
        Its board.

    Returns
    -------
    dict of str to str
        ``MICRO_APP``, ``MICRO_APP_STEP``, ``MICRO_APP_INIT`` (with an ``init``),
        ``MICRO_APP_INPUT_BYTES``, ``MICRO_APP_OUTPUT_MAX_BYTES``, the block sizes, then the
        app's own ``defines``.
    """
    records, out_block = io_blocks(app, board)
    defines = {"MICRO_APP": "1", "MICRO_APP_STEP": app.step}
    if app.init is not None:
        defines["MICRO_APP_INIT"] = app.init
    defines |= {
        "MICRO_APP_INPUT_BYTES": str(app.input_bytes),
        "MICRO_APP_OUTPUT_MAX_BYTES": str(app.output_max_bytes),
        "MICRO_APP_IN_BLOCK_RECORDS": str(records),
        "MICRO_APP_OUT_BLOCK_BYTES": str(out_block),
    }
    return defines | dict(app.defines)
