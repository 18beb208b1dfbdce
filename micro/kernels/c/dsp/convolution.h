/* int8 convolution micro-kernel for Cortex-M cores with the DSP extension (M4, M7, M33).
 * Called from TIR kernels tensorized by micro/kernels/dsp/convolution.py (see docs/dsp.md). */
#ifndef MICRO_DSP_CONVOLUTION_H_
#define MICRO_DSP_CONVOLUTION_H_

#include <stdint.h>

/* acc[p * acc_step + o] += sum_{r < 4 * quads} window[p * window_step + r] * weight(o, r)
 * for p < positions and o < 2 * pairs (int32, wrapping). Returns 0.
 *
 * window: int16 activations of one row of input positions, in each quad of four consecutive
 *   values the order (v0, v2, v1, v3) (what SXTB16 makes of four int8 values), `window_step`
 *   values between the windows of two output positions; 4-byte aligned, window_step even.
 * weight: int8, for each pair of outputs the weights of both, per quad the first output's four
 *   bytes then the second's (v0..v3 in natural order), `pair_stride` bytes between pairs.
 * acc: int32, `acc_step` values between the accumulators of two positions.
 * The pointers are void* because that is how TVM's C code generator declares an extern function
 * called with buffer addresses. */
int32_t micro_dsp_conv_q15q7(void* window, void* weight, void* acc, int32_t quads,
                             int32_t positions, int32_t window_step, int32_t pairs,
                             int32_t pair_stride, int32_t acc_step);

#endif
