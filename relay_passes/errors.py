"""Errors raised by the relay_passes package.

Every failure of a pass or of parameter validation raises a subclass of :class:`PassError`, so a
caller (the pla_tvm pipeline, a notebook) can catch one type. Messages say what was looked for and
what was found, because the usual cause is a model or parameter file that does not match.

Passes run through TVM's FFI (``Pass.__call__`` -> C++ ``RunPass`` -> the Python pass), which turns
unknown Python exceptions into ``RuntimeError``; registering the classes with
``tvm_ffi.register_error`` makes the caller see the original class again.
"""

import tvm_ffi


@tvm_ffi.register_error
class PassError(Exception):
    """Base class of every error raised by relay_passes."""


@tvm_ffi.register_error
class ParameterError(PassError, ValueError):
    """Operator parameters have a wrong shape, dtype or value (the message names the field)."""


@tvm_ffi.register_error
class BoundaryNotFoundError(PassError):
    """The trunk/head boundary tensor could not be found in the module."""


@tvm_ffi.register_error
class ParameterMismatchError(PassError):
    """The parameters do not fit the module (feature size, input length, dtype or quantization)."""


@tvm_ffi.register_error
class UnsupportedPatternError(PassError):
    """A graph construct that a pass needs to rewrite has a form the pass does not handle."""
