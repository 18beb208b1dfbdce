"""Sub-commands of the ``pla-tvm`` command line, one module each (see :mod:`pla_tvm.cli`)."""
