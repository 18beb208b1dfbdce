/* TFLite's int8 requantization on Helium (MVE), see requantize_mve.h and docs/isa-mve.md.
 *
 * Per vector of four channels, with x = acc + bias (VADD.I32, wrapping like TIR's int32 add),
 * m the multipliers and s = shift <= 0 (VLDRB.S32 sign-extends four shifts):
 *
 *   high = VQRDMULH(x, m)                   saturate((2 x m + 2^31) >> 32)
 *   q    = VRSHL(VQADD(high, (high & s) >> 31), s)
 *   out  = VSTRB.32(VMIN/VMAX(q, qmax - zp, qmin - zp) + zp)
 *
 * Why this equals micro.fixed_point_tir.requantize for every input:
 *
 * 1. floor((2 x m + 2^31) / 2^32) = floor((x m + 2^30) / 2^31), TIR's high part. It exceeds
 *    INT32_MAX only for x = m = INT32_MIN (x m = 2^62), where TIR wraps to INT32_MIN and VQRDMULH
 *    saturates to INT32_MAX and sets the sticky saturation flag FPSCR.QC.
 * 2. TIR's RoundingDivideByPOT(high, e), e = -s in [0, 31], is high / 2^e rounded to nearest,
 *    ties away from zero (gemmlowp: floor plus one when the remainder exceeds 2^(e-1) - 1, or
 *    2^(e-1) for a negative high). VRSHL by a negative amount -e computes
 *    floor((v + 2^(e-1)) / 2^e) in unbounded precision (ties upwards). The fixup is -1 exactly
 *    when high < 0 and e > 0 (the sign bit of high & s, s having its sign bit set iff e > 0);
 *    for a negative high, floor((high - 1 + 2^(e-1)) / 2^e) rounds ties down, i.e. away from
 *    zero, and non-ties to nearest: the same integer. VQADD would saturate only for
 *    high = INT32_MIN, which VQRDMULH never returns (its least result is -2^31 + 1). For e = 0
 *    both are the identity.
 * 3. The clamp to [qmin - zp, qmax - zp] then + zp is TIR's order (no overflow), and VSTRB.32
 *    stores the low byte, TIR's int8 cast.
 *
 * So the vector result is exact whenever no saturation happened. The kernel clears FPSCR.QC
 * first and, if any lane saturated (an accumulator plus bias equal to INT32_MIN with a multiplier
 * INT32_MIN, which TFLite never produces), recomputes the whole call
 * with the scalar formula of the DSP library: exact for every input, at six instructions per call
 * in the usual case. */
#include "requantize_mve.h"

#include <stdint.h>

#if !defined(__ARM_FEATURE_MVE) || !(__ARM_FEATURE_MVE & 1)
#error "requantize_mve.c needs a core with the MVE (Helium) integer instructions (-mcpu=cortex-m55)"
#endif

#define MICRO_MVE_FPSCR_QC (1u << 27)

/* The scalar statement of micro.fixed_point_tir.requantize (the slow path). */
static int8_t requantize_one(int32_t acc, int32_t bias, int32_t mult, int32_t shift, int32_t zp,
                             int32_t qmin, int32_t qmax) {
  int32_t x = (int32_t)((uint32_t)acc + (uint32_t)bias);
  int32_t high = (int32_t)(uint32_t)(((int64_t)x * mult + (1 << 30)) >> 31);
  int32_t e = -shift;
  int32_t mask = (int32_t)((1u << e) - 1u);
  int32_t threshold = (mask >> 1) + (int32_t)((uint32_t)high >> 31);
  int32_t q = (high >> e) + (int32_t)((uint32_t)(threshold - (high & mask)) >> 31);
  int32_t low = qmin - zp, top = qmax - zp;
  q = q < top ? q : top;
  q = q > low ? q : low;
  return (int8_t)(q + zp);
}

int32_t micro_mve_requantize_q7(void* acc_ptr, void* bias_ptr, void* mult_ptr, void* shift_ptr,
                                void* out_ptr, int32_t n, int32_t zp, int32_t qmin,
                                int32_t qmax) {
  const int32_t* acc = acc_ptr;
  const int32_t* bias = bias_ptr;
  const int32_t* mult = mult_ptr;
  const int8_t* shift = shift_ptr;
  int8_t* out = out_ptr;
  if (n <= 0) return 0;
  uint32_t fpscr;
  __asm__ volatile("vmrs %0, fpscr" : "=r"(fpscr));
  __asm__ volatile("vmsr fpscr, %0" : : "r"(fpscr & ~MICRO_MVE_FPSCR_QC));
  const int32_t low = qmin - zp, top = qmax - zp;
  {
    const int32_t* a = acc;
    const int32_t* b = bias;
    const int32_t* m = mult;
    const int8_t* s = shift;
    int8_t* o = out;
    __asm__ volatile(
        "vdup.32 q6, %[top]\n\t"
        "vdup.32 q7, %[low]\n\t"
        "dlstp.32 lr, %[n]\n"
        "1:\n\t"
        "vldrw.32 q0, [%[a]], #16\n\t"
        "vldrw.32 q1, [%[b]], #16\n\t"
        "vadd.i32 q0, q0, q1\n\t"          /* x = acc + bias */
        "vldrw.32 q1, [%[m]], #16\n\t"
        "vqrdmulh.s32 q0, q0, q1\n\t"      /* high */
        "vldrb.s32 q1, [%[s]], #4\n\t"     /* s = -e */
        "vand q2, q0, q1\n\t"
        "vshr.s32 q2, q2, #31\n\t"         /* -1 for high < 0 and e > 0 */
        "vqadd.s32 q0, q0, q2\n\t"
        "vrshl.s32 q0, q0, q1\n\t"         /* rounding shift right by e */
        "vmin.s32 q0, q0, q6\n\t"
        "vmax.s32 q0, q0, q7\n\t"
        "vadd.i32 q0, q0, %[zp]\n\t"
        "vstrb.32 q0, [%[o]], #4\n\t"
        "letp lr, 1b"
        : [a] "+r"(a), [b] "+r"(b), [m] "+r"(m), [s] "+l"(s), [o] "+l"(o)
        : [n] "r"(n), [zp] "r"(zp), [top] "r"(top), [low] "r"(low)
        : "lr", "q0", "q1", "q2", "q6", "q7", "memory");
  }
  __asm__ volatile("vmrs %0, fpscr" : "=r"(fpscr));
  if (fpscr & MICRO_MVE_FPSCR_QC) {
    for (int32_t i = 0; i < n; ++i) {
      out[i] = requantize_one(acc[i], bias[i], mult[i], shift[i], zp, qmin, qmax);
    }
  }
  return 0;
}

int32_t micro_mve_requantize_channels_q7(void* acc, void* bias, void* mult, void* shift,
                                         int8_t* out, int32_t positions, int32_t channels,
                                         int32_t acc_step, int32_t out_step, int32_t zp,
                                         int32_t qmin, int32_t qmax) {
  for (int32_t p = 0; p < positions; ++p) {
    micro_mve_requantize_q7((int32_t*)acc + p * acc_step, bias, mult, shift, out + p * out_step,
                            channels, zp, qmin, qmax);
  }
  return 0;
}
