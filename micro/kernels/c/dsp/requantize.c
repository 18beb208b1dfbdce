/* TFLite's int8 requantization on the DSP extension (see requantize.h and docs/dsp.md). */
#include "requantize.h"

#include <stdint.h>

#if !defined(__ARM_FEATURE_DSP) || !__ARM_FEATURE_DSP
#error "requantize.c needs a core with the Arm DSP extension (QADD, SSAT)"
#endif
#include <arm_acle.h>

/* out[i] = clamp(q + zp, qmin, qmax), q = RoundingDivideByPOT(SRDHM(acc[i] + bias[i], mult[i]),
 * -shift[i]): TFLite's double-rounding requantization with right shifts only (shift <= 0) and
 * non-negative multipliers, as micro.fixed_point_tir describes it, in fewer instructions:
 * SMLAL onto the rounding constant for the high product, the rounding division's comparison as
 * the sign bit of a difference, QADD + SSAT for the zero point and the clamp to int8 (a
 * saturating add reaches the same clamped value as the exact sum, without int32 overflow). The
 * bias add wraps like the int32 stage it replaces. */
static inline int32_t requantize_one(int32_t x, int32_t mult, int32_t shift, int32_t zp) {
  int32_t high = (int32_t)(((int64_t)x * mult + (1 << 30)) >> 31);
  int32_t e = -shift;
  int32_t mask = (int32_t)((1u << e) - 1u);
  int32_t threshold = (mask >> 1) + (int32_t)((uint32_t)high >> 31);
  int32_t q = (high >> e) + (int32_t)((uint32_t)(threshold - (high & mask)) >> 31);
  return __ssat(__qadd(q, zp), 8);
}

int32_t micro_dsp_requantize_q7(void* acc_ptr, void* bias_ptr, void* mult_ptr, void* shift_ptr,
                              void* out_ptr, int32_t n, int32_t zp, int32_t qmin, int32_t qmax) {
  const int32_t* acc = acc_ptr;
  const int32_t* bias = bias_ptr;
  const int32_t* mult = mult_ptr;
  const int8_t* shift = shift_ptr;
  int8_t* out = out_ptr;
  if (qmin == -128 && qmax == 127) { /* the usual case: SSAT is the whole clamp */
#pragma GCC unroll 2
    for (int32_t i = 0; i < n; ++i) {
      int32_t x = (int32_t)((uint32_t)acc[i] + (uint32_t)bias[i]);
      out[i] = (int8_t)requantize_one(x, mult[i], shift[i], zp);
    }
    return 0;
  }
  for (int32_t i = 0; i < n; ++i) {
    int32_t v = requantize_one((int32_t)((uint32_t)acc[i] + (uint32_t)bias[i]), mult[i],
                               shift[i], zp);
    out[i] = (int8_t)(v < qmin ? qmin : (v > qmax ? qmax : v));
  }
  return 0;
}
