/* Helium (MVE) int8 convolution micro-kernel for the Cortex-M55 (Armv8.1-M with MVE).
 * Called from TIR kernels tensorized by micro/kernels/dsp/convolution.py for the MVE library
 * (see docs/isa-mve.md). */
#ifndef MICRO_MVE_CONVOLUTION_H_
#define MICRO_MVE_CONVOLUTION_H_

#include <stdint.h>

/* The contract of micro_dsp_conv_q15q7 (micro/kernels/c/dsp/convolution.h), on Helium vectors:
 * acc[p * acc_step + o] = sum_{k < rows} sum_{r < 4 * quads}
 *     window[k * row_step + p * window_step + r] * weight(o, k, r)
 * for p < positions and o < 2 * pairs (int32, wrapping), written, not added. The window is int16
 * (quads in SXTB16's order), the weights int8 as pairs of outputs: per pair, kernel row and quad
 * the first output's four bytes then the second's. Two positions by two outputs per pass of a
 * tail-predicated loop over eight window values: 10 instructions per 32 MACs. Returns 0. */
int32_t micro_mve_conv_q15q7(void* window, void* weight, void* acc, int32_t quads, int32_t rows,
                             int32_t row_step, int32_t positions, int32_t window_step,
                             int32_t pairs, int32_t acc_step);

#endif
