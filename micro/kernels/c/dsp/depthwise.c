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

/* Weight words kept in registers across a channel's positions. */
#define MICRO_DW_HELD 4

static inline int32_t pair_at(const int16_t* p) {
  int32_t word;
  memcpy(&word, p, sizeof(word)); /* one LDR, unaligned allowed */
  return word;
}

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
