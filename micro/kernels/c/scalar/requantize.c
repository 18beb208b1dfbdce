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
 *   - 2^32 ([x < 0] mu + [mult < 0] xu) modulo 2^64, with xu, mu the words read unsigned.
 *   That C is the reference for the Armv6-M assembly below (about 104 instructions per output
 *   as GCC compiles it: spills); micro_scalar_requantize_q7 itself is naked assembly there
 *   (about 58 per output): x and mult split into signed upper and unsigned lower halves, four
 *   16x16 MULS (each product fits 32 bits signed, the lower one unsigned), the two middle
 *   products added to the 64-bit sum as (p >> 16 arithmetic, p << 16) with ADDS/ADCS, the
 *   rounding constant 2^30 folded into one middle product as 2^14 (no overflow: |xh ml| <
 *   2^31 - 2^16); the constants in high registers (CMP, ADD and MOV reach them). */
#include "requantize.h"

#include <stdint.h>

#if defined(__ARM_ARCH_6M__) && defined(MICRO_SCALAR_REQUANTIZE_C)
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

#if defined(__ARM_ARCH_6M__) && !defined(MICRO_SCALAR_REQUANTIZE_C)
/* Registers in the loop: r0 acc (LDM post-incremented), r1 the output index i, r2-r7 temporaries;
 * r8 upper, r9 lower, r10 zp, r11 2^14, r12 n. Stack after the saves and the frame: [sp] bias -
 * acc, [sp, #4] mult - acc, [sp, #8] shift, [sp, #12] out, [sp, #16] r8-r11, [sp, #32] r4-r7
 * and lr, [sp, #52] out, [sp, #56] n, [sp, #60] zp, [sp, #64] qmin, [sp, #68] qmax. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
__attribute__((naked, noinline)) int32_t micro_scalar_requantize_q7(
    void* acc_ptr, void* bias_ptr, void* mult_ptr, void* shift_ptr, void* out_ptr, int32_t n,
    int32_t zp, int32_t qmin, int32_t qmax) {
  __asm__ volatile(
      ".syntax unified\n\t"
      "push {r4-r7, lr}\n\t"
      "mov r4, r8\n\t"
      "mov r5, r9\n\t"
      "mov r6, r10\n\t"
      "mov r7, r11\n\t"
      "push {r4-r7}\n\t"
      "sub sp, sp, #16\n\t"
      "subs r1, r1, r0\n\t"
      "str r1, [sp, #0]\n\t"     /* bias - acc */
      "subs r2, r2, r0\n\t"
      "str r2, [sp, #4]\n\t"     /* mult - acc */
      "str r3, [sp, #8]\n\t"     /* shift */
      "ldr r4, [sp, #52]\n\t"
      "str r4, [sp, #12]\n\t"    /* out */
      "ldr r4, [sp, #60]\n\t"    /* zp */
      "mov r10, r4\n\t"
      "ldr r5, [sp, #64]\n\t"    /* qmin */
      "subs r5, r5, r4\n\t"
      "mov r9, r5\n\t"           /* lower = qmin - zp */
      "ldr r5, [sp, #68]\n\t"    /* qmax */
      "subs r5, r5, r4\n\t"
      "mov r8, r5\n\t"           /* upper = qmax - zp */
      "movs r5, #1\n\t"
      "lsls r5, r5, #14\n\t"
      "mov r11, r5\n\t"          /* 2^14 */
      "ldr r5, [sp, #56]\n\t"    /* n */
      "mov r12, r5\n\t"
      "movs r1, #0\n\t"          /* i */
      "cmp r5, #0\n\t"
      "ble 9f\n\t"
      "1:\n\t"
      "ldr r2, [sp, #0]\n\t"
      "ldr r3, [r0, r2]\n\t"     /* bias */
      "ldr r2, [sp, #4]\n\t"
      "ldr r5, [r0, r2]\n\t"     /* mult */
      "ldm r0!, {r2}\n\t"        /* acc */
      "adds r2, r2, r3\n\t"      /* x = acc + bias */
      "asrs r4, r2, #16\n\t"     /* xh */
      "uxth r2, r2\n\t"          /* xl */
      "asrs r6, r5, #16\n\t"     /* mh */
      "uxth r5, r5\n\t"          /* ml */
      "movs r3, r2\n\t"
      "muls r3, r5\n\t"          /* lo = xl ml (unsigned) */
      "muls r2, r6\n\t"          /* xl mh */
      "muls r6, r4\n\t"          /* hi = xh mh */
      "muls r4, r5\n\t"          /* xh ml */
      "add r4, r11\n\t"          /* + 2^14: the rounding 2^30 */
      "lsls r5, r4, #16\n\t"
      "asrs r4, r4, #16\n\t"
      "adds r3, r3, r5\n\t"
      "adcs r6, r4\n\t"
      "lsls r5, r2, #16\n\t"
      "asrs r2, r2, #16\n\t"
      "adds r3, r3, r5\n\t"
      "adcs r6, r2\n\t"
      "lsls r6, r6, #1\n\t"
      "lsrs r3, r3, #31\n\t"
      "orrs r6, r3\n\t"          /* high: bits 31..62 */
      "ldr r2, [sp, #8]\n\t"
      "ldrsb r2, [r2, r1]\n\t"   /* shift */
      "negs r2, r2\n\t"
      "lsls r2, r2, #27\n\t"
      "lsrs r2, r2, #27\n\t"     /* e = -shift & 31 */
      "movs r3, #1\n\t"
      "lsls r3, r2\n\t"
      "subs r3, r3, #1\n\t"      /* mask */
      "movs r4, r3\n\t"
      "ands r4, r6\n\t"          /* high & mask */
      "lsrs r3, r3, #1\n\t"
      "lsrs r5, r6, #31\n\t"
      "adds r3, r3, r5\n\t"      /* threshold */
      "subs r3, r3, r4\n\t"
      "lsrs r3, r3, #31\n\t"
      "asrs r6, r2\n\t"
      "adds r6, r6, r3\n\t"      /* q */
      "cmp r6, r8\n\t"
      "ble 2f\n\t"
      "mov r6, r8\n\t"
      "2:\n\t"
      "cmp r6, r9\n\t"
      "bge 3f\n\t"
      "mov r6, r9\n\t"
      "3:\n\t"
      "add r6, r10\n\t"
      "ldr r2, [sp, #12]\n\t"
      "strb r6, [r2, r1]\n\t"
      "adds r1, r1, #1\n\t"
      "cmp r1, r12\n\t"
      "blt 1b\n\t"
      "9:\n\t"
      "add sp, sp, #16\n\t"
      "pop {r4-r7}\n\t"
      "mov r8, r4\n\t"
      "mov r9, r5\n\t"
      "mov r10, r6\n\t"
      "mov r11, r7\n\t"
      "movs r0, #0\n\t"
      "pop {r4-r7, pc}\n\t");
}
#pragma GCC diagnostic pop
#else
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
#endif

int32_t micro_scalar_requantize_channels_q7(void* acc, void* bias, void* mult, void* shift,
                                            int8_t* out, int32_t positions, int32_t channels,
                                            int32_t acc_step, int32_t out_step, int32_t zp,
                                            int32_t qmin, int32_t qmax) {
  for (int32_t p = 0; p < positions; ++p) {
    micro_scalar_requantize_q7((int32_t*)acc + p * acc_step, bias, mult, shift,
                               out + p * out_step, channels, zp, qmin, qmax);
  }
  return 0;
}
