"""Export a built model as a self-contained C library for a firmware someone else wrote.

:func:`build` writes a whole QEMU project: the model (``model.c``, ``kernels.c``), the
micro-kernels it calls, runtime helpers, and the harness, start-up code and linker script that
make it a runnable image. :func:`export` takes the first three out of a built firmware folder:

* ``include/NAME.h`` -- the API: ``int NAME_run(const void* input, void* output)`` and the
  ``NAME_*`` constants (sizes, quantization, static RAM);
* ``src/`` -- the model, the micro-kernels and the workspace allocator, every global symbol
  renamed to carry the prefix ``NAME_`` so that several exported models link into one image;
* ``NAME.mk`` (a Makefile fragment), ``CMakeLists.txt``, ``README.md`` (compiler flags for the
  core, footprint) and a versioned ``metadata.json``.

Nothing of the QEMU project comes along: no ``main``, start-up code, vector table, linker script,
semihosting, heap or the sources of an app (:class:`micro.App`) built around the model; the
model's buffers are static. The library is built for the firmware's board (its core's
instructions and float ABI) and only from C kernels (``backend="c"``).

The renaming is checked, not assumed: every source is compiled for the board with
``-Wall -Wextra -Werror`` before and after, and the defined global symbols of the result must all
carry the prefix.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .api import Firmware
from .errors import ExportError
from .firmware import COMPILE_FLAGS
from .proc import run_command

#: Version of the exported folder's layout (``metadata.json``'s ``format_version``).
EXPORT_FORMAT_VERSION = 1
#: ``metadata.json``'s ``format``: what tells an exported library from a firmware folder, whose
#: metadata file has the same name.
EXPORT_FORMAT = "micro-c-library"

#: Project files that make the QEMU image, not the model: left out of a library.
QEMU_PROJECT_FILES = frozenset({
    "startup.c", "harness.c", "micro_config.h", "linker.ld",
    "micro_llvm.c", "micro_softfloat.c",  # glue for LLVM kernels only
})

#: Warnings an exported library is built with (any warning fails the export).
WARNING_FLAGS = ("-Wall", "-Wextra", "-Werror")

_PREFIX_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


@dataclass(frozen=True)
class Library:
    """An exported C library.

    Attributes
    ----------
    out_dir : Path
        Its folder.
    prefix : str
        The prefix of its API and of every global symbol it defines.
    header : Path
        ``include/PREFIX.h``.
    sources : tuple of Path
        The C sources (``src/*.c``).
    symbols : tuple of str
        The global symbols its objects define (all prefixed).
    """

    out_dir: Path
    prefix: str
    header: Path
    sources: tuple[Path, ...]
    symbols: tuple[str, ...]


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it can start C identifiers; raise :class:`ExportError` otherwise."""
    if not _PREFIX_RE.fullmatch(prefix or ""):
        raise ExportError(f"prefix {prefix!r} is not usable: expected a letter then up to 31 "
                          f"letters, digits or underscores (it starts every C symbol)")
    return prefix


def _defined_globals(firmware: Firmware, sources: list[Path], include: list[Path],
                     build_dir: Path) -> dict[Path, list[str]]:
    """Compile each source for the board (warnings are errors) and list its defined globals."""
    flags = [*firmware.board.gcc_flags, *COMPILE_FLAGS,
             *(flag for flag in WARNING_FLAGS if flag not in COMPILE_FLAGS),
             *(f"-I{path}" for path in include)]
    symbols = {}
    for source in sources:
        obj = build_dir / f"{source.stem}.o"
        result = run_command([firmware.toolchain.gcc, *flags, "-c", source, "-o", obj])
        if result.returncode != 0:
            raise ExportError(f"{source.name} does not compile warning-free for "
                              f"{firmware.board.name} with {' '.join(WARNING_FLAGS)}:\n"
                              f"{(result.stdout + result.stderr).strip()[-3000:]}")
        listing = run_command([firmware.toolchain.nm, "-g", "--defined-only", obj])
        if listing.returncode != 0:
            raise ExportError(f"nm failed on {obj}: {listing.stderr.strip()}")
        symbols[source] = [line.split()[-1] for line in listing.stdout.splitlines()
                           if len(line.split()) == 3]
    return symbols


def _renamed(text: str, names: Mapping[str, str]) -> str:
    """``text`` with every whole-word occurrence of a key of ``names`` replaced (also inside
    inline assembly strings, where micro-kernels name their helpers)."""
    if not names:
        return text
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names), key=len,
                                                    reverse=True)) + r")\b")
    return pattern.sub(lambda match: names[match.group(1)], text)


def _c_float(value: float) -> str:
    return f"{float(value)!r}f" if "e" in repr(float(value)) or "." in repr(float(value)) \
        else f"{float(value)!r}.0f"


def _header(firmware: Firmware, prefix: str) -> str:
    """``include/PREFIX.h``: the API and its constants."""
    upper = prefix.upper()
    quantization = firmware.quantization or {}
    memory = firmware.memory or {}
    lines = [
        f"/* {prefix}: a model compiled by micro for {firmware.board.name} "
        f"({firmware.board.cpu}); generated, do not edit. */",
        f"#ifndef {upper}_H_",
        f"#define {upper}_H_",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        f"/* Input: {firmware.input.dtype} {list(firmware.input.shape)}; output: "
        f"{firmware.output.dtype} {list(firmware.output.shape)} (row-major, little-endian). */",
        f"#define {upper}_INPUT_BYTES {firmware.input.nbytes}",
        f"#define {upper}_OUTPUT_BYTES {firmware.output.nbytes}",
    ]
    for role in ("input", "output"):
        q = quantization.get(role)
        word = role.upper()
        if q:
            lines += [f"/* real value = {upper}_{word}_SCALE * (q - {upper}_{word}_ZERO_POINT) */",
                      f"#define {upper}_{word}_SCALE {_c_float(q['scale'])}",
                      f"#define {upper}_{word}_ZERO_POINT {int(q['zero_point'])}"]
        else:
            lines += [f"/* the {role} is not quantized ({getattr(firmware, role).dtype}): "
                      f"scale 1, zero point 0 */",
                      f"#define {upper}_{word}_SCALE 1.0f",
                      f"#define {upper}_{word}_ZERO_POINT 0"]
    arena = memory.get("arena_bytes", 0) + memory.get("workspace_bytes", 0)
    lines += [
        "/* Static RAM the model keeps for its intermediate tensors and kernel workspace (inside",
        " * the library, .bss; the caller provides only the input and output buffers). */",
        f"#define {upper}_ARENA_BYTES {arena}",
        "",
        f"/* Run one inference: reads {upper}_INPUT_BYTES bytes from input and writes",
        f" * {upper}_OUTPUT_BYTES bytes to output.",
        " * Returns 0 on success, a kernel's non-zero status otherwise. Not reentrant: one call at",
        " * a time (the intermediate tensors are static). */",
        f"int {prefix}_run(const void* input, void* output);",
        "",
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        f"#endif /* {upper}_H_ */",
        "",
    ]
    return "\n".join(lines)


def _makefile(prefix: str, sources: list[str], flags: list[str]) -> str:
    var = prefix.upper()
    return "\n".join([
        f"# {prefix}: include this fragment from your Makefile, then add $({var}_SRCS) to your",
        f"# sources and $({var}_CFLAGS) to their flags (or compile them with your own flags for "
        "the same core).",
        f"{var}_DIR := $(dir $(lastword $(MAKEFILE_LIST)))",
        f"{var}_SRCS := " + " ".join(f"$({var}_DIR)src/{name}" for name in sources),
        f"{var}_INCLUDES := -I$({var}_DIR)include -I$({var}_DIR)src",
        f"{var}_CFLAGS := {' '.join(flags)} $({var}_INCLUDES)",
        "",
    ])


def _cmake(prefix: str, sources: list[str], flags: list[str]) -> str:
    return "\n".join([
        "cmake_minimum_required(VERSION 3.13)",
        f"# {prefix}: add_subdirectory() this folder and link the {prefix} target; set your "
        "toolchain for the core (see README.md).",
        f"project({prefix} C)",
        f"add_library({prefix} STATIC",
        *(f"  src/{name}" for name in sources),
        ")",
        f"target_include_directories({prefix} PUBLIC include PRIVATE src)",
        f"target_compile_options({prefix} PRIVATE {' '.join(flags)})",
        f"target_link_libraries({prefix} PUBLIC m)",
        "",
    ])


def _readme(firmware: Firmware, prefix: str, sources: list[str], flags: list[str]) -> str:
    footprint = firmware.footprint
    upper = prefix.upper()
    return "\n".join([
        f"# {prefix}: a model compiled by micro",
        "",
        f"Built for **{firmware.board.name}** ({firmware.board.description}). The kernels use "
        f"this core's instructions: compile for the same core (or a compatible one).",
        "",
        "## Use",
        "",
        "```c",
        f'#include "{prefix}.h"',
        "",
        f"int8_t input[{upper}_INPUT_BYTES];   /* quantized: q = x / {upper}_INPUT_SCALE + "
        f"{upper}_INPUT_ZERO_POINT */",
        f"int8_t output[{upper}_OUTPUT_BYTES];",
        f"int status = {prefix}_run(input, output);  /* 0 on success */",
        "```",
        "",
        "The library has no `main`, start-up code, vector table, linker script, semihosting or "
        "heap; its buffers are static (`.bss`), so one inference runs at a time. Every global "
        f"symbol it defines starts with `{prefix}_`: several exported models link into one "
        "firmware. It needs the C library's `memset`/`memcpy` and libm.",
        "",
        "## Build",
        "",
        f"Sources: {', '.join(f'`src/{name}`' for name in sources)}; include folders `include` "
        "(the API) and `src`.",
        "",
        f"Compiler flags (arm-none-eabi-gcc; checked warning-free with "
        f"`{' '.join(WARNING_FLAGS)}`): `{' '.join(flags)}`",
        "",
        f"- Make: `include {prefix}/{prefix}.mk`, then compile `$({upper}_SRCS)` with "
        f"`$({upper}_CFLAGS)`.",
        f"- CMake: `add_subdirectory({prefix})` and `target_link_libraries(app {prefix})`.",
        "",
        "## Footprint (measured in micro's firmware for this board)",
        "",
        f"- model flash: {footprint.model_flash_bytes:,} B",
        f"- model RAM (static tensors, workspace, input and output buffers): "
        f"{footprint.model_ram_bytes:,} B",
        "",
    ])


def _digest(paths: list[Path]) -> str:
    sha = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        sha.update(path.name.encode() + b"\0" + path.read_bytes())
    return sha.hexdigest()


def export(firmware: Firmware | str | os.PathLike, out_dir: str | os.PathLike, prefix: str,
           *, provenance: Mapping[str, Any] | None = None) -> Library:
    """Write a built model as a C library (see the module docstring for its content).

    Parameters
    ----------
    firmware : Firmware or path
        What :func:`build` returned, or its ``out_dir`` (loaded with :meth:`Firmware.load`).
    out_dir : str or path
        The library's folder; must not exist or be empty. It is written in a temporary
        sibling and renamed into place, so an error leaves nothing behind.
    prefix : str
        Starts the API (``PREFIX_run``, ``PREFIX_INPUT_BYTES`` …) and every global symbol.
    provenance : mapping, optional
        Recorded in ``metadata.json`` (for example the source model's path and SHA-256).

    Returns
    -------
    Library

    Raises
    ------
    ExportError
        For an unusable prefix, a firmware built with LLVM kernels, an ``out_dir`` that is a
        file or holds files, a source that does not compile warning-free for the board, or a
        global symbol left without the prefix.
    """
    check_prefix(prefix)
    if not isinstance(firmware, Firmware):
        firmware = Firmware.load(firmware)
    if firmware.backend != "c":
        raise ExportError(f"{firmware.out_dir}: built with {firmware.backend} kernels; a C library "
                          f"needs C kernels (build with backend='c')")
    out_dir = Path(out_dir)
    if out_dir.is_file() or (out_dir.is_dir() and any(out_dir.iterdir())):
        raise ExportError(f"{out_dir}: exists and is not an empty folder; choose a new one")
    src = firmware.out_dir / "src"
    app_files = {path.name for path in firmware.app.sources} if firmware.app else set()
    files = sorted(path for path in src.iterdir()
                   if path.suffix in (".c", ".h") and path.name not in QEMU_PROJECT_FILES
                   and path.name not in app_files)
    for path in files:
        included = set(re.findall(r'#include\s+"([^"]+)"', path.read_text(encoding="utf-8")))
        if included & QEMU_PROJECT_FILES:
            raise ExportError(f"{path} includes {', '.join(sorted(included & QEMU_PROJECT_FILES))}"
                              f", part of the QEMU project, not of the model (built by an older "
                              f"micro?); build the firmware again")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        lib_src, include = staging / "src", staging / "include"
        lib_src.mkdir()
        include.mkdir()
        with tempfile.TemporaryDirectory(prefix="micro-export-") as scratch:
            scratch = Path(scratch)
            originals = [path for path in files if path.suffix == ".c"]
            found = _defined_globals(firmware, originals, [src], scratch)
            names = {symbol: (f"{prefix}_run" if symbol == "model_run" else f"{prefix}_{symbol}")
                     for symbols in found.values() for symbol in symbols
                     if not symbol.startswith(f"{prefix}_")}
            for path in files:
                (lib_src / path.name).write_text(
                    _renamed(path.read_text(encoding="utf-8"), names), encoding="utf-8")
            (include / f"{prefix}.h").write_text(_header(firmware, prefix), encoding="utf-8")
            sources = sorted(lib_src.glob("*.c"))
            renamed = _defined_globals(firmware, sources, [include, lib_src], scratch)
        symbols = sorted(symbol for found in renamed.values() for symbol in found)
        bare = [symbol for symbol in symbols if not symbol.startswith(f"{prefix}_")]
        if bare:
            raise ExportError(f"global symbol(s) without the prefix {prefix}_ after renaming: "
                              f"{', '.join(bare)}")
        if f"{prefix}_run" not in symbols:
            raise ExportError(f"{firmware.out_dir}: no model_run entry point in its sources")
        names_c = [path.name for path in sources]
        flags = [*firmware.board.gcc_flags, *COMPILE_FLAGS]
        (staging / f"{prefix}.mk").write_text(_makefile(prefix, names_c, flags), encoding="utf-8")
        (staging / "CMakeLists.txt").write_text(_cmake(prefix, names_c, flags), encoding="utf-8")
        (staging / "README.md").write_text(_readme(firmware, prefix, names_c, flags),
                                           encoding="utf-8")
        metadata = {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_FORMAT_VERSION,
            "prefix": prefix,
            "board": firmware.board.name,
            "cpu": firmware.board.cpu,
            "compile_flags": flags,
            "backend": firmware.backend,
            "firmware": str(firmware.out_dir.resolve()),
            "sources_sha256": _digest([*sources, include / f"{prefix}.h"]),
            "input": {"dtype": firmware.input.dtype, "shape": list(firmware.input.shape),
                      "bytes": firmware.input.nbytes},
            "output": {"dtype": firmware.output.dtype, "shape": list(firmware.output.shape),
                       "bytes": firmware.output.nbytes},
            "quantization": firmware.quantization,
            "footprint": firmware.footprint.as_dict(),
            "memory": firmware.memory,
            "symbols": symbols,
            "provenance": dict(provenance or {}),
        }
        (staging / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True)
                                               + "\n", encoding="utf-8")
        if out_dir.is_dir():
            out_dir.rmdir()  # empty, checked above
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Library(out_dir=out_dir, prefix=prefix, header=out_dir / "include" / f"{prefix}.h",
                   sources=tuple(out_dir / "src" / name for name in names_c),
                   symbols=tuple(symbols))
