"""The scalar library's micro-kernels as :class:`~micro.kernels.dsp.dot_product.DotKernels`.

* ``micro_scalar_dot_q7`` (``c/scalar/dot_product.c``): ``acc[o] += x . w[o * w_stride:][:len]``
  for any shape, four outputs per pass, with ``micro_dsp_dot_q7``'s arguments, so that the
  plain and gathered intrinsics of :func:`~micro.kernels.dsp.dot_product.dot_q7_intrin` call it;
* ``micro_scalar_requantize_q7`` (``c/scalar/requantize.c``): the cluster-gated operator's
  requantization with ``micro_dsp_requantize_q7``'s arguments.
"""

from __future__ import annotations

from ..dsp.dot_product import DotKernels

DOT_KERNEL = "micro_scalar_dot_q7"
REQUANTIZE_KERNEL = "micro_scalar_requantize_q7"

#: No interleaved and no 4-bit kernel: gathered weights are transposed (reduction innermost),
#: packed 4-bit dot products keep TVM's lowering.
SCALAR_KERNELS = DotKernels(plain=DOT_KERNEL, interleaved=None, packed_q4=None,
                            requantize=REQUANTIZE_KERNEL, rule=DOT_KERNEL)
