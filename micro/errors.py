"""Exceptions raised by :mod:`micro`.

Every failure a user can meet while compiling a model for a board or running it in QEMU has its
own class, so callers can catch exactly what they can recover from (a missing toolchain, a model
too large for the board) and let the rest propagate. All of them derive from :class:`MicroError`.
"""

from __future__ import annotations

INSTALL_HINT = (
    "sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
    " (or `make setup`)"
)


class MicroError(Exception):
    """Base class of every error raised by :mod:`micro`."""


class UnknownBoardError(MicroError, KeyError):
    """The board name is not in ``micro/templates/boards.json``."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ToolchainNotFoundError(MicroError):
    """``arm-none-eabi-gcc``, a binutils tool or ``qemu-system-arm`` is not installed."""


class SandboxUnavailableError(MicroError):
    """Firmware runs must be confined (:mod:`micro.sandbox`), and ``bwrap`` is missing or cannot
    create its namespaces."""


class UnsupportedModelError(MicroError):
    """The Relax module uses something the ahead-of-time generator cannot lower.

    Examples: dynamic shapes, several inputs or outputs, an operator left after legalization.
    """


class BuildError(MicroError):
    """Kernel generation, compilation or linking failed; the message holds the tool output."""


class ModelTooLargeError(MicroError):
    """The model (or the whole image) does not fit the board's flash or RAM."""


class ExportError(MicroError):
    """A built model could not be exported as a C library (:func:`micro.export`)."""


class MetadataError(MicroError):
    """A firmware folder's ``metadata.json`` is missing, unreadable or of another format version,
    or names a board or image that is not there (:meth:`micro.Firmware.load`)."""


class InvalidInputError(MicroError, ValueError):
    """Inputs given to :func:`micro.run` do not match the model's input shape or dtype."""


class InvalidAppError(MicroError, ValueError):
    """A :class:`micro.App` field is invalid (the message names it), or an app source clashes with
    a file of the firmware project."""


class FirmwareError(MicroError):
    """The firmware ran but did not finish normally (bad exit code or missing report lines)."""


class FirmwareFaultError(FirmwareError):
    """The firmware took a Cortex-M fault (HardFault, MemManage, BusFault, UsageFault, ...).

    Attributes
    ----------
    fault : str
        Name of the fault handler that ran, e.g. ``"UsageFault"``.
    """

    def __init__(self, message: str, fault: str) -> None:
        super().__init__(message)
        self.fault = fault


class FirmwareTimeoutError(FirmwareError):
    """QEMU did not finish within the time limit (the firmware hangs); the process was killed."""
