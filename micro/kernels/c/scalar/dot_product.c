/* int8 dot products on cores without the DSP extension (see dot_product.h).
 *
 * Four outputs per pass: every activation is loaded once and multiplied with the weight of the
 * same input in four weight rows (w_stride bytes apart, the reduction innermost), so that its
 * load is shared by four multiply-accumulates. The outputs left over (n % 4) take one row at a
 * time. int32 sums wrap the same way as the TIR loop's, in any order: bit-exact.
 *
 * Armv7-M (Cortex-M3): LDRSB with post-increment and MLA; per activation and four outputs one
 *   LDRSB of the activation, four LDRSB of weights, four MLA (9 instructions for 4 MACs), the
 *   loop (SUBS, BNE) once per two activations: 2.5 instructions per MAC.
 * Armv6-M (Cortex-M0/M0+): no MLA, no post-increment, LDRSB only with a register offset, eight
 *   low registers: a common descending index addresses the activation and the four rows (LDRSB
 *   [row, i]), MULS multiplies, and the four accumulators live in r8-r11 (ADD takes high
 *   registers); per activation and four outputs 1 + 4 x 3 instructions, SUBS, and BPL once per
 *   two activations: 3.6 instructions per MAC.
 * Anything else (the reference): the same loops in C. */
#include "dot_product.h"

#include <stdint.h>

/* One output, in C (the rows left over, and the reference). */
static void dot1(const int8_t* x, const int8_t* w, int32_t* acc, int32_t len) {
  uint32_t a = (uint32_t)*acc;
  for (int32_t r = 0; r < len; ++r) a += (uint32_t)(x[r] * w[r]);
  *acc = (int32_t)a;
}

#if defined(__ARM_ARCH_7M__)

/* One activation (LDRSB, post-incremented) times the next weight of four rows: 9 instructions. */
#define MICRO_SCALAR_MLA4                               \
  "ldrsb %[xv], [%[x]], #1\n\t"                        \
  "ldrsb %[t], [%[w0]], #1\n\t"                        \
  "mla %[a0], %[xv], %[t], %[a0]\n\t"                  \
  "ldrsb %[t], [%[w1]], #1\n\t"                        \
  "mla %[a1], %[xv], %[t], %[a1]\n\t"                  \
  "ldrsb %[t], [%[w2]], #1\n\t"                        \
  "mla %[a2], %[xv], %[t], %[a2]\n\t"                  \
  "ldrsb %[t], [%[w3]], #1\n\t"                        \
  "mla %[a3], %[xv], %[t], %[a3]\n\t"

/* acc[0..3] += x . rows w, w + stride, w + 2 stride, w + 3 stride over len >= 1 inputs. */
static void dot4(const int8_t* x, const int8_t* w, int32_t* acc, int32_t len, int32_t stride) {
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  const int8_t* w0 = w;
  const int8_t* w1 = w0 + stride;
  const int8_t* w2 = w1 + stride;
  const int8_t* w3 = w2 + stride;
  int32_t xv, t;
  int32_t pairs = len >> 1;
  if (len & 1) { /* an odd first input */
    xv = *x++;
    a0 = (int32_t)((uint32_t)a0 + (uint32_t)(xv * *w0++));
    a1 = (int32_t)((uint32_t)a1 + (uint32_t)(xv * *w1++));
    a2 = (int32_t)((uint32_t)a2 + (uint32_t)(xv * *w2++));
    a3 = (int32_t)((uint32_t)a3 + (uint32_t)(xv * *w3++));
  }
  if (pairs > 0) {
    __asm__(
        "1:\n\t"
        MICRO_SCALAR_MLA4
        MICRO_SCALAR_MLA4
        "subs %[n], %[n], #1\n\t"
        "bne 1b"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x),
          [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [n] "+r"(pairs),
          [xv] "=&r"(xv), [t] "=&r"(t)
        :
        : "cc", "memory");
  }
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

#elif defined(__ARM_ARCH_6M__)

/* acc[0..3] += x . rows w, w + stride, w + 2 stride, w + 3 stride over len >= 1 inputs.
 *
 * Assembly (naked): the loop needs all eight low registers (the activation pointer, four row
 * pointers, the index, the activation and a product) and four high ones for the accumulators,
 * more than GCC allocates for inline assembly on Armv6-M. Stack after the saves: [sp] acc,
 * [sp, #4] r8-r11, [sp, #20] r4-r7 and lr, [sp, #40] stride (the fifth argument). */
#define MICRO_SCALAR_MAC4                                                      \
  "ldrsb r2, [r0, r3]\n\t"                                                     \
  "ldrsb r7, [r1, r3]\n\t" "muls r7, r2, r7\n\t" "add r8, r7\n\t"              \
  "ldrsb r7, [r4, r3]\n\t" "muls r7, r2, r7\n\t" "add r9, r7\n\t"              \
  "ldrsb r7, [r5, r3]\n\t" "muls r7, r2, r7\n\t" "add r10, r7\n\t"             \
  "ldrsb r7, [r6, r3]\n\t" "muls r7, r2, r7\n\t" "add r11, r7\n\t"             \
  "subs r3, r3, #1\n\t"
/* A naked function reads its arguments in assembly, where GCC does not see them used. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
__attribute__((naked, noinline)) static void dot4(const int8_t* x, const int8_t* w, int32_t* acc,
                                                   int32_t len, int32_t stride) {
  __asm__ volatile(
      ".syntax unified\n\t"
      "push {r4-r7, lr}\n\t"
      "mov r4, r8\n\t"
      "mov r5, r9\n\t"
      "mov r6, r10\n\t"
      "mov r7, r11\n\t"
      "push {r4-r7}\n\t"
      "push {r2}\n\t"
      "ldr r4, [r2, #0]\n\t"
      "mov r8, r4\n\t"
      "ldr r4, [r2, #4]\n\t"
      "mov r9, r4\n\t"
      "ldr r4, [r2, #8]\n\t"
      "mov r10, r4\n\t"
      "ldr r4, [r2, #12]\n\t"
      "mov r11, r4\n\t"
      "ldr r2, [sp, #40]\n\t"   /* stride */
      "adds r4, r1, r2\n\t"     /* row 1 */
      "adds r5, r4, r2\n\t"     /* row 2 */
      "adds r6, r5, r2\n\t"     /* row 3 */
      "subs r3, r3, #1\n\t"     /* i = len - 1, down to 0 */
      "lsls r2, r3, #31\n\t"    /* len even (i odd): pairs only */
      "bne 2f\n\t"
      MICRO_SCALAR_MAC4         /* len odd: one input first */
      "bmi 3f\n\t"
      "2:\n\t"
      MICRO_SCALAR_MAC4
      MICRO_SCALAR_MAC4
      "bpl 2b\n\t"
      "3:\n\t"
      "pop {r2}\n\t"
      "mov r4, r8\n\t"
      "str r4, [r2, #0]\n\t"
      "mov r4, r9\n\t"
      "str r4, [r2, #4]\n\t"
      "mov r4, r10\n\t"
      "str r4, [r2, #8]\n\t"
      "mov r4, r11\n\t"
      "str r4, [r2, #12]\n\t"
      "pop {r4-r7}\n\t"
      "mov r8, r4\n\t"
      "mov r9, r5\n\t"
      "mov r10, r6\n\t"
      "mov r11, r7\n\t"
      "pop {r4-r7, pc}\n\t");
}
#pragma GCC diagnostic pop

#else /* the reference */

static void dot4(const int8_t* x, const int8_t* w, int32_t* acc, int32_t len, int32_t stride) {
  for (int32_t k = 0; k < 4; ++k) dot1(x, w + k * stride, acc + k, len);
}

#endif

int32_t micro_scalar_dot_q7(void* x_ptr, void* w_ptr, void* acc_ptr, int32_t len, int32_t n,
                            int32_t w_stride) {
  const int8_t* x = x_ptr;
  const int8_t* w = w_ptr;
  int32_t* acc = acc_ptr;
  if (len <= 0) return 0;
  int32_t o = 0;
  for (; o + 4 <= n; o += 4) dot4(x, w + o * w_stride, acc + o, len, w_stride);
  for (; o < n; ++o) dot1(x, w + o * w_stride, acc + o, len);
  return 0;
}
