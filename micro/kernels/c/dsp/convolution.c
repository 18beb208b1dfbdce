/* int8 convolution on the DSP extension: two output positions by two output channels per pass.
 *
 * The window buffer holds int16 activations (widened once per row of positions by the TIR kernel
 * that calls this), each quad stored as (v0, v2, v1, v3); SXTB16 turns four int8 weights
 * (w0, w1, w2, w3) into the pairs (w0, w2) and, rotated by 8 bits, (w1, w3), so one SMLAD adds
 * two products of matching pairs. Per quad of the reduction, the two positions' activations are
 * two LDRDs and each of the two outputs' weights one LDR and two SXTB16, shared by both
 * positions: 16 instructions per 16 multiply-accumulates, plus 2 per four quads for the loop.
 * The loops over the pairs of outputs and of positions are in the same assembly, so registers
 * are saved once per call; each pair of outputs costs 12 instructions besides its quads and
 * their loop (the first quad starts the sums with SMUAD, the four sums are stored with two
 * STRDs: the kernel writes its results, it does not add them to the buffer), each call about 60
 * (the C that sets up the loops, entry and exit). The int32 sums equal the scalar loop's
 * (two's-complement addition is associative and SMLAD wraps the same way), so results are
 * bit-exact. See docs/dsp.md. */
#include "convolution.h"

#include <stddef.h>
#include <stdint.h>

#if !defined(__ARM_FEATURE_DSP) || !__ARM_FEATURE_DSP
#error "convolution.c needs a core with the Arm DSP extension (SXTB16, SMLAD)"
#endif
#include <arm_acle.h>

/* What the assembly loops read, built by micro_dsp_conv_q15q7 and copied onto their stack (the
 * offsets are spelled out in the assembly, checked below). Addresses and steps in bytes. */
struct conv_frame {
  const int16_t* a0;      /* position 0 of the current pair of positions, first kernel row */
  const int16_t* a1;      /* position 1 */
  int32_t rest;           /* quads of the first kernel row after the first one: quads - 1 */
  const int8_t* w_end;    /* end of the weights of every pair of outputs */
  int32_t* acc0;          /* sums of position 0 for the current pair of outputs */
  int32_t* acc1;          /* of position 1 */
  const int8_t* w;        /* start of the weights */
  const int16_t* a0_end;  /* where position 0's last kernel row ends */
  int32_t row_jump;       /* from the end of a kernel row's quads to the next row's start */
  int32_t a_step;         /* from one pair of positions to the next */
  int32_t acc_jump;       /* from the end of a pair of positions' sums to the next pair's */
  int32_t position_pairs; /* pairs of positions left, >= 1 */
};
_Static_assert(sizeof(struct conv_frame) == 48, "the assembly copies twelve words");
_Static_assert(offsetof(struct conv_frame, rest) == 8 && offsetof(struct conv_frame, w_end) == 12,
               "LDM sp, {r0, r1, r3, r12} loads a0, a1, rest, w_end");
_Static_assert(offsetof(struct conv_frame, acc0) == 16 && offsetof(struct conv_frame, w) == 24 &&
                   offsetof(struct conv_frame, a0_end) == 28 &&
                   offsetof(struct conv_frame, row_jump) == 32 &&
                   offsetof(struct conv_frame, a_step) == 36 &&
                   offsetof(struct conv_frame, acc_jump) == 40 &&
                   offsetof(struct conv_frame, position_pairs) == 44,
               "frame offsets used by the assembly");

/* The first product of a sum (SMUAD: no accumulator) and the others (SMLAD). */
#define MICRO_CONV_SMUAD(acc, x, w) "smuad " acc ", " x ", " w "\n\t"
#define MICRO_CONV_SMLAD(acc, x, w) "smlad " acc ", " x ", " w ", " acc "\n\t"

/* One quad: both positions' activations (LDRD, post-incremented), then each output's weights;
 * FIRST is MICRO_CONV_SMUAD for the first quad of the sums, MICRO_CONV_SMLAD after. 16
 * instructions. */
#define MICRO_CONV_QUAD_WITH(FIRST)       \
  "ldrd r8, r9, [r0], #8\n\t"             \
  "ldrd r10, r11, [r1], #8\n\t"           \
  "ldr r12, [r2], #4\n\t"                 \
  "sxtb16 lr, r12\n\t"                    \
  "sxtb16 r12, r12, ror #8\n\t"           \
  FIRST("r4", "r8", "lr")                 \
  "smlad r4, r9, r12, r4\n\t"             \
  FIRST("r6", "r10", "lr")                \
  "smlad r6, r11, r12, r6\n\t"            \
  "ldr r12, [r2], #4\n\t"                 \
  "sxtb16 lr, r12\n\t"                    \
  "sxtb16 r12, r12, ror #8\n\t"           \
  FIRST("r5", "r8", "lr")                 \
  "smlad r5, r9, r12, r5\n\t"             \
  FIRST("r7", "r10", "lr")                \
  "smlad r7, r11, r12, r7\n\t"
#define MICRO_CONV_QUAD MICRO_CONV_QUAD_WITH(MICRO_CONV_SMLAD)

/* r3 more quads (>= 0) of the current kernel row: one if r3 is odd, two if its bit 1 is set,
 * then four per iteration. Each LSRS shifts one bit of the count into C (the second also sets Z
 * when no four are left) and the quads leave the flags alone: 5 instructions, plus 2 per four
 * quads. Labels 1-4. */
#define MICRO_CONV_REST                   \
  "lsrs r3, r3, #1\n\t"                   \
  "bcc 1f\n\t"                            \
  MICRO_CONV_QUAD                         \
  "1:\n\t"                                \
  "lsrs r3, r3, #1\n\t"                   \
  "bcc 2f\n\t"                            \
  MICRO_CONV_QUAD                         \
  MICRO_CONV_QUAD                         \
  "2:\n\t"                                \
  "beq 4f\n\t"                            \
  "3:\n\t"                                \
  MICRO_CONV_QUAD                         \
  MICRO_CONV_QUAD                         \
  MICRO_CONV_QUAD                         \
  MICRO_CONV_QUAD                         \
  "subs r3, r3, #1\n\t"                   \
  "bne 3b\n\t"                            \
  "4:\n\t"

/* The four sums to the two positions' rows (STRD, the row pointers advanced and kept in the
 * frame), then the next pair of outputs while the weights last (LDM reloads a0, a1, rest and
 * w_end for it): 7 instructions. Loops to label 5. */
#define MICRO_CONV_STORE_NEXT_PAIR        \
  "ldrd r12, lr, [sp, #16]\n\t"           \
  "strd r4, r5, [r12], #8\n\t"            \
  "strd r6, r7, [lr], #8\n\t"             \
  "strd r12, lr, [sp, #16]\n\t"           \
  "ldm sp, {r0, r1, r3, r12}\n\t"         \
  "cmp r2, r12\n\t"                       \
  "bne 5b\n\t"

/* Entry: save, copy the frame (r0) onto the stack, load the first pair's pointers. Exit: the
 * next pair of positions (every window, sum and end address moves on, the weights restart) or
 * return. Loops to label 5; label 6. */
#define MICRO_CONV_ENTRY                  \
  "push {r4-r11, lr}\n\t"                 \
  "ldm r0, {r1-r12}\n\t"                  \
  "push {r1-r12}\n\t"                     \
  "ldr r2, [sp, #24]\n\t"                 \
  "ldm sp, {r0, r1, r3, r12}\n\t"
#define MICRO_CONV_NEXT_POSITIONS         \
  "ldr r3, [sp, #44]\n\t"                 \
  "subs r3, r3, #1\n\t"                   \
  "beq 6f\n\t"                            \
  "str r3, [sp, #44]\n\t"                 \
  "ldr r12, [sp, #36]\n\t"                \
  "add r0, r0, r12\n\t"                   \
  "add r1, r1, r12\n\t"                   \
  "strd r0, r1, [sp]\n\t"                 \
  "ldr r3, [sp, #28]\n\t"                 \
  "add r3, r3, r12\n\t"                   \
  "str r3, [sp, #28]\n\t"                 \
  "ldrd r12, lr, [sp, #16]\n\t"           \
  "ldr r3, [sp, #40]\n\t"                 \
  "add r12, r12, r3\n\t"                  \
  "add lr, lr, r3\n\t"                    \
  "strd r12, lr, [sp, #16]\n\t"           \
  "ldr r2, [sp, #24]\n\t"                 \
  "ldr r3, [sp, #8]\n\t"                  \
  "b 5b\n\t"                              \
  "6:\n\t"                                \
  "add sp, sp, #48\n\t"                   \
  "pop {r4-r11, pc}\n\t"

/* Pairs of positions by pairs of outputs, one kernel row (1-D convolutions, columns).
 * Assembly, not C: the quad loop needs 14 registers (four sums, four activation pairs, a weight
 * word and its extension, three pointers and a counter), every one AAPCS lets a function use,
 * which GCC does not allocate without spilling; everything else lives in the frame on the stack.
 * Per pair of outputs: the first quad (16), the others (16 each, 5 to dispatch them, 2 per four),
 * 7 to store and move on. */
__attribute__((naked, noinline)) static void conv_pairs(const struct conv_frame* frame) {
  __asm__ volatile(
      MICRO_CONV_ENTRY
      "5:\n\t"
      MICRO_CONV_QUAD_WITH(MICRO_CONV_SMUAD)
      MICRO_CONV_REST
      MICRO_CONV_STORE_NEXT_PAIR
      MICRO_CONV_NEXT_POSITIONS);
}

/* The same over several kernel rows (2-D convolutions): after a row's quads, 3 instructions to
 * see whether it was the last, else 7 to move both windows to the next row and count its quads.
 * Labels 7, 8. */
__attribute__((naked, noinline)) static void conv_pairs_rows(const struct conv_frame* frame) {
  __asm__ volatile(
      MICRO_CONV_ENTRY
      "5:\n\t"
      MICRO_CONV_QUAD_WITH(MICRO_CONV_SMUAD)
      "7:\n\t"
      MICRO_CONV_REST
      "ldr r12, [sp, #28]\n\t"
      "cmp r0, r12\n\t"
      "beq 8f\n\t"
      "ldr r12, [sp, #32]\n\t"
      "add r0, r0, r12\n\t"
      "add r1, r1, r12\n\t"
      "ldr r3, [sp, #8]\n\t"
      "adds r3, r3, #1\n\t"
      "b 7b\n\t"
      "8:\n\t"
      MICRO_CONV_STORE_NEXT_PAIR
      MICRO_CONV_NEXT_POSITIONS);
}

/* One position alone (the last of an odd number), in C: the same pairs, SXTB16 per weight word
 * for this position only. Not inlined, so that the caller's prologue stays short. */
__attribute__((noinline)) static void conv_position(const int16_t* x, const int8_t* w,
                                                    int32_t* out, int32_t quads, int32_t rows,
                                                    int32_t row_step, int32_t pairs) {
  for (int32_t pair = 0; pair < pairs; ++pair) {
    int32_t s0 = 0, s1 = 0;
    for (int32_t row = 0; row < rows; ++row) {
      const int32_t* xq = (const int32_t*)(x + row * row_step);
      for (int32_t q = 0; q < quads; ++q, w += 8) {
        int32_t w0 = *(const int32_t*)w, w1 = *(const int32_t*)(w + 4);
        int32_t w0h, w1h;
        __asm__("sxtb16 %0, %1, ror #8" : "=r"(w0h) : "r"(w0));
        __asm__("sxtb16 %0, %1, ror #8" : "=r"(w1h) : "r"(w1));
        s0 = __smlad(xq[2 * q], __sxtb16(w0), s0);
        s0 = __smlad(xq[2 * q + 1], w0h, s0);
        s1 = __smlad(xq[2 * q], __sxtb16(w1), s1);
        s1 = __smlad(xq[2 * q + 1], w1h, s1);
      }
    }
    out[2 * pair] = s0;
    out[2 * pair + 1] = s1;
  }
}

int32_t micro_dsp_conv_q15q7(void* window, void* weight, void* acc, int32_t quads, int32_t rows,
                             int32_t row_step, int32_t positions, int32_t window_step,
                             int32_t pairs, int32_t acc_step) {
  const int16_t* a = window;
  const int8_t* w = weight;
  int32_t* out = acc;
  if (positions >= 2) {
    const struct conv_frame frame = {
        .a0 = a,
        .a1 = a + window_step,
        .rest = quads - 1,
        .w_end = w + 8 * pairs * rows * quads,
        .acc0 = out,
        .acc1 = out + acc_step,
        .w = w,
        .a0_end = a + (rows - 1) * row_step + 4 * quads,
        .row_jump = 2 * row_step - 8 * quads,
        .a_step = 4 * window_step,
        .acc_jump = 8 * acc_step - 8 * pairs,
        .position_pairs = positions / 2,
    };
    if (rows == 1) {
      conv_pairs(&frame);
    } else {
      conv_pairs_rows(&frame);
    }
  }
  if (positions & 1) {
    conv_position(a + (positions - 1) * window_step, w, out + (positions - 1) * acc_step, quads,
                  rows, row_step, pairs);
  }
  return 0;
}
