"""The scalar library's micro-kernels as :class:`~micro.kernels.dsp.dot_product.DotKernels`.

* ``micro_scalar_dot_q7`` (``c/scalar/dot_product.c``): ``acc[o] += x . w[o * w_stride:][:len]``
  for any shape, four outputs per pass, with ``micro_dsp_dot_q7``'s arguments, so that the
  plain and gathered intrinsics of :func:`~micro.kernels.dsp.dot_product.dot_q7_intrin` call it;
* ``micro_scalar_dot_q7x4`` (same source): ``micro_dsp_dot_q7x4``'s arguments and interleaved
  layout (:func:`~micro.kernels.dsp.dot_product.dot_q7x4_intrin`), eight outputs per pass on
  Armv7-M (Armv6-M builds do not interleave: :func:`kernels_for`);
* ``micro_scalar_dot_q7q4`` (same source): int8 activations times packed 4-bit weights with
  ``micro_dsp_dot_q7q4``'s arguments (:func:`~micro.kernels.dsp.dot_product.dot_q7q4_intrin`),
  four outputs per pass, a nibble extracted by SBFX (Armv7-M) or two shifts (Armv6-M);
* ``micro_scalar_requantize_q7`` (``c/scalar/requantize.c``): the cluster-gated operator's
  requantization with ``micro_dsp_requantize_q7``'s arguments.
"""

from __future__ import annotations

from ..dsp.dot_product import DotKernels

DOT_KERNEL = "micro_scalar_dot_q7"
DOT_X4_KERNEL = "micro_scalar_dot_q7x4"
DOT_Q4_KERNEL = "micro_scalar_dot_q7q4"
REQUANTIZE_KERNEL = "micro_scalar_requantize_q7"

#: Armv7-M: gathered weights whose lengths are multiples of 4 interleaved as dsp's
#: ``[k, n/4, L/4, 4, 4]`` for ``micro_scalar_dot_q7x4`` (eight outputs per pass, immediate
#: offsets), other gathered weights transposed (reduction innermost); packed 4-bit weights on
#: ``micro_scalar_dot_q7q4``.
SCALAR_KERNELS = DotKernels(plain=DOT_KERNEL, interleaved=DOT_X4_KERNEL, packed_q4=DOT_Q4_KERNEL,
                            requantize=REQUANTIZE_KERNEL, rule=DOT_KERNEL)

#: Armv6-M: no interleaved layout (LDRSB takes no immediate offset there: rows at a common
#: index suit it better), gathered weights transposed. The same plain kernel and rule, so that
#: a module prepared for either set tensorizes with :data:`SCALAR_KERNELS` (the weight's rank
#: tells the layout).
SCALAR_KERNELS_V6M = DotKernels(plain=DOT_KERNEL, interleaved=None, packed_q4=DOT_Q4_KERNEL,
                                requantize=REQUANTIZE_KERNEL, rule=DOT_KERNEL)


def kernels_for(isa: str) -> DotKernels:
    """The kernel set of a board's ISA (``Board.isa``): :data:`SCALAR_KERNELS_V6M` on Armv6-M,
    :data:`SCALAR_KERNELS` otherwise."""
    return SCALAR_KERNELS_V6M if isa.split("+")[0] == "armv6-m" else SCALAR_KERNELS
