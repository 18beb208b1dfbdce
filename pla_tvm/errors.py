"""Exceptions raised by pla-tvm.

Every error a user can cause (a missing file, a malformed dataset, a model of the wrong shape)
raises a subclass of :class:`PlaTvmError` whose message names the offending file or value and
what was expected, so the command line can print it as one sentence instead of a traceback.
"""

from __future__ import annotations


class PlaTvmError(Exception):
    """Base class of all errors pla-tvm raises on purpose."""


class DataError(PlaTvmError, ValueError):
    """A dataset file or record exists but its content is unusable."""


class DataNotFoundError(PlaTvmError, FileNotFoundError):
    """A dataset could not be found locally nor downloaded."""


class ModelError(PlaTvmError, ValueError):
    """A model file is missing, corrupt, or not the kind of model expected."""
