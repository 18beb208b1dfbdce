/* int8 convolution micro-kernels for cores without the DSP extension: Armv6-M (Cortex-M0/M0+)
 * and Armv7-M (Cortex-M3). Called from TIR kernels tensorized by micro/kernels/dsp/convolution.py
 * and depthwise.py for the scalar library (see docs/isa-armv7m.md). They have the contracts of
 * the DSP library's kernels of the same names (micro/kernels/c/dsp/convolution.h, widen.h,
 * depthwise.h), so that the DSP library's lowering and schedules serve these cores too. */
#ifndef MICRO_SCALAR_CONVOLUTION_H_
#define MICRO_SCALAR_CONVOLUTION_H_

#include <stdint.h>

/* micro_dsp_conv_q15q7's contract: acc[p * acc_step + o] = sum_{k < rows} sum_{r < 4 * quads}
 * window[k * row_step + p * window_step + r] * weight(o, k, r), written, for p < positions and
 * o < 2 * pairs; the int16 window's quads in the order (v0, v2, v1, v3), the int8 weights per
 * pair of outputs, kernel row and quad the first output's four bytes then the second's. Two
 * positions by two outputs per pass: per quad 8 LDRSH, 8 LDRSB and 16 MLA on Armv7-M. */
int32_t micro_scalar_conv_q15q7(void* window, void* weight, void* acc, int32_t quads,
                                int32_t rows, int32_t row_step, int32_t positions,
                                int32_t window_step, int32_t pairs, int32_t acc_step);

/* micro_dsp_widen_rows_q7's contract: for r < rows, q < quads, x = input + r * in_step + 4 q
 * (int8), y = window + r * out_step + 4 q (int16): y = (x[0], x[2], x[1], x[3]). */
int32_t micro_scalar_widen_rows_q7(void* input, void* window, int32_t rows, int32_t quads,
                                   int32_t in_step, int32_t out_step);

/* micro_dsp_depthwise_q15's contract: acc[p * acc_step + c] (+)= sum_{t < 2 * pairs}
 * window[c * channel_step + p * stride + t] * weight[c * weight_step + t] (int16 window and
 * taps, int32 wrapping) for p < positions, c < channels; added if `accumulate`, else written. */
int32_t micro_scalar_depthwise_q15(void* window, void* weight, void* acc, int32_t positions,
                                   int32_t channels, int32_t pairs, int32_t stride,
                                   int32_t channel_step, int32_t weight_step, int32_t acc_step,
                                   int32_t accumulate);

#endif
