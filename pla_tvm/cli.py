"""The ``pla-tvm`` command line.

Each sub-command lives in its own module under :mod:`pla_tvm.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to the function that runs it.
Errors raised on purpose (:class:`pla_tvm.errors.PlaTvmError` and the compiler packages' own
error classes) are printed as one line and exit with status 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from pla_tvm import __version__
from pla_tvm.errors import PlaTvmError

#: Modules under pla_tvm.commands, in the order their commands appear in ``--help``.
COMMAND_MODULES = ("data", "train", "evaluate", "compress", "tune", "compile", "run")


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Error classes that mean "the user gave bad input", not "pla-tvm has a bug"."""
    types: list[type[BaseException]] = [PlaTvmError]
    for module_name, class_name in (("micro.errors", "MicroError"),
                                    ("relay_passes.errors", "PassError")):
        try:
            types.append(getattr(importlib.import_module(module_name), class_name))
        except (ImportError, AttributeError):
            pass
    return tuple(types)


def build_parser() -> argparse.ArgumentParser:
    """Assemble the top-level parser from the command modules."""
    parser = argparse.ArgumentParser(
        prog="pla-tvm",
        description="Compress an ECG classifier with PLA, compile it with TVM for Cortex-M, "
        "and measure it in QEMU.",
    )
    parser.add_argument("--version", action="version", version=f"pla-tvm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"pla_tvm.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except _user_error_types() as error:
        print(f"pla-tvm {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
