/* micro_dsp_depthwise_requantize_q15 (see depthwise.h and docs/dsp.md). */
#include "depthwise.h"

#include <stdint.h>

#if !defined(__ARM_FEATURE_DSP) || !__ARM_FEATURE_DSP
#error "depthwise_requantize.c needs a core with the Arm DSP extension (SMLAD, SMLAL, SSAT)"
#endif
#include <arm_acle.h>

/* ---- micro_dsp_depthwise_requantize_q15: the depthwise sums requantized as they are made ----
 *
 * A one-row depthwise pass followed by its requantization epilogue (micro_dsp_requantize_table_q7)
 * in one call (micro/kernels/dsp/fuse.py joins the two): the sums of four positions of a channel
 * never leave the registers, each is requantized with the channel's table row (bias, mult, e - 1,
 * khi: requantize.h) by the same seven instructions as the epilogue kernel's and stored as int8;
 * the int32 accumulators, their stores and loads and the epilogue's loop are gone. */

/* TFLite's requantization of x (the sum with its bias), saturated to int8 (requantize.c's
 * MICRO_RQ_SCALE after its bias add: the rounding constant's high word khi, e - 1 the shift). */
static inline __attribute__((always_inline)) int32_t scale_q7(int32_t x, int32_t mult,
                                                             int32_t e1, int32_t khi) {
  int32_t lo, hi;
  __asm__("and %[lo], %[x], #0x80000000\n\t"
          "rsbs %[lo], %[lo], #0x40000000\n\t"
          "sbc %[hi], %[khi], #0\n\t"
          "smlal %[lo], %[hi], %[x], %[mult]\n\t"
          "asr %[hi], %[hi], %[e1]\n\t"
          "ssat %[hi], #8, %[hi]\n\t"
          : [lo] "=&r"(lo), [hi] "=&r"(hi)
          : [x] "r"(x), [mult] "r"(mult), [e1] "r"(e1), [khi] "r"(khi)
          : "cc");
  return hi;
}

static inline __attribute__((always_inline)) int8_t clamp_q7(int32_t v, int32_t qmin,
                                                            int32_t qmax, int32_t clamp) {
  if (clamp) v = v < qmin ? qmin : (v > qmax ? qmax : v);
  return (int8_t)v;
}

/* One channel over all positions, its sums requantized into out (a step of out_step). */
static inline __attribute__((always_inline)) void channel_q7(
    const int16_t* x, const int16_t* w, const int32_t* t, int8_t* out, int32_t positions,
    int32_t stride, int32_t out_step, int32_t pairs, int32_t qmin, int32_t qmax, int32_t clamp) {
  int32_t held[MICRO_DW_HELD];
#pragma GCC unroll 4
  for (int32_t k = 0; k < MICRO_DW_HELD; ++k) held[k] = k < pairs ? pair_at(w + 2 * k) : 0;
  const int32_t bias = t[0], mult = t[1], e1 = t[2], khi = t[3];
  int32_t p = 0;
  for (; p + 3 < positions; p += 4) {
    const int16_t* x0 = x + p * stride;
    int8_t* o = out + p * out_step;
    int32_t s0 = bias, s1 = bias, s2 = bias, s3 = bias; /* the sums start at the bias (wrapping
                                                          * alike: the order of additions does
                                                          * not change an int32 sum) */
#pragma GCC unroll 4
    for (int32_t k = 0; k < pairs; ++k) {
      int32_t wt = k < MICRO_DW_HELD ? held[k] : pair_at(w + 2 * k);
      s0 = __smlad(pair_at(x0 + 2 * k), wt, s0);
      s1 = __smlad(pair_at(x0 + stride + 2 * k), wt, s1);
      s2 = __smlad(pair_at(x0 + 2 * stride + 2 * k), wt, s2);
      s3 = __smlad(pair_at(x0 + 3 * stride + 2 * k), wt, s3);
    }
    o[0] = clamp_q7(scale_q7(s0, mult, e1, khi), qmin, qmax, clamp);
    o[out_step] = clamp_q7(scale_q7(s1, mult, e1, khi), qmin, qmax, clamp);
    o[2 * out_step] = clamp_q7(scale_q7(s2, mult, e1, khi), qmin, qmax, clamp);
    o[3 * out_step] = clamp_q7(scale_q7(s3, mult, e1, khi), qmin, qmax, clamp);
  }
  for (; p < positions; ++p) {
    const int16_t* x0 = x + p * stride;
    int32_t s = bias;
#pragma GCC unroll 4
    for (int32_t k = 0; k < pairs; ++k) {
      int32_t wt = k < MICRO_DW_HELD ? held[k] : pair_at(w + 2 * k);
      s = __smlad(pair_at(x0 + 2 * k), wt, s);
    }
    out[p * out_step] = clamp_q7(scale_q7(s, mult, e1, khi), qmin, qmax, clamp);
  }
}

int32_t micro_dsp_depthwise_requantize_q15(void* window, void* weight, void* table, void* out,
                                           int32_t positions, int32_t channels, int32_t pairs,
                                           int32_t stride, int32_t channel_step,
                                           int32_t weight_step, int32_t out_step, int32_t zp,
                                           int32_t qmin, int32_t qmax) {
  (void)zp; /* in the table's khi */
  const int16_t* x = window;
  const int16_t* w = weight;
  const int32_t* t = table;
  int8_t* o = out;
  const int32_t clamp = !(qmin == -128 && qmax == 127);
  /* Specialised, as micro_dsp_depthwise_q15, for the usual shapes without a clamp (an int8 ReLU's
   * output zero point is -128: its clamp is the int8 range); the rest takes the general loop. */
#define CHANNEL_Q7(STRIDE, PAIRS) \
  channel_q7(x, w, t, o, positions, STRIDE, out_step, PAIRS, qmin, qmax, 0)
  for (int32_t c = 0; c < channels; ++c, x += channel_step, w += weight_step, t += 4, ++o) {
    switch (clamp ? 0 : pairs * 4 + (stride < 3 ? stride : 3)) {
      case 1 * 4 + 1: CHANNEL_Q7(1, 1); break;
      case 2 * 4 + 1: CHANNEL_Q7(1, 2); break;
      case 2 * 4 + 2: CHANNEL_Q7(2, 2); break;
      case 3 * 4 + 1: CHANNEL_Q7(1, 3); break;
      case 4 * 4 + 1: CHANNEL_Q7(1, 4); break;
      default: channel_q7(x, w, t, o, positions, stride, out_step, pairs, qmin, qmax, 1); break;
    }
  }
#undef CHANNEL_Q7
  return 0;
}
