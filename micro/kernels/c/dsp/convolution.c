/* int8 convolution on the DSP extension: two output positions by two output channels per pass.
 *
 * The window buffer holds int16 activations (widened once per row of positions by the TIR kernel
 * that calls this), each quad stored as (v0, v2, v1, v3); SXTB16 turns four int8 weights (w0, w1,
 * w2, w3) into the pairs (w0, w2) and, rotated by 8 bits, (w1, w3), so one SMLAD adds two products
 * of matching pairs. Per quad of the reduction, the two positions' activations are two LDRDs and
 * each of the two outputs' weights one LDR and two SXTB16, shared by both positions: 16
 * instructions per 16 multiply-accumulates, plus 2 per four quads for the loop. The loops over the
 * pairs of outputs and of positions are in the same assembly, so registers are saved once per call;
 * each pair of outputs costs 12 instructions besides its quads and their loop (the first quad
 * starts the sums with SMUAD, the four sums are stored with two STRDs: the kernel writes its
 * results, it does not add them to the buffer), each call 37 (a dispatch of 6, 25 to set up the
 * loops from the arguments, 6 to return). The int32 sums equal the scalar loop's (two's-complement
 * addition is associative and SMLAD wraps the same way), so results are bit-exact. See
 * docs/dsp.md. */
#include "convolution.h"

#include <stdint.h>

#if !defined(__ARM_FEATURE_DSP) || !__ARM_FEATURE_DSP
#error "convolution.c needs a core with the Arm DSP extension (SXTB16, SMLAD)"
#endif
#include <arm_acle.h>

/* The assembly loops keep what they do not hold in registers in a frame of twelve words on
 * their stack, computed at entry from the arguments (addresses and steps in bytes):
 *   [sp]      a0        position 0's window (current pair of positions, first kernel row)
 *   [sp, #4]  a1        position 1's
 *   [sp, #8]  rest      quads of the first kernel row after the first one: quads - 1
 *   [sp, #12] w_end     end of the weights of every pair of outputs
 *   [sp, #16] acc0      sums of position 0 for the current pair of outputs
 *   [sp, #20] acc1      of position 1
 *   [sp, #24] pp        pairs of positions left, >= 1
 *   [sp, #28] a_step    from one pair of positions to the next
 *   [sp, #32] a0_end    where position 0's last kernel row ends
 *   [sp, #36] row_jump  from the end of a kernel row's quads to the next row's start
 *   [sp, #40] w         start of the weights
 *   [sp, #44] acc_jump  from the end of a pair of positions' sums to the next pair's
 * LDM sp, {r0, r1, r3, r12} loads a0, a1, rest and w_end at once. */

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

/* Entry (the arguments of micro_dsp_conv_q15q7, positions even): save, compute the frame from
 * the arguments (r0-r3 and six on the stack, 36 bytes up once saved) in registers r0-r11 and
 * push it, load the first pair's pointers: 25 instructions. Exit: the next pair of positions
 * (every window, sum and end address moves on, the weights restart) or return 0. Loops to label
 * 5; label 6. */
#define MICRO_CONV_ENTRY                                          \
  "push {r4-r11, lr}\n\t"                                         \
  "add r12, sp, #36\n\t"          /* the stack arguments */       \
  "ldm r12, {r4-r9}\n\t"          /* rows .. acc_step */          \
  "lsrs r6, r6, #1\n\t"           /* pp = positions / 2 */        \
  "mov r10, r1\n\t"               /* w */                         \
  "add r1, r0, r7, lsl #1\n\t"    /* a1 = a0 + window_step */     \
  "lsls r7, r7, #2\n\t"           /* a_step */                    \
  "mul r12, r4, r3\n\t"           /* rows * quads */              \
  "mul r12, r12, r8\n\t"          /* ... * pairs */               \
  "lsls r11, r9, #3\n\t"                                          \
  "sub r11, r11, r8, lsl #3\n\t"  /* acc_jump */                  \
  "subs r8, r4, #1\n\t"           /* rows - 1 */                  \
  "mov r4, r2\n\t"                /* acc0 */                      \
  "add lr, r2, r9, lsl #2\n\t"    /* acc1, in lr for now */       \
  "mul r8, r8, r5\n\t"                                            \
  "add r8, r0, r8, lsl #1\n\t"                                    \
  "add r8, r8, r3, lsl #3\n\t"    /* a0_end */                    \
  "lsls r9, r5, #1\n\t"                                           \
  "sub r9, r9, r3, lsl #3\n\t"    /* row_jump */                  \
  "mov r5, lr\n\t"                /* acc1 */                      \
  "subs r2, r3, #1\n\t"           /* rest */                      \
  "add r3, r10, r12, lsl #3\n\t"  /* w_end */                     \
  "push {r0-r11}\n\t"             /* the frame */                 \
  "mov r2, r10\n\t"                                               \
  "ldm sp, {r0, r1, r3, r12}\n\t"
#define MICRO_CONV_NEXT_POSITIONS         \
  "ldr r3, [sp, #24]\n\t"                 \
  "subs r3, r3, #1\n\t"                   \
  "beq 6f\n\t"                            \
  "str r3, [sp, #24]\n\t"                 \
  "ldr r12, [sp, #28]\n\t"                \
  "add r0, r0, r12\n\t"                   \
  "add r1, r1, r12\n\t"                   \
  "strd r0, r1, [sp]\n\t"                 \
  "ldr r3, [sp, #32]\n\t"                 \
  "add r3, r3, r12\n\t"                   \
  "str r3, [sp, #32]\n\t"                 \
  "ldrd r12, lr, [sp, #16]\n\t"           \
  "ldr r3, [sp, #44]\n\t"                 \
  "add r12, r12, r3\n\t"                  \
  "add lr, lr, r3\n\t"                    \
  "strd r12, lr, [sp, #16]\n\t"           \
  "ldr r2, [sp, #40]\n\t"                 \
  "ldr r3, [sp, #8]\n\t"                  \
  "b 5b\n\t"                              \
  "6:\n\t"                                \
  "add sp, sp, #48\n\t"                   \
  "movs r0, #0\n\t"                       \
  "pop {r4-r11, pc}\n\t"

/* The arguments of micro_dsp_conv_q15q7, which the assembly functions take as they are. */
#define CONV_ARGS                                                                     \
  void* window, void* weight, void* acc, int32_t quads, int32_t rows, int32_t row_step, \
      int32_t positions, int32_t window_step, int32_t pairs, int32_t acc_step

/* The naked functions below read their arguments in assembly, where GCC does not see them used. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"

/* Pairs of positions by pairs of outputs, one kernel row (1-D convolutions, columns).
 * Assembly, not C: the quad loop needs 14 registers (four sums, four activation pairs, a weight
 * word and its extension, three pointers and a counter), every one AAPCS lets a function use,
 * which GCC does not allocate without spilling; everything else lives in the frame on the stack.
 * Per pair of outputs: the first quad (16), the others (16 each, 5 to dispatch them, 2 per four),
 * 7 to store and move on. */
__attribute__((naked, noinline, used)) static int32_t conv_pairs(CONV_ARGS) {
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
__attribute__((naked, noinline, used)) static int32_t conv_pairs_rows(CONV_ARGS) {
  __asm__ volatile(
      MICRO_CONV_ENTRY
      "5:\n\t"
      MICRO_CONV_QUAD_WITH(MICRO_CONV_SMUAD)
      "7:\n\t"
      MICRO_CONV_REST
      "ldr r12, [sp, #32]\n\t"
      "cmp r0, r12\n\t"
      "beq 8f\n\t"
      "ldr r12, [sp, #36]\n\t"
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

/* An odd number of positions: the pairs in assembly, the last position in C. Kept under its
 * name (used): micro_dsp_conv_q15q7 branches to it from assembly. */
__attribute__((used, noinline)) static int32_t conv_odd(CONV_ARGS) {
  if (positions > 1) {
    if (rows == 1) {
      conv_pairs(window, weight, acc, quads, rows, row_step, positions - 1, window_step, pairs,
                 acc_step);
    } else {
      conv_pairs_rows(window, weight, acc, quads, rows, row_step, positions - 1, window_step,
                      pairs, acc_step);
    }
  }
  conv_position((const int16_t*)window + (positions - 1) * window_step, weight,
                (int32_t*)acc + (positions - 1) * acc_step, quads, rows, row_step, pairs);
  return 0;
}

/* A branch, with the arguments untouched, to conv_odd, conv_pairs or conv_pairs_rows: 6
 * instructions (GCC's tail calls reload and store back the six stack arguments first). */
__attribute__((naked)) int32_t micro_dsp_conv_q15q7(void* window, void* weight, void* acc,
                                                     int32_t quads, int32_t rows,
                                                     int32_t row_step, int32_t positions,
                                                     int32_t window_step, int32_t pairs,
                                                     int32_t acc_step) {
  __asm__ volatile(
      "ldr r12, [sp, #8]\n\t" /* positions */
      "lsls r12, r12, #31\n\t"
      "bne.w conv_odd\n\t"
      "ldr r12, [sp]\n\t" /* rows */
      "cmp r12, #1\n\t"
      "beq.w conv_pairs\n\t"
      "b.w conv_pairs_rows\n\t");
}
#pragma GCC diagnostic pop
