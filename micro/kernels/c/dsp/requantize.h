/* TFLite's int8 requantization on Cortex-M cores with the DSP extension.
 * Called from TIR kernels tensorized by micro/kernels/dsp/requantize.py (see docs/dsp.md). */
#ifndef MICRO_DSP_REQUANTIZE_H_
#define MICRO_DSP_REQUANTIZE_H_

#include <stdint.h>

/* out[i] = TFLite's int8 requantization of acc[i] + bias[i] with per-channel multiplier mult[i]
 * (int32, >= 0) and shift shift[i] (int8, <= 0), zero point zp, clamped to [qmin, qmax]
 * (see requantize.c). acc, bias, mult point to int32_t, shift and out to int8_t. Returns 0. */
int32_t micro_dsp_requantize_q7(void* acc, void* bias, void* mult, void* shift, void* out,
                                int32_t n, int32_t zp, int32_t qmin, int32_t qmax);

/* The epilogue of an int8 convolution pass, per channel c < channels and position p < positions:
 *   out[p * out_step + c] = clamp(q + zp, qmin, qmax),
 *   q = RoundingDivideByPOT(SRDHM(acc[p * acc_step + c] + bias[c], mult[c]), -shift[c])
 * with the int32 sum wrapping, TFLite's double rounding as micro.fixed_point_tir states it (for
 * any multiplier; shift[c] in [-31, 0]) and -128 <= qmin <= qmax <= 127. acc, bias and mult
 * point to int32_t, shift and out to int8_t. The assembly takes pairs of positions channel by
 * channel when the two steps are equal (see requantize.c); returns 0. */
int32_t micro_dsp_requantize_channels_q7(void* acc, void* bias, void* mult, void* shift,
                                         void* out, int32_t positions, int32_t channels,
                                         int32_t acc_step, int32_t out_step, int32_t zp,
                                         int32_t qmin, int32_t qmax);

/* micro_dsp_requantize_channels_q7 with each channel's constants precomputed at compile time
 * (micro/kernels/dsp/requantize_table.py), four int32 per channel in `table`:
 *   table[4 c] = bias[c], table[4 c + 1] = mult[c] (>= 0), table[4 c + 2] = e - 1,
 *   table[4 c + 3] = khi = (2 zp + 1) << (e - 2),   e = -shift[c], 2 <= e <= 24,
 * so that one LDM loads a channel's set-up (see requantize.c). The same outputs as
 * micro_dsp_requantize_channels_q7 with those bias, mult and shift; returns 0. */
int32_t micro_dsp_requantize_table_q7(void* acc, void* table, void* out, int32_t positions,
                                      int32_t channels, int32_t acc_step, int32_t out_step,
                                      int32_t zp, int32_t qmin, int32_t qmax);

/* ---- Shared by requantize.c and requantize_table.c: not part of the contract ----
 * The assembly of one output (see requantize.c for the arithmetic and the registers) and
 * the exact C statement of one output. */

/* One output from the accumulator in r11 to int8 in lr: 7 instructions (ZP: 2 more). */
#define MICRO_RQ_SCALE(ZP)                                    \
  "add r11, r11, r7\n\t"                                      \
  "and r12, r11, #0x80000000\n\t"                             \
  "rsbs r12, r12, #0x40000000\n\t"                            \
  "sbc lr, r10, #0\n\t"          /* (khi : 2^30) - [x < 0] 2^31 */ \
  "smlal r12, lr, r11, r8\n\t"   /* + x * mult */             \
  "asr lr, lr, r9\n\t"           /* q + zp, or q */           \
  ZP                                                          \
  "ssat lr, #8, lr\n\t"
#define MICRO_RQ_NO_ZP
#define MICRO_RQ_NO_CLAMP

/* Both positions of a pair (acc[step] first, then acc[0] with the pointers advanced). */
#define MICRO_RQ_TWO(ZP, CLAMP)                               \
  "ldr r11, [r0, r5, lsl #2]\n\t"                             \
  MICRO_RQ_SCALE(ZP)                                          \
  CLAMP                                                       \
  "strb lr, [r1, r5]\n\t"                                     \
  "ldr r11, [r0], #4\n\t"                                     \
  MICRO_RQ_SCALE(ZP)                                          \
  CLAMP                                                       \
  "strb lr, [r1], #1\n\t"
#define MICRO_RQ_ONE(ZP, CLAMP)                               \
  "ldr r11, [r0], #4\n\t"                                     \
  MICRO_RQ_SCALE(ZP)                                          \
  CLAMP                                                       \
  "strb lr, [r1], #1\n\t"

/* One output exactly as micro.fixed_point_tir states it (any multiplier, e = -shift in [0, 31]),
 * then clamped to [qmin, qmax]. */
static inline int32_t requantize_exact(int32_t x, int32_t mult, int32_t shift, int32_t zp, int32_t qmin,
                                int32_t qmax) {
  int32_t high = (int32_t)(((int64_t)x * mult + (1 << 30)) >> 31);
  uint32_t e = (uint32_t)(-shift) & 31u;
  int32_t mask = (int32_t)((1u << e) - 1u);
  int32_t threshold = (mask >> 1) + (int32_t)((uint32_t)high >> 31);
  int32_t q = (high >> e) + (int32_t)((uint32_t)(threshold - (high & mask)) >> 31);
  int32_t upper = qmax - zp, lower = qmin - zp;
  q = q < upper ? q : upper;
  q = q > lower ? q : lower;
  return q + zp;
}


#endif
