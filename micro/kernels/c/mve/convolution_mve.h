/* Helium (MVE) int8 convolution micro-kernel for the Cortex-M55 (Armv8.1-M with MVE).
 * Called from TIR kernels tensorized by micro/kernels/dsp/convolution.py in its "int8" form for
 * the MVE library (see docs/isa-mve.md). */
#ifndef MICRO_MVE_CONVOLUTION_H_
#define MICRO_MVE_CONVOLUTION_H_

#include <stdint.h>

/* acc[p * acc_step + o] = sum_{k < rows} sum_{r < n}
 *     window[k * row_step + p * window_step + r] * weight[(o * rows + k) * n + r]
 * for p < positions and o < outputs (int32, wrapping), written, not added. window: int8, the n
 * values of a kernel row of a position contiguous (NWC: n = KW * C), any alignment. weight:
 * int8, per output and kernel row its n values. acc: int32, word aligned. Two positions by two
 * outputs per pass of a tail-predicated loop over 16 values: 9 instructions per 64 MACs.
 * Returns 0. */
int32_t micro_mve_conv_q7(void* window, void* weight, void* acc, int32_t n, int32_t rows,
                          int32_t row_step, int32_t positions, int32_t window_step,
                          int32_t outputs, int32_t acc_step);

#endif
