/* int8 depthwise convolution on the DSP extension: SMLAD on two adjacent taps of one channel.
 *
 * The window holds int16 activations channel-major (widened once per pass by the TIR kernel
 * that calls this), so a word read at any position's column holds two consecutive taps; the
 * weights are int16 pairs of taps per channel. One SMLAD adds two products. Per channel the
 * weight words stay in registers (kernels up to 8 taps) while four positions are computed at
 * a time, each writing its int32 accumulator or adding onto it: per position one LDR and one
 * SMLAD per two taps, plus the accumulator's store (and its load when adding). Positions start at any column, so
 * the activation words may be unaligned (LDR allows it on these cores; LDRD would not). The
 * int32 sums equal the scalar loop's (SMLAD wraps like two's-complement addition), so results
 * are bit-exact. */
#include "depthwise.h"

#include <stdint.h>
#include <string.h>

#if !defined(__ARM_FEATURE_DSP) || !__ARM_FEATURE_DSP
#error "depthwise.c needs a core with the Arm DSP extension (SMLAD)"
#endif
#include <arm_acle.h>


/* One channel over all positions. Inlined with a constant `pairs` for short kernels, so that
 * the tap loops unroll and the weights are registers. */
static inline __attribute__((always_inline)) void channel(const int16_t* x, const int16_t* w,
                                                          int32_t* acc, int32_t positions,
                                                          int32_t stride, int32_t acc_step,
                                                          int32_t pairs, int32_t accumulate) {
  int32_t held[MICRO_DW_HELD];
#pragma GCC unroll 4
  for (int32_t t = 0; t < MICRO_DW_HELD; ++t) held[t] = t < pairs ? pair_at(w + 2 * t) : 0;
  int32_t p = 0;
  for (; p + 3 < positions; p += 4) {
    const int16_t* x0 = x + p * stride;
    int32_t* a = acc + p * acc_step;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    if (accumulate) s0 = a[0], s1 = a[acc_step], s2 = a[2 * acc_step], s3 = a[3 * acc_step];
#pragma GCC unroll 4
    for (int32_t t = 0; t < pairs; ++t) {
      int32_t wt = t < MICRO_DW_HELD ? held[t] : pair_at(w + 2 * t);
      s0 = __smlad(pair_at(x0 + 2 * t), wt, s0);
      s1 = __smlad(pair_at(x0 + stride + 2 * t), wt, s1);
      s2 = __smlad(pair_at(x0 + 2 * stride + 2 * t), wt, s2);
      s3 = __smlad(pair_at(x0 + 3 * stride + 2 * t), wt, s3);
    }
    a[0] = s0;
    a[acc_step] = s1;
    a[2 * acc_step] = s2;
    a[3 * acc_step] = s3;
  }
  for (; p < positions; ++p) {
    const int16_t* x0 = x + p * stride;
    int32_t s = accumulate ? acc[p * acc_step] : 0;
#pragma GCC unroll 4
    for (int32_t t = 0; t < pairs; ++t) {
      int32_t wt = t < MICRO_DW_HELD ? held[t] : pair_at(w + 2 * t);
      s = __smlad(pair_at(x0 + 2 * t), wt, s);
    }
    acc[p * acc_step] = s;
  }
}

int32_t micro_dsp_depthwise_q15(void* window, void* weight, void* acc, int32_t positions,
                                int32_t channels, int32_t pairs, int32_t stride,
                                int32_t channel_step, int32_t weight_step, int32_t acc_step,
                                int32_t accumulate) {
  const int16_t* x = window;
  const int16_t* w = weight;
  int32_t* out = acc;
  /* Constant strides and tap counts let the loops unroll and the positions of a block share
   * the words they have in common: specialised for writing (a one-row kernel, the usual case);
   * adding (the later rows of a 2-D kernel) takes the general loop, to keep the code small. */
#define CHANNEL(STRIDE, PAIRS) channel(x, w, out, positions, STRIDE, acc_step, PAIRS, 0)
  for (int32_t c = 0; c < channels; ++c, x += channel_step, w += weight_step, ++out) {
    switch (accumulate ? 0 : pairs * 4 + (stride < 3 ? stride : 3)) {
      case 1 * 4 + 1: CHANNEL(1, 1); break;
      case 1 * 4 + 2: CHANNEL(2, 1); break;
      case 2 * 4 + 1: CHANNEL(1, 2); break;
      case 2 * 4 + 2: CHANNEL(2, 2); break;
      case 3 * 4 + 1: CHANNEL(1, 3); break;
      case 3 * 4 + 2: CHANNEL(2, 3); break;
      case 4 * 4 + 1: CHANNEL(1, 4); break;
      case 4 * 4 + 2: CHANNEL(2, 4); break;
      default: channel(x, w, out, positions, stride, acc_step, pairs, accumulate); break;
    }
  }
#undef CHANNEL
  return 0;
}
