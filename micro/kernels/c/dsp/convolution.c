/* int8 convolution on the DSP extension: two output positions by two output channels per pass.
 *
 * The window buffer holds int16 activations (widened once per row of positions by the TIR kernel
 * that calls this), each quad stored as (v0, v2, v1, v3); SXTB16 turns four int8 weights
 * (w0, w1, w2, w3) into the pairs (w0, w2) and, rotated by 8 bits, (w1, w3), so one SMLAD adds
 * two products of matching pairs. Per quad of the reduction, the two positions' activations are
 * two LDRDs and each of the two outputs' weights one LDR and two SXTB16, shared by both
 * positions: 16 instructions per 16 multiply-accumulates, plus 2 per two quads for the loop. The
 * int32 sums equal the scalar loop's (two's-complement addition is associative and SMLAD wraps
 * the same way), so results are bit-exact. See docs/dsp.md. */
#include "convolution.h"

#include <stdint.h>

#if !defined(__ARM_FEATURE_DSP) || !__ARM_FEATURE_DSP
#error "convolution.c needs a core with the Arm DSP extension (SXTB16, SMLAD)"
#endif
#include <arm_acle.h>

/* One quad: both positions' activations (LDRD, post-incremented), then each output's weights. */
#define MICRO_CONV_QUAD                   \
  "ldrd r8, r9, [r0], #8\n\t"             \
  "ldrd r10, r11, [r1], #8\n\t"           \
  "ldr r12, [r2], #4\n\t"                 \
  "sxtb16 lr, r12\n\t"                    \
  "sxtb16 r12, r12, ror #8\n\t"           \
  "smlad r4, r8, lr, r4\n\t"              \
  "smlad r4, r9, r12, r4\n\t"             \
  "smlad r6, r10, lr, r6\n\t"             \
  "smlad r6, r11, r12, r6\n\t"            \
  "ldr r12, [r2], #4\n\t"                 \
  "sxtb16 lr, r12\n\t"                    \
  "sxtb16 r12, r12, ror #8\n\t"           \
  "smlad r5, r8, lr, r5\n\t"              \
  "smlad r5, r9, r12, r5\n\t"             \
  "smlad r7, r10, lr, r7\n\t"             \
  "smlad r7, r11, r12, r7\n\t"

/* sums[0..3] = (position 0, output 0), (0, 1), (1, 0), (1, 1) over `quads` (>= 1) quads.
 * Assembly, not C: the loop needs 14 registers (four accumulators, four activation pairs, a
 * weight word and its extension, three pointers and the end), every one AAPCS lets a function
 * use, which GCC does not allocate without spilling. An odd quad runs first, then two per
 * iteration: 16 instructions per quad plus 2 per two quads. */
__attribute__((naked, noinline)) static void dot2x2(const int16_t* a0, const int16_t* a1,
                                                    const int8_t* w, int32_t quads,
                                                    int32_t* sums) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "movs r4, #0\n\t"
      "movs r5, #0\n\t"
      "movs r6, #0\n\t"
      "movs r7, #0\n\t"
      "lsrs r12, r3, #1\n\t"        /* quad pairs; the odd quad (carry) first */
      "add r3, r0, r3, lsl #3\n\t" /* end of position 0's window */
      "bcc 1f\n\t"
      MICRO_CONV_QUAD
      "1:\n\t"
      "cmp r0, r3\n\t"
      "beq 3f\n\t"
      "2:\n\t"
      MICRO_CONV_QUAD
      MICRO_CONV_QUAD
      "cmp r0, r3\n\t"
      "bne 2b\n\t"
      "3:\n\t"
      "ldr r12, [sp, #36]\n\t" /* sums: the fifth argument, above the nine saved registers */
      "stmia r12, {r4-r7}\n\t"
      "pop {r4-r11, pc}\n\t");
}

int32_t micro_dsp_conv_q15q7(void* window, void* weight, void* acc, int32_t quads,
                             int32_t positions, int32_t window_step, int32_t pairs,
                             int32_t pair_stride, int32_t acc_step) {
  const int16_t* a = window;
  int32_t* out = acc;
  int32_t sums[4];
  for (int32_t p = 0; p + 1 < positions; p += 2) {
    const int8_t* w = weight;
    int32_t* row = out + p * acc_step;
    for (int32_t pair = 0; pair < pairs; ++pair, w += pair_stride) {
      dot2x2(a + p * window_step, a + (p + 1) * window_step, w, quads, sums);
      row[2 * pair] += sums[0];
      row[2 * pair + 1] += sums[1];
      row[acc_step + 2 * pair] += sums[2];
      row[acc_step + 2 * pair + 1] += sums[3];
    }
  }
  if (positions & 1) { /* the last position alone: the same pairs, in C */
    const int32_t* x = (const int32_t*)(a + (positions - 1) * window_step);
    int32_t* row = out + (positions - 1) * acc_step;
    const int8_t* w = weight;
    for (int32_t pair = 0; pair < pairs; ++pair, w += pair_stride) {
      int32_t s0 = 0, s1 = 0;
      const int32_t* wq = (const int32_t*)w;
      for (int32_t q = 0; q < quads; ++q) {
        int32_t w0 = wq[2 * q], w1 = wq[2 * q + 1];
        int32_t w0h, w1h;
        __asm__("sxtb16 %0, %1, ror #8" : "=r"(w0h) : "r"(w0));
        __asm__("sxtb16 %0, %1, ror #8" : "=r"(w1h) : "r"(w1));
        s0 = __smlad(x[2 * q], __sxtb16(w0), s0);
        s0 = __smlad(x[2 * q + 1], w0h, s0);
        s1 = __smlad(x[2 * q], __sxtb16(w1), s1);
        s1 = __smlad(x[2 * q + 1], w1h, s1);
      }
      row[2 * pair] += s0;
      row[2 * pair + 1] += s1;
    }
  }
  return 0;
}
