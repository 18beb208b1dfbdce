/* int8 convolution micro-kernel for Cortex-M cores with the DSP extension (M4, M7, M33).
 * Called from TIR kernels tensorized by micro/kernels/dsp/convolution.py (see docs/dsp.md). */
#ifndef MICRO_DSP_CONVOLUTION_H_
#define MICRO_DSP_CONVOLUTION_H_

#include <stdint.h>

/* acc[p * acc_step + o] = sum_{k < rows} sum_{r < 4 * quads}
 *     window[k * row_step + p * window_step + r] * weight(o, k, r)
 * for p < positions and o < 2 * pairs (int32, wrapping): the sums are written, not added to what
 * acc held. Returns 0.
 *
 * window: int16 activations of the kernel rows of a row of input positions, in each quad of four
 *   consecutive values the order (v0, v2, v1, v3) (what SXTB16 makes of four int8 values),
 *   `window_step` values between the windows of two output positions and `row_step` between two
 *   kernel rows; 4-byte aligned, window_step and row_step even.
 * weight: int8, for each pair of outputs, kernel row and quad the first output's four bytes then
 *   the second's (v0..v3 in natural order): 8 * quads * rows bytes per pair, pairs contiguous.
 * acc: int32, 4-byte aligned, `acc_step` values between the sums of two positions.
 * The pointers are void* because that is how TVM's C code generator declares an extern function
 * called with buffer addresses. */
int32_t micro_dsp_conv_q15q7(void* window, void* weight, void* acc, int32_t quads, int32_t rows,
                             int32_t row_step, int32_t positions, int32_t window_step,
                             int32_t pairs, int32_t acc_step);

#endif
