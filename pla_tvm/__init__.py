"""pla-tvm: compress a 1-D ResNet ECG classifier by piecewise linear approximation (PLA),
swap it into the TVM (Relax) graph, and run it on bare-metal Cortex-M firmware under QEMU.

Subpackages: :mod:`pla_tvm.data` (ECG beats from UCR files and PhysioNet records) and the command
line in :mod:`pla_tvm.cli`. The compiler side lives in the sibling packages ``relay_passes``
(Relax passes) and ``micro`` (Relax to Cortex-M firmware), which do not depend on this one.
"""

__version__ = "0.1.0"
