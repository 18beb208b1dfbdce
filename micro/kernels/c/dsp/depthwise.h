/* int8 depthwise convolution micro-kernel for Cortex-M cores with the DSP extension (M4, M7,
 * M33). Called from TIR kernels tensorized by micro/kernels/dsp/depthwise.py. */
#ifndef MICRO_DSP_DEPTHWISE_H_
#define MICRO_DSP_DEPTHWISE_H_

#include <stdint.h>
#include <string.h>

/* acc[p * acc_step + c] (+)= sum_{t < 2 * pairs} window[c * channel_step + p * stride + t]
 *                                               * weight[c * weight_step + t]
 * for p < positions and c < channels (int32, wrapping): added onto acc if `accumulate` is
 * nonzero, else written (acc's previous values are not read). Returns 0.
 *
 * window: int16 activations of one kernel row, channel-major: the `channel_step` values of a
 *   channel are consecutive input columns, so the taps of a position are adjacent values
 *   (`channel_step` 0: every channel reads the same row, a one-channel convolution).
 * weight: int16 taps of each channel, 2 * pairs of them (a zero tap appended to an odd kernel),
 *   `weight_step` values (even) between channels; 4-byte aligned.
 * acc: int32, `acc_step` values between the accumulators of two positions.
 * The pointers are void* because that is how TVM's C code generator declares an extern function
 * called with buffer addresses. */
int32_t micro_dsp_depthwise_q15(void* window, void* weight, void* acc, int32_t positions,
                                int32_t channels, int32_t pairs, int32_t stride,
                                int32_t channel_step, int32_t weight_step, int32_t acc_step,
                                int32_t accumulate);

/* depthwise_requantize.c (its own file, so that only the builds that call it count its code): */
/* The one-row sums above (written, as with accumulate = 0) requantized as
 * micro_dsp_requantize_table_q7 does (requantize.h: `table` holds four int32 per channel, bias,
 * mult, e - 1, khi) and stored as int8: out[p * out_step + c] for p < positions, c < channels,
 * clamped to [qmin, qmax] (zp is in khi). Returns 0. */
int32_t micro_dsp_depthwise_requantize_q15(void* window, void* weight, void* table, void* out,
                                           int32_t positions, int32_t channels, int32_t pairs,
                                           int32_t stride, int32_t channel_step,
                                           int32_t weight_step, int32_t out_step, int32_t zp,
                                           int32_t qmin, int32_t qmax);


/* ---- Shared by depthwise.c and depthwise_requantize.c: not part of the contract ---- */

/* Weight words kept in registers across a channel's positions. */
#define MICRO_DW_HELD 4

static inline int32_t pair_at(const int16_t* p) {
  int32_t word;
  memcpy(&word, p, sizeof(word)); /* one LDR, unaligned allowed */
  return word;
}

#endif
