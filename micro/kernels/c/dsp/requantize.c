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

/* ---- Per-channel requantization of a block of positions x channels (convolution epilogues) ----
 *
 * micro_dsp_requantize_channels_q7 (see requantize.h) is assembly, two positions at a time,
 * channel by channel, when the accumulators and the outputs have the same step (else it is C).
 * A channel with a non-negative multiplier and 2 <= e <= 31 (e = -shift) runs in assembly;
 * another (e = 0 or 1, a negative multiplier: TFLite's multipliers are non-negative and a
 * convolution's scale is rarely that large) is computed by a C function the assembly calls,
 * each output as micro.fixed_point_tir states it.
 *
 * The arithmetic. With x = acc + bias (int32, wrapping), P = x * mult (int64), TIR computes
 * high = (P + 2^30) >> 31, q = RoundingDivideByPOT(high, e) (ties away from zero) and stores
 * clamp(q + zp). For e >= 1, q = floor((high + 2^(e-1) - [high < 0]) / 2^e), and since high is
 * P + 2^30 divided by 2^31 (floored), the nudge and the zero point can be added to the 64-bit
 * product instead, as multiples of 2^31, where nothing overflows:
 *   q + zp = floor(Y / 2^(31+e)),  Y = P + 2^30 - [P < 0] 2^31 + (2 zp + 1) 2^(30+e).
 * [P < 0] may replace [high < 0]: they differ only for -2^30 <= P < 0, where high = 0 and both
 * give q = 0. For mult >= 0, [P < 0] is [x < 0] (P = 0 gives q = 0 either way). For e >= 2,
 * (2 zp + 1) 2^(30+e) is khi * 2^32 with khi = (2 zp + 1) << (e - 2), so the 64-bit constant is
 * (khi : 0x40000000), minus 2^31 for a negative x, and q + zp = hi(Y) >> (e - 1): one SMLAL onto
 * that constant and one shift. hi(Y) fits in int32 for e <= 24: hi(P) lies in [-2^30, 2^30 - 1]
 * (|x| <= 2^31, 0 <= mult < 2^31) and |khi| <= 255 * 2^22 <= 2^30. For 25 <= e <= 31 the zero
 * point is left out of the constant (khi = 2^(e - 2) <= 2^29) and added after the shift, where
 * |q| <= 2^(31-e) + 1 (two instructions more). The result is then saturated to int8 (SSAT) and,
 * unless the range is the whole of int8, clamped to [qmin, qmax] (SSUB8 sets the GE flags of the
 * low byte's comparison and SEL picks: one bound in two instructions).
 *
 * The stack while the assembly runs (offsets from sp, in bytes; the arguments as the caller
 * passed them, r0-r3 and the stack arguments, around the saved registers):
 *   [sp]      z = 2 * zp + 1          [sp, #24]  bias         [sp, #76]  positions
 *   [sp, #4]  pairs of positions left [sp, #28]  mult         [sp, #80]  channels
 *   [sp, #8]  acc of the current pair [sp, #32]  shift        [sp, #84]  acc_step
 *   [sp, #12] out of the current pair [sp, #36]  r4-r11, lr   [sp, #88]  out_step
 *   [sp, #20] acc                     [sp, #72]  out          [sp, #92]  zp, qmin, qmax */

/* One channel's constants: r7 bias, r8 mult, r9 = e - 1, r10 = khi, from the pointers r2, r3, r4
 * (advanced); a channel whose e - 2 is above 22 (unsigned) or whose mult is negative branches
 * to label WIDE with r11 = (e - 2) | (mult >> 31) and r10 = e - 2. 10 instructions. */
#define MICRO_RQ_CHANNEL(WIDE)                                \
  "ldr r7, [r2], #4\n\t"                                      \
  "ldr r8, [r3], #4\n\t"                                      \
  "ldrsb r9, [r4], #1\n\t"                                    \
  "mvn r9, r9\n\t"               /* e - 1 */                  \
  "sub r10, r9, #1\n\t"          /* e - 2 */                  \
  "orr r11, r10, r8, asr #31\n\t"                             \
  "cmp r11, #22\n\t"                                          \
  "bhi " WIDE "f\n\t"                                         \
  "ldr r11, [sp]\n\t"                                         \
  "lsl r10, r11, r10\n\t"        /* khi = z << (e - 2) */
/* The constant of 25 <= e <= 31, else on to label SLOW: 4 instructions. */
#define MICRO_RQ_WIDE(SLOW)                                   \
  "cmp r11, #29\n\t"                                          \
  "bhi " SLOW "f\n\t"                                         \
  "movs r11, #1\n\t"                                          \
  "lsl r10, r11, r10\n\t"        /* khi = 1 << (e - 2) */

#define MICRO_RQ_ZP                                           \
  "ldr r12, [sp, #92]\n\t"                                    \
  "add lr, lr, r12\n\t"
/* Clamp lr to [qmin, qmax] (read from the stack): 6 instructions. */
#define MICRO_RQ_CLAMP                                        \
  "ldr r11, [sp, #100]\n\t"                                   \
  "ssub8 r12, r11, lr\n\t"                                    \
  "sel lr, lr, r11\n\t"                                       \
  "ldr r11, [sp, #96]\n\t"                                    \
  "ssub8 r12, lr, r11\n\t"                                    \
  "sel lr, lr, r11\n\t"
/* The current channel (COUNT positions) by rq_channel in C, r0-r3 kept: 10 instructions. */
#define MICRO_RQ_CALL_C(COUNT)                                \
  "push {r0-r3}\n\t"                                          \
  "add r0, sp, #16\n\t"                                       \
  "mov r1, r6\n\t"                                            \
  "movs r2, #" COUNT "\n\t"                                   \
  "bl rq_channel\n\t"                                         \
  "pop {r0-r3}\n\t"                                           \
  "adds r0, r0, #4\n\t"                                       \
  "adds r1, r1, #1\n\t"

/* The pointers of the current pair of positions at channel 0: r0 acc, r1 out, r2 bias, r3 mult,
 * r4 shift, r5 step, r6 the channels. 5 instructions. */
#define MICRO_RQ_START                                        \
  "ldrd r0, r1, [sp, #8]\n\t"                                 \
  "ldrd r2, r3, [sp, #24]\n\t"                                \
  "ldr r4, [sp, #32]\n\t"                                     \
  "ldr r6, [sp, #80]\n\t"                                     \
  "ldr r5, [sp, #84]\n\t"

/* Every pair of positions, channel by channel (per channel 10 instructions, per output 9, or 15
 * with the clamp, 2 for the loop; per pair 14), then the last position of an odd number (per
 * channel 10 + 9 + 2); then on to label 8. Channels of 25 <= e <= 31 take 4 instructions more
 * and 2 per output, the others rq_channel. Labels 1-5, 7, 10, 12-14. */
#define MICRO_RQ_ALL(CLAMP)                                   \
  "ldr r12, [sp, #4]\n\t"                                     \
  "cmp r12, #0\n\t"                                           \
  "beq 3f\n\t"                                                \
  "1:\n\t"                                                    \
  MICRO_RQ_START                                              \
  "2:\n\t"                                                    \
  MICRO_RQ_CHANNEL("5")                                       \
  MICRO_RQ_TWO(MICRO_RQ_NO_ZP, CLAMP)                         \
  "10:\n\t"                                                   \
  "subs r6, r6, #1\n\t"                                       \
  "bne 2b\n\t"                                                \
  "ldrd r0, r1, [sp, #8]\n\t"                                 \
  "add r0, r0, r5, lsl #3\n\t"                                \
  "add r1, r1, r5, lsl #1\n\t"                                \
  "strd r0, r1, [sp, #8]\n\t"                                 \
  "ldr r12, [sp, #4]\n\t"                                     \
  "subs r12, r12, #1\n\t"                                     \
  "str r12, [sp, #4]\n\t"                                     \
  "bne 1b\n\t"                                                \
  "b 3f\n\t"                                                  \
  "5:\n\t"                                                    \
  MICRO_RQ_WIDE("13")                                         \
  MICRO_RQ_TWO(MICRO_RQ_ZP, CLAMP)                            \
  "b 10b\n\t"                                                 \
  "13:\n\t"                                                   \
  MICRO_RQ_CALL_C("2")                                        \
  "b 10b\n\t"                                                 \
  "3:\n\t"                                                    \
  "ldr r12, [sp, #76]\n\t"                                    \
  "lsls r12, r12, #31\n\t"                                    \
  "beq 8f\n\t"                                                \
  MICRO_RQ_START                                              \
  "4:\n\t"                                                    \
  MICRO_RQ_CHANNEL("7")                                       \
  MICRO_RQ_ONE(MICRO_RQ_NO_ZP, CLAMP)                         \
  "12:\n\t"                                                   \
  "subs r6, r6, #1\n\t"                                       \
  "bne 4b\n\t"                                                \
  "b 8f\n\t"                                                  \
  "7:\n\t"                                                    \
  MICRO_RQ_WIDE("14")                                         \
  MICRO_RQ_ONE(MICRO_RQ_ZP, CLAMP)                            \
  "b 12b\n\t"                                                 \
  "14:\n\t"                                                   \
  MICRO_RQ_CALL_C("1")                                        \
  "b 12b\n\t"

/* Channels c < channels and positions p < positions, in C. */
static void rq_block(const int32_t* acc, const int32_t* bias, const int32_t* mult,
                     const int8_t* shift, int8_t* out, int32_t positions, int32_t channels,
                     int32_t acc_step, int32_t out_step, int32_t zp, int32_t qmin, int32_t qmax) {
  for (int32_t c = 0; c < channels; ++c) {
    for (int32_t p = 0; p < positions; ++p) {
      int32_t x = (int32_t)((uint32_t)acc[p * acc_step + c] + (uint32_t)bias[c]);
      out[p * out_step + c] = (int8_t)requantize_exact(x, mult[c], shift[c], zp, qmin, qmax);
    }
  }
}

/* The channel the assembly is at (`left` channels from the end) of the current pair of
 * positions (`count` of them), in C; `frame` is the assembly's stack (above). Kept under its name
 * (used): the assembly calls it. */
__attribute__((used, noinline)) static void rq_channel(const int32_t* frame, int32_t left,
                                                       int32_t count) {
  int32_t c = frame[20] - left;
  rq_block((const int32_t*)(uintptr_t)frame[2] + c, (const int32_t*)(uintptr_t)frame[6] + c,
           (const int32_t*)(uintptr_t)frame[7] + c, (const int8_t*)(uintptr_t)frame[8] + c,
           (int8_t*)(uintptr_t)frame[3] + c, count, 1, frame[21], frame[21], frame[23],
           frame[24], frame[25]);
}

/* A call with different steps, in C. Kept under its name (used): the assembly branches to it with
 * the arguments as they came. */
__attribute__((used, noinline)) static int32_t rq_steps(void* acc, void* bias, void* mult,
                                                        void* shift, void* out, int32_t positions,
                                                        int32_t channels, int32_t acc_step,
                                                        int32_t out_step, int32_t zp,
                                                        int32_t qmin, int32_t qmax) {
  rq_block(acc, bias, mult, shift, out, positions, channels, acc_step, out_step, zp, qmin, qmax);
  return 0;
}

/* Entry: save the arguments r0-r3 with the registers, then the frame; calls with different steps
 * go to C at once, nothing to do returns. Then the variant without a clamp or the one with it
 * (label 20). Exits: label 8 returns 0; label 9 restores the arguments and branches to rq_steps.
 */
/* A naked function reads its arguments in assembly, where GCC does not see them used. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
__attribute__((naked)) int32_t micro_dsp_requantize_channels_q7(
    void* acc, void* bias, void* mult, void* shift, void* out, int32_t positions,
    int32_t channels, int32_t acc_step, int32_t out_step, int32_t zp, int32_t qmin,
    int32_t qmax) {
  __asm__ volatile(
      "push {r0-r11, lr}\n\t"
      "sub sp, sp, #20\n\t"
      "ldrd r4, r5, [sp, #84]\n\t"   /* acc_step, out_step */
      "cmp r4, r5\n\t"
      "bne 9f\n\t"
      "ldrd r5, r6, [sp, #76]\n\t"   /* positions, channels */
      "cmp r5, #1\n\t"
      "it ge\n\t"
      "cmpge r6, #1\n\t"
      "blt 8f\n\t"
      "ldr r7, [sp, #92]\n\t"        /* zp */
      "movs r8, #1\n\t"
      "add r7, r8, r7, lsl #1\n\t"
      "str r7, [sp]\n\t"             /* z */
      "asrs r5, r5, #1\n\t"
      "str r5, [sp, #4]\n\t"         /* pairs */
      "ldr r7, [sp, #72]\n\t"
      "strd r0, r7, [sp, #8]\n\t"    /* the first pair: acc, out */
      "ldrd r10, r11, [sp, #96]\n\t" /* qmin, qmax */
      "cmn r10, #128\n\t"
      "it eq\n\t"
      "cmpeq r11, #127\n\t"
      "bne 20f\n\t"
      MICRO_RQ_ALL(MICRO_RQ_NO_CLAMP)
      "20:\n\t"
      MICRO_RQ_ALL(MICRO_RQ_CLAMP)
      "8:\n\t"
      "add sp, sp, #36\n\t"          /* the frame and r0-r3 */
      "movs r0, #0\n\t"
      "pop {r4-r11, pc}\n\t"
      "9:\n\t"
      "add sp, sp, #20\n\t"
      "pop {r0-r11, lr}\n\t"
      "b.w rq_steps\n\t");
}
#pragma GCC diagnostic pop
