/* TFLite's int8 requantization on cores without the DSP extension (see requantize.h).
 *
 * out = clamp(q, qmin - zp, qmax - zp) + zp with q = RoundingDivideByPOT(high, e), e = -shift,
 * high = (x * mult + 2^30) >> 31 (the 64-bit product, floored): micro.fixed_point_tir's
 * statement, branch-free except the clamp. The rounding division is TFLite's, ties away from
 * zero, as the sign bit of a difference: q = (high >> e) + [(high & mask) > (mask >> 1) +
 * [high < 0]], mask = 2^e - 1.
 *
 * The high product:
 * Armv7-M (Cortex-M3): SMULL, then the rounding constant and the shift on the two halves
 *   (GCC's code for the int64 expression).
 * Armv6-M (Cortex-M0/M0+): no 32x32->64 multiply (GCC would call __aeabi_lmul, a 64x64
 *   multiply). The unsigned product of the two words is made from four 16x16->32 MULS
 *   (exact: each fits 32 bits unsigned) and their carries, then made signed by subtracting
 *   mult (if x < 0) and x (if mult < 0) from its upper word: x * mult = xu * mu
 *   - 2^32 ([x < 0] mu + [mult < 0] xu) modulo 2^64, with xu, mu the words read unsigned. */
#include "requantize.h"

#include <stdint.h>

#if defined(__ARM_ARCH_6M__)
static inline int32_t high_product(int32_t x, int32_t mult) {
  const uint32_t xu = (uint32_t)x, mu = (uint32_t)mult;
  const uint32_t xl = xu & 0xFFFFu, xh = xu >> 16, ml = mu & 0xFFFFu, mh = mu >> 16;
  const uint32_t ll = xl * ml, lh = xl * mh, hl = xh * ml, hh = xh * mh;
  uint32_t mid = lh + hl;
  uint32_t hi = hh + ((uint32_t)(mid < lh) << 16) + (mid >> 16);
  uint32_t lo = ll + (mid << 16);
  hi += lo < ll;
  hi -= (uint32_t)(x >> 31) & mu;
  hi -= (uint32_t)(mult >> 31) & xu;
  /* + 2^30, then bits 31..62 of the 64-bit sum */
  const uint32_t rounded = lo + 0x40000000u;
  hi += rounded < lo;
  return (int32_t)((hi << 1) | (rounded >> 31));
}
#else /* Armv7-M (SMULL) and the reference */
static inline int32_t high_product(int32_t x, int32_t mult) {
  return (int32_t)(((int64_t)x * mult + (1 << 30)) >> 31);
}
#endif

static inline int32_t requantize_one(int32_t x, int32_t mult, int32_t shift, int32_t lower,
                                     int32_t upper) {
  const int32_t high = high_product(x, mult);
  const uint32_t e = (uint32_t)(-shift) & 31u;
  const int32_t mask = (int32_t)((1u << e) - 1u);
  const int32_t threshold = (mask >> 1) + (int32_t)((uint32_t)high >> 31);
  int32_t q = (high >> e) + (int32_t)((uint32_t)(threshold - (high & mask)) >> 31);
  q = q < upper ? q : upper;
  return q > lower ? q : lower;
}

int32_t micro_scalar_requantize_q7(void* acc_ptr, void* bias_ptr, void* mult_ptr,
                                   void* shift_ptr, void* out_ptr, int32_t n, int32_t zp,
                                   int32_t qmin, int32_t qmax) {
  const int32_t* acc = acc_ptr;
  const int32_t* bias = bias_ptr;
  const int32_t* mult = mult_ptr;
  const int8_t* shift = shift_ptr;
  int8_t* out = out_ptr;
  const int32_t lower = qmin - zp, upper = qmax - zp;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t x = (int32_t)((uint32_t)acc[i] + (uint32_t)bias[i]);
    out[i] = (int8_t)(requantize_one(x, mult[i], shift[i], lower, upper) + zp);
  }
  return 0;
}
