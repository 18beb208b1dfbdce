/* TFLite's int8 requantization of convolution epilogues from a compile-time table of
 * per-channel constants, on the DSP extension (see requantize.h and docs/dsp.md). Its own file,
 * so that only the builds that call it count its code. */
#include "requantize.h"

#include <stdint.h>

#if !defined(__ARM_FEATURE_DSP) || !__ARM_FEATURE_DSP
#error "requantize_table.c needs a core with the Arm DSP extension (SMLAL, SSAT, SSUB8)"
#endif

/* ---- The same epilogue from a table of per-channel constants (micro_dsp_requantize_table_q7) ----
 *
 * The compile-time table (requantize.h) holds what MICRO_RQ_CHANNEL computes for every pass:
 * one LDM loads a channel's bias, multiplier, e - 1 and khi (1 instruction instead of 10), and
 * only channels of the fast path (0 <= mult, 2 <= e <= 24) are tabulated, so there is no branch.
 * Per channel of a pair of positions: 1 + 2 x 9 + 2 = 21 instructions (clamped: 4 more per
 * output, the bounds held in r3 and r4).
 *
 * Without a clamp, positions go four at a time first (per channel 1 + 4 x 9 + 2 = 39
 * instructions), then in a pair and one alone.
 *
 * The stack while the assembly runs (offsets from sp, in bytes):
 *   [sp]      pairs of positions left   [sp, #16] positions     [sp, #60] channels
 *   [sp, #4]  acc of the current group  [sp, #20] groups of four [sp, #64] acc_step
 *   [sp, #8]  out of the current group  [sp, #24] r4-r11, lr    [sp, #68] out_step
 *   [sp, #12] table                                             [sp, #72] zp, qmin, qmax */

/* Clamp lr to [r3, r4] (qmin, qmax): 4 instructions. */
#define MICRO_RQT_CLAMP                                       \
  "ssub8 r12, r4, lr\n\t"                                     \
  "sel lr, lr, r4\n\t"                                        \
  "ssub8 r12, lr, r3\n\t"                                     \
  "sel lr, lr, r3\n\t"

/* Every pair of positions, channel by channel, then the last position of an odd number; on to
 * label 8. Labels 1-4. */
#define MICRO_RQT_ALL(CLAMP)                                  \
  "ldr r12, [sp]\n\t"                                         \
  "cmp r12, #0\n\t"                                           \
  "beq 3f\n\t"                                                \
  "1:\n\t"                                                    \
  "ldrd r0, r1, [sp, #4]\n\t"                                 \
  "ldr r2, [sp, #12]\n\t"                                     \
  "ldr r6, [sp, #60]\n\t"                                     \
  "2:\n\t"                                                    \
  "ldm r2!, {r7-r10}\n\t"                                     \
  MICRO_RQ_TWO(MICRO_RQ_NO_ZP, CLAMP)                         \
  "subs r6, r6, #1\n\t"                                       \
  "bne 2b\n\t"                                                \
  "ldrd r0, r1, [sp, #4]\n\t"                                 \
  "add r0, r0, r5, lsl #3\n\t"                                \
  "add r1, r1, r5, lsl #1\n\t"                                \
  "strd r0, r1, [sp, #4]\n\t"                                 \
  "ldr r12, [sp]\n\t"                                         \
  "subs r12, r12, #1\n\t"                                     \
  "str r12, [sp]\n\t"                                         \
  "bne 1b\n\t"                                                \
  "3:\n\t"                                                    \
  "ldr r12, [sp, #16]\n\t"                                    \
  "lsls r12, r12, #31\n\t"                                    \
  "beq 8f\n\t"                                                \
  "ldrd r0, r1, [sp, #4]\n\t"                                 \
  "ldr r2, [sp, #12]\n\t"                                     \
  "ldr r6, [sp, #60]\n\t"                                     \
  "4:\n\t"                                                    \
  "ldm r2!, {r7-r10}\n\t"                                     \
  MICRO_RQ_ONE(MICRO_RQ_NO_ZP, CLAMP)                         \
  "subs r6, r6, #1\n\t"                                       \
  "bne 4b\n\t"                                                \
  "b 8f\n\t"

/* Groups of four positions (no clamp), channel by channel: acc and out of positions 0, 1 at r0,
 * r1 and of positions 2, 3 at r3, r4; then on to the pairs. Labels 21, 22, 30. */
#define MICRO_RQT_FOURS                                       \
  "ldr r12, [sp, #20]\n\t"                                    \
  "cmp r12, #0\n\t"                                           \
  "beq 30f\n\t"                                               \
  "21:\n\t"                                                   \
  "ldrd r0, r1, [sp, #4]\n\t"                                 \
  "add r3, r0, r5, lsl #3\n\t"                                \
  "add r4, r1, r5, lsl #1\n\t"                                \
  "ldr r2, [sp, #12]\n\t"                                     \
  "ldr r6, [sp, #60]\n\t"                                     \
  "22:\n\t"                                                   \
  "ldm r2!, {r7-r10}\n\t"                                     \
  "ldr r11, [r0, r5, lsl #2]\n\t"                             \
  MICRO_RQ_SCALE(MICRO_RQ_NO_ZP)                              \
  "strb lr, [r1, r5]\n\t"                                     \
  "ldr r11, [r3, r5, lsl #2]\n\t"                             \
  MICRO_RQ_SCALE(MICRO_RQ_NO_ZP)                              \
  "strb lr, [r4, r5]\n\t"                                     \
  "ldr r11, [r3], #4\n\t"                                     \
  MICRO_RQ_SCALE(MICRO_RQ_NO_ZP)                              \
  "strb lr, [r4], #1\n\t"                                     \
  "ldr r11, [r0], #4\n\t"                                     \
  MICRO_RQ_SCALE(MICRO_RQ_NO_ZP)                              \
  "strb lr, [r1], #1\n\t"                                     \
  "subs r6, r6, #1\n\t"                                       \
  "bne 22b\n\t"                                               \
  "ldrd r0, r1, [sp, #4]\n\t"                                 \
  "add r0, r0, r5, lsl #4\n\t"                                \
  "add r1, r1, r5, lsl #2\n\t"                                \
  "strd r0, r1, [sp, #4]\n\t"                                 \
  "ldr r12, [sp, #20]\n\t"                                    \
  "subs r12, r12, #1\n\t"                                     \
  "str r12, [sp, #20]\n\t"                                    \
  "bne 21b\n\t"                                               \
  "30:\n\t"

/* A call with different steps, in C, each output as micro.fixed_point_tir states it. Kept under
 * its name (used): the assembly branches to it with the arguments as they came. */
__attribute__((used, noinline)) static int32_t rq_table_steps(void* acc_ptr, void* table_ptr,
                                                              void* out_ptr, int32_t positions,
                                                              int32_t channels, int32_t acc_step,
                                                              int32_t out_step, int32_t zp,
                                                              int32_t qmin, int32_t qmax) {
  const int32_t* acc = acc_ptr;
  const int32_t* table = table_ptr;
  int8_t* out = out_ptr;
  for (int32_t c = 0; c < channels; ++c) {
    const int32_t* t = table + 4 * c;
    for (int32_t p = 0; p < positions; ++p) {
      int32_t x = (int32_t)((uint32_t)acc[p * acc_step + c] + (uint32_t)t[0]);
      out[p * out_step + c] = (int8_t)requantize_exact(x, t[1], -(t[2] + 1), zp, qmin, qmax);
    }
  }
  return 0;
}

/* Entry: calls with different steps go to C at once, nothing to do returns; then the variant
 * without a clamp or the one with it (label 20). Exits: label 8 returns 0; label 9 branches to
 * rq_table_steps with the arguments as they came. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
__attribute__((naked)) int32_t micro_dsp_requantize_table_q7(void* acc, void* table, void* out,
                                                             int32_t positions, int32_t channels,
                                                             int32_t acc_step, int32_t out_step,
                                                             int32_t zp, int32_t qmin,
                                                             int32_t qmax) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "sub sp, sp, #24\n\t"
      "ldrd r4, r5, [sp, #64]\n\t"   /* acc_step, out_step */
      "cmp r4, r5\n\t"
      "bne 9f\n\t"
      "ldr r6, [sp, #60]\n\t"        /* channels */
      "cmp r3, #1\n\t"
      "it ge\n\t"
      "cmpge r6, #1\n\t"
      "blt 8f\n\t"
      "str r3, [sp, #16]\n\t"        /* positions */
      "str r1, [sp, #12]\n\t"        /* table */
      "strd r0, r2, [sp, #4]\n\t"    /* the first group: acc, out */
      "ldrd r6, r4, [sp, #76]\n\t"   /* qmin, qmax */
      "cmn r6, #128\n\t"
      "it eq\n\t"
      "cmpeq r4, #127\n\t"
      "bne 20f\n\t"
      "asrs r12, r3, #2\n\t"
      "str r12, [sp, #20]\n\t"       /* groups of four */
      "ubfx r12, r3, #1, #1\n\t"
      "str r12, [sp]\n\t"            /* a pair after them */
      MICRO_RQT_FOURS
      MICRO_RQT_ALL(MICRO_RQ_NO_CLAMP)
      "20:\n\t"
      "asrs r12, r3, #1\n\t"
      "str r12, [sp]\n\t"            /* pairs */
      "mov r3, r6\n\t"               /* qmin (qmax in r4) */
      MICRO_RQT_ALL(MICRO_RQT_CLAMP)
      "8:\n\t"
      "add sp, sp, #24\n\t"
      "movs r0, #0\n\t"
      "pop {r4-r11, pc}\n\t"
      "9:\n\t"
      "add sp, sp, #24\n\t"
      "pop {r4-r11, lr}\n\t"
      "b.w rq_table_steps\n\t");
}
#pragma GCC diagnostic pop
