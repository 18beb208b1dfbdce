/* int8 dot products on cores without the DSP extension (see dot_product.h).
 *
 * Four outputs per pass: every activation is loaded once and multiplied with the weight of the
 * same input in four weight rows (w_stride bytes apart, the reduction innermost), so that its
 * load is shared by four multiply-accumulates. The outputs left over (n % 4) take one row at a
 * time. int32 sums wrap the same way as the TIR loop's, in any order: bit-exact.
 *
 * Armv7-M (Cortex-M3): LDRSB with post-increment and MLA; per activation and four outputs one
 *   LDRSB of the activation, four LDRSB of weights, four MLA (9 instructions for 4 MACs), the
 *   loop (SUBS, BNE) once per two activations: 2.5 instructions per MAC; the rows left over
 *   (1-3) the same way. micro_scalar_dot_q7x4 takes dsp's interleaved layout, eight outputs
 *   per pass with immediate offsets: 2.16 instructions per MAC (see there).
 * Armv6-M (Cortex-M0/M0+): no MLA, no post-increment, LDRSB only with a register offset, eight
 *   low registers: a common descending index addresses the activation and the four rows (LDRSB
 *   [row, i]), MULS multiplies, and the four accumulators live in r8-r11 (ADD takes high
 *   registers); per activation and four outputs 1 + 4 x 3 instructions, SUBS, and BPL once per
 *   eight activations: 3.53 instructions per MAC; all groups of four rows in one call.
 * Anything else (the reference): the same loops in C. */
#include "dot_product.h"


#if !defined(__ARM_ARCH_7M__) && !defined(__ARM_ARCH_6M__)
/* One output, in C (the rows left over, and the reference). */
static void dot1(const int8_t* x, const int8_t* w, int32_t* acc, int32_t len) {
  uint32_t a = (uint32_t)*acc;
  for (int32_t r = 0; r < len; ++r) a += (uint32_t)(x[r] * w[r]);
  *acc = (int32_t)a;
}
#endif

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

/* One activation times the next weight of one row (post-incremented): 2 instructions per MAC. */
#define MICRO_SCALAR_MLA1(a, w)                                \
  "ldrsb %[t], [%[" #w "]], #1\n\t"                          \
  "mla %[" #a "], %[xv], %[t], %[" #a "]\n\t"

/* The rows left over (1 to 3): acc[0..k) += x . rows w + j stride, as dot4, two inputs per loop
 * (per activation 1 + 2k instructions, SUBS and BNE once per two). */
static void dot_rows(const int8_t* x, const int8_t* w, int32_t* acc, int32_t len, int32_t stride,
                     int32_t k) {
  int32_t a0 = acc[0], a1 = k > 1 ? acc[1] : 0, a2 = k > 2 ? acc[2] : 0;
  const int8_t* w0 = w;
  const int8_t* w1 = w0 + stride;
  const int8_t* w2 = w1 + stride;
  int32_t xv, t;
  int32_t pairs = len >> 1;
  if (len & 1) { /* an odd first input */
    xv = *x++;
    a0 = (int32_t)((uint32_t)a0 + (uint32_t)(xv * *w0++));
    if (k > 1) a1 = (int32_t)((uint32_t)a1 + (uint32_t)(xv * *w1++));
    if (k > 2) a2 = (int32_t)((uint32_t)a2 + (uint32_t)(xv * *w2++));
  }
  if (pairs > 0) {
    if (k == 1) {
      __asm__("1:\n\t"
              "ldrsb %[xv], [%[x]], #1\n\t" MICRO_SCALAR_MLA1(a0, w0)
              "ldrsb %[xv], [%[x]], #1\n\t" MICRO_SCALAR_MLA1(a0, w0)
              "subs %[n], %[n], #1\n\t"
              "bne 1b"
              : [a0] "+r"(a0), [x] "+r"(x), [w0] "+r"(w0), [n] "+r"(pairs), [xv] "=&r"(xv),
                [t] "=&r"(t)
              :
              : "cc", "memory");
    } else if (k == 2) {
      __asm__("1:\n\t"
              "ldrsb %[xv], [%[x]], #1\n\t" MICRO_SCALAR_MLA1(a0, w0) MICRO_SCALAR_MLA1(a1, w1)
              "ldrsb %[xv], [%[x]], #1\n\t" MICRO_SCALAR_MLA1(a0, w0) MICRO_SCALAR_MLA1(a1, w1)
              "subs %[n], %[n], #1\n\t"
              "bne 1b"
              : [a0] "+r"(a0), [a1] "+r"(a1), [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1),
                [n] "+r"(pairs), [xv] "=&r"(xv), [t] "=&r"(t)
              :
              : "cc", "memory");
    } else {
      __asm__("1:\n\t"
              "ldrsb %[xv], [%[x]], #1\n\t"
              MICRO_SCALAR_MLA1(a0, w0) MICRO_SCALAR_MLA1(a1, w1) MICRO_SCALAR_MLA1(a2, w2)
              "ldrsb %[xv], [%[x]], #1\n\t"
              MICRO_SCALAR_MLA1(a0, w0) MICRO_SCALAR_MLA1(a1, w1) MICRO_SCALAR_MLA1(a2, w2)
              "subs %[n], %[n], #1\n\t"
              "bne 1b"
              : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [x] "+r"(x), [w0] "+r"(w0),
                [w1] "+r"(w1), [w2] "+r"(w2), [n] "+r"(pairs), [xv] "=&r"(xv), [t] "=&r"(t)
              :
              : "cc", "memory");
    }
  }
  acc[0] = a0;
  if (k > 1) acc[1] = a1;
  if (k > 2) acc[2] = a2;
}

/* Interleaved weights [n/4, L/4, 4, 4] (group of four outputs, quad of four inputs, output in
 * the group, input in the quad): eight outputs per pass, two groups (pointers r1, r2) whose 16
 * weights of a quad are reached with immediate offsets, the last one post-incremented by 16 (to
 * the next quad); the quad's inputs are taken in the order 1, 2, 3, 0 so that the activation
 * pointer (r0) and the groups' pointers advance with the loads of input 0. Per quad of inputs
 * and eight outputs: 4 LDRSB of activations, 32 LDRSB of weights, 32 MLA; SUBS and BNE once per
 * two quads: 138 instructions per 64 MACs (2.16 per MAC). Accumulators r4-r11, activation r12,
 * weight lr, quad pairs r3. A pass of four outputs (n % 8 == 4) takes one group the same way
 * (70 instructions per 32 MACs). */
#define MICRO_SCALAR_QUAD8 \
  "ldrsb r12, [r0, #1]\n\t" \
  "ldrsb lr, [r1, #1]\n\t" "mla r4, r12, lr, r4\n\t" \
  "ldrsb lr, [r2, #1]\n\t" "mla r8, r12, lr, r8\n\t" \
  "ldrsb lr, [r1, #5]\n\t" "mla r5, r12, lr, r5\n\t" \
  "ldrsb lr, [r2, #5]\n\t" "mla r9, r12, lr, r9\n\t" \
  "ldrsb lr, [r1, #9]\n\t" "mla r6, r12, lr, r6\n\t" \
  "ldrsb lr, [r2, #9]\n\t" "mla r10, r12, lr, r10\n\t" \
  "ldrsb lr, [r1, #13]\n\t" "mla r7, r12, lr, r7\n\t" \
  "ldrsb lr, [r2, #13]\n\t" "mla r11, r12, lr, r11\n\t" \
  "ldrsb r12, [r0, #2]\n\t" \
  "ldrsb lr, [r1, #2]\n\t" "mla r4, r12, lr, r4\n\t" \
  "ldrsb lr, [r2, #2]\n\t" "mla r8, r12, lr, r8\n\t" \
  "ldrsb lr, [r1, #6]\n\t" "mla r5, r12, lr, r5\n\t" \
  "ldrsb lr, [r2, #6]\n\t" "mla r9, r12, lr, r9\n\t" \
  "ldrsb lr, [r1, #10]\n\t" "mla r6, r12, lr, r6\n\t" \
  "ldrsb lr, [r2, #10]\n\t" "mla r10, r12, lr, r10\n\t" \
  "ldrsb lr, [r1, #14]\n\t" "mla r7, r12, lr, r7\n\t" \
  "ldrsb lr, [r2, #14]\n\t" "mla r11, r12, lr, r11\n\t" \
  "ldrsb r12, [r0, #3]\n\t" \
  "ldrsb lr, [r1, #3]\n\t" "mla r4, r12, lr, r4\n\t" \
  "ldrsb lr, [r2, #3]\n\t" "mla r8, r12, lr, r8\n\t" \
  "ldrsb lr, [r1, #7]\n\t" "mla r5, r12, lr, r5\n\t" \
  "ldrsb lr, [r2, #7]\n\t" "mla r9, r12, lr, r9\n\t" \
  "ldrsb lr, [r1, #11]\n\t" "mla r6, r12, lr, r6\n\t" \
  "ldrsb lr, [r2, #11]\n\t" "mla r10, r12, lr, r10\n\t" \
  "ldrsb lr, [r1, #15]\n\t" "mla r7, r12, lr, r7\n\t" \
  "ldrsb lr, [r2, #15]\n\t" "mla r11, r12, lr, r11\n\t" \
  "ldrsb r12, [r0], #4\n\t" \
  "ldrsb lr, [r1, #4]\n\t" "mla r5, r12, lr, r5\n\t" \
  "ldrsb lr, [r2, #4]\n\t" "mla r9, r12, lr, r9\n\t" \
  "ldrsb lr, [r1, #8]\n\t" "mla r6, r12, lr, r6\n\t" \
  "ldrsb lr, [r2, #8]\n\t" "mla r10, r12, lr, r10\n\t" \
  "ldrsb lr, [r1, #12]\n\t" "mla r7, r12, lr, r7\n\t" \
  "ldrsb lr, [r2, #12]\n\t" "mla r11, r12, lr, r11\n\t" \
  "ldrsb lr, [r1], #16\n\t" "mla r4, r12, lr, r4\n\t" \
  "ldrsb lr, [r2], #16\n\t" "mla r8, r12, lr, r8\n\t"

#define MICRO_SCALAR_QUAD4 \
  "ldrsb r12, [r0, #1]\n\t" \
  "ldrsb lr, [r1, #1]\n\t" "mla r4, r12, lr, r4\n\t" \
  "ldrsb lr, [r1, #5]\n\t" "mla r5, r12, lr, r5\n\t" \
  "ldrsb lr, [r1, #9]\n\t" "mla r6, r12, lr, r6\n\t" \
  "ldrsb lr, [r1, #13]\n\t" "mla r7, r12, lr, r7\n\t" \
  "ldrsb r12, [r0, #2]\n\t" \
  "ldrsb lr, [r1, #2]\n\t" "mla r4, r12, lr, r4\n\t" \
  "ldrsb lr, [r1, #6]\n\t" "mla r5, r12, lr, r5\n\t" \
  "ldrsb lr, [r1, #10]\n\t" "mla r6, r12, lr, r6\n\t" \
  "ldrsb lr, [r1, #14]\n\t" "mla r7, r12, lr, r7\n\t" \
  "ldrsb r12, [r0, #3]\n\t" \
  "ldrsb lr, [r1, #3]\n\t" "mla r4, r12, lr, r4\n\t" \
  "ldrsb lr, [r1, #7]\n\t" "mla r5, r12, lr, r5\n\t" \
  "ldrsb lr, [r1, #11]\n\t" "mla r6, r12, lr, r6\n\t" \
  "ldrsb lr, [r1, #15]\n\t" "mla r7, r12, lr, r7\n\t" \
  "ldrsb r12, [r0], #4\n\t" \
  "ldrsb lr, [r1, #4]\n\t" "mla r5, r12, lr, r5\n\t" \
  "ldrsb lr, [r1, #8]\n\t" "mla r6, r12, lr, r6\n\t" \
  "ldrsb lr, [r1, #12]\n\t" "mla r7, r12, lr, r7\n\t" \
  "ldrsb lr, [r1], #16\n\t" "mla r4, r12, lr, r4\n\t"

/* A naked function reads its arguments in assembly, where GCC does not see them used. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
/* Stack after the saves: [sp] x, [sp, #4] acc of the next pass, [sp, #8] len, [sp, #12] outputs
 * left, [sp, #16] r4-r11 and lr, [sp, #52] n (the fifth argument). */
__attribute__((naked, noinline)) int32_t micro_scalar_dot_q7x4(void* x_ptr, void* w_ptr,
                                                               void* acc_ptr, int32_t len,
                                                               int32_t n) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "sub sp, sp, #16\n\t"
      "ldr r12, [sp, #52]\n\t"   /* n */
      "str r0, [sp, #0]\n\t"
      "str r2, [sp, #4]\n\t"
      "str r3, [sp, #8]\n\t"
      "cmp r3, #0\n\t"
      "ble 9f\n\t"
      "0:\n\t"                   /* r12: outputs left, r1: their first group */
      "subs r12, r12, #8\n\t"
      "blt 5f\n\t"
      "str r12, [sp, #12]\n\t"
      "ldr r2, [sp, #4]\n\t"
      "ldm r2, {r4-r11}\n\t"
      "ldr r3, [sp, #8]\n\t"
      "add r2, r1, r3, lsl #2\n\t" /* the second group, 4 len bytes on */
      "ldr r0, [sp, #0]\n\t"
      "lsrs r3, r3, #3\n\t"      /* pairs of quads; carry: an odd quad */
      "bcc 1f\n\t"
      MICRO_SCALAR_QUAD8
      "1:\n\t"
      "cmp r3, #0\n\t"
      "beq 3f\n\t"
      "2:\n\t"
      MICRO_SCALAR_QUAD8
      MICRO_SCALAR_QUAD8
      "subs r3, r3, #1\n\t"
      "bne 2b\n\t"
      "3:\n\t"
      "mov r1, r2\n\t"           /* the second group's end: the next pass's first group */
      "ldr r12, [sp, #4]\n\t"
      "stm r12!, {r4-r11}\n\t"
      "str r12, [sp, #4]\n\t"
      "ldr r12, [sp, #12]\n\t"
      "b 0b\n\t"
      "5:\n\t"
      "adds r12, r12, #8\n\t"    /* 0 or 4 outputs left */
      "beq 9f\n\t"
      "ldr r2, [sp, #4]\n\t"
      "ldm r2, {r4-r7}\n\t"
      "ldr r3, [sp, #8]\n\t"
      "ldr r0, [sp, #0]\n\t"
      "lsrs r3, r3, #3\n\t"
      "bcc 6f\n\t"
      MICRO_SCALAR_QUAD4
      "6:\n\t"
      "cmp r3, #0\n\t"
      "beq 8f\n\t"
      "7:\n\t"
      MICRO_SCALAR_QUAD4
      MICRO_SCALAR_QUAD4
      "subs r3, r3, #1\n\t"
      "bne 7b\n\t"
      "8:\n\t"
      "ldr r2, [sp, #4]\n\t"
      "stm r2, {r4-r7}\n\t"
      "9:\n\t"
      "movs r0, #0\n\t"
      "add sp, sp, #16\n\t"
      "pop {r4-r11, pc}\n\t");
}
#pragma GCC diagnostic pop
#define MICRO_SCALAR_HAVE_X4 1

#elif defined(__ARM_ARCH_6M__)

/* acc[4g..4g+4) += x . rows w + (4g + j) stride for g < groups, j < 4, over len >= 1 inputs.
 *
 * Assembly (naked): the loop needs all eight low registers (the activation pointer, four row
 * pointers, the index, the activation and a product) and four high ones for the accumulators,
 * more than GCC allocates for inline assembly on Armv6-M. Eight inputs per loop (after one, two
 * and four for len % 8); the groups of four rows loop inside (no call per group). Stack after
 * the saves: [sp] acc of the group, [sp, #4] len, [sp, #8] r8-r11, [sp, #24] r4-r7 and lr,
 * [sp, #44] stride, [sp, #48] last (row 3 is row 2 + last: stride, or 0 to repeat row 2 when
 * groups is 1), [sp, #52] groups (the fifth to seventh arguments). */
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
__attribute__((naked, noinline)) static void dot4_naked(const int8_t* x, const int8_t* w,
                                                         int32_t* acc, int32_t len,
                                                         int32_t stride, int32_t last,
                                                         int32_t groups) {
  __asm__ volatile(
      ".syntax unified\n\t"
      "push {r4-r7, lr}\n\t"
      "mov r4, r8\n\t"
      "mov r5, r9\n\t"
      "mov r6, r10\n\t"
      "mov r7, r11\n\t"
      "push {r4-r7}\n\t"
      "sub sp, sp, #8\n\t"
      "str r2, [sp, #0]\n\t"
      "str r3, [sp, #4]\n\t"
      "0:\n\t"                  /* a group: r1 its row 0 */
      "ldr r2, [sp, #0]\n\t"
      "ldr r4, [r2, #0]\n\t"
      "mov r8, r4\n\t"
      "ldr r4, [r2, #4]\n\t"
      "mov r9, r4\n\t"
      "ldr r4, [r2, #8]\n\t"
      "mov r10, r4\n\t"
      "ldr r4, [r2, #12]\n\t"
      "mov r11, r4\n\t"
      "ldr r2, [sp, #44]\n\t"   /* stride */
      "adds r4, r1, r2\n\t"     /* row 1 */
      "adds r5, r4, r2\n\t"     /* row 2 */
      "ldr r2, [sp, #48]\n\t"   /* last */
      "adds r6, r5, r2\n\t"     /* row 3 */
      "ldr r3, [sp, #4]\n\t"
      "subs r3, r3, #1\n\t"     /* i = len - 1, down to 0 */
      "lsls r2, r3, #31\n\t"    /* len even (i odd): no single input */
      "bne 1f\n\t"
      MICRO_SCALAR_MAC4         /* len odd: one input first */
      "bpl 1f\n\t"
      "b 3f\n\t"
      "1:\n\t"                  /* i odd */
      "lsls r2, r3, #30\n\t"    /* i % 4 == 3: no pair */
      "bmi 4f\n\t"
      MICRO_SCALAR_MAC4
      MICRO_SCALAR_MAC4
      "bpl 4f\n\t"
      "b 3f\n\t"
      "4:\n\t"                  /* i % 4 == 3 */
      "lsls r2, r3, #29\n\t"    /* i % 8 == 7: no quad */
      "bmi 5f\n\t"
      MICRO_SCALAR_MAC4
      MICRO_SCALAR_MAC4
      MICRO_SCALAR_MAC4
      MICRO_SCALAR_MAC4
      "bpl 5f\n\t"
      "b 3f\n\t"
      "5:\n\t"                  /* i % 8 == 7: eight inputs per loop */
      MICRO_SCALAR_MAC4
      MICRO_SCALAR_MAC4
      MICRO_SCALAR_MAC4
      MICRO_SCALAR_MAC4
      MICRO_SCALAR_MAC4
      MICRO_SCALAR_MAC4
      MICRO_SCALAR_MAC4
      MICRO_SCALAR_MAC4
      "bpl 5b\n\t"
      "3:\n\t"
      "ldr r2, [sp, #0]\n\t"
      "mov r4, r8\n\t"
      "str r4, [r2, #0]\n\t"
      "mov r4, r9\n\t"
      "str r4, [r2, #4]\n\t"
      "mov r4, r10\n\t"
      "str r4, [r2, #8]\n\t"
      "mov r4, r11\n\t"
      "str r4, [r2, #12]\n\t"
      "adds r2, r2, #16\n\t"
      "str r2, [sp, #0]\n\t"
      "ldr r2, [sp, #44]\n\t"
      "adds r1, r6, r2\n\t"     /* the next group's row 0: row 3 + stride */
      "ldr r2, [sp, #52]\n\t"
      "subs r2, r2, #1\n\t"
      "str r2, [sp, #52]\n\t"
      "beq 9f\n\t"
      "b 0b\n\t"
      "9:\n\t"
      "add sp, sp, #8\n\t"
      "pop {r4-r7}\n\t"
      "mov r8, r4\n\t"
      "mov r9, r5\n\t"
      "mov r10, r6\n\t"
      "mov r11, r7\n\t"
      "pop {r4-r7, pc}\n\t");
}
#pragma GCC diagnostic pop

#define MICRO_SCALAR_HAVE_GROUPS 1

/* All whole groups of four rows in one call. */
static void dot4_groups(const int8_t* x, const int8_t* w, int32_t* acc, int32_t len,
                        int32_t stride, int32_t groups) {
  dot4_naked(x, w, acc, len, stride, stride, groups);
}

/* One row: LDRSB x and w at a common descending index, MULS, ADDS, SUBS; BPL once per two
 * inputs (5.5 instructions per MAC; GCC's loop for dot1 takes about 8). */
static void dot1_v6m(const int8_t* x, const int8_t* w, int32_t* acc, int32_t len) {
  int32_t a = *acc;
  int32_t i = len - 1;
  int32_t xv, t;
  if (len & 1) { /* the last input first: an even count left */
    a = (int32_t)((uint32_t)a + (uint32_t)(x[i] * w[i]));
    --i;
  }
  if (i > 0) {
    __asm__(".syntax unified\n\t" /* GCC wraps Thumb-1 inline assembly in divided syntax */
            "1:\n\t"
            "ldrsb %[xv], [%[x], %[i]]\n\t"
            "ldrsb %[t], [%[w], %[i]]\n\t"
            "muls %[t], %[xv], %[t]\n\t"
            "adds %[a], %[a], %[t]\n\t"
            "subs %[i], %[i], #1\n\t"
            "ldrsb %[xv], [%[x], %[i]]\n\t"
            "ldrsb %[t], [%[w], %[i]]\n\t"
            "muls %[t], %[xv], %[t]\n\t"
            "adds %[a], %[a], %[t]\n\t"
            "subs %[i], %[i], #1\n\t"
            "bpl 1b"
            : [a] "+l"(a), [i] "+l"(i), [xv] "=&l"(xv), [t] "=&l"(t)
            : [x] "l"(x), [w] "l"(w)
            : "cc", "memory");
  }
  *acc = a;
}

/* The rows left over: three as four whose last repeats the third (its sum thrown away), fewer
 * one at a time (dot1_v6m). */
static void dot_rows(const int8_t* x, const int8_t* w, int32_t* acc, int32_t len, int32_t stride,
                     int32_t k) {
  if (k == 3) {
    int32_t a[4] = {acc[0], acc[1], acc[2], 0};
    dot4_naked(x, w, a, len, stride, 0, 1);
    acc[0] = a[0], acc[1] = a[1], acc[2] = a[2];
    return;
  }
  for (int32_t j = 0; j < k; ++j) dot1_v6m(x, w + j * stride, acc + j, len);
}

#else /* the reference */

static void dot4(const int8_t* x, const int8_t* w, int32_t* acc, int32_t len, int32_t stride) {
  for (int32_t k = 0; k < 4; ++k) dot1(x, w + k * stride, acc + k, len);
}

#endif

#if !defined(__ARM_ARCH_7M__) && !defined(__ARM_ARCH_6M__)
/* The rows left over (1 to 3), one at a time. */
static void dot_rows(const int8_t* x, const int8_t* w, int32_t* acc, int32_t len, int32_t stride,
                     int32_t k) {
  for (int32_t j = 0; j < k; ++j) dot1(x, w + j * stride, acc + j, len);
}
#endif

#if !defined(MICRO_SCALAR_HAVE_X4)
/* Interleaved weights [n/4, L/4, 4, 4], in C (the reference; Armv6-M builds transpose instead). */
int32_t micro_scalar_dot_q7x4(void* x_ptr, void* w_ptr, void* acc_ptr, int32_t len, int32_t n) {
  const int8_t* x = x_ptr;
  const int8_t* w = w_ptr;
  int32_t* acc = acc_ptr;
  for (int32_t o = 0; o < n; ++o) {
    uint32_t a = (uint32_t)acc[o];
    for (int32_t r = 0; r < len; ++r)
      a += (uint32_t)(x[r] * w[(o / 4) * 4 * len + (r / 4) * 16 + (o % 4) * 4 + r % 4]);
    acc[o] = (int32_t)a;
  }
  return 0;
}
#endif

int32_t micro_scalar_dot_q7(void* x_ptr, void* w_ptr, void* acc_ptr, int32_t len, int32_t n,
                            int32_t w_stride) {
  const int8_t* x = x_ptr;
  const int8_t* w = w_ptr;
  int32_t* acc = acc_ptr;
  if (len <= 0) return 0;
  int32_t o = 0;
#if defined(MICRO_SCALAR_HAVE_GROUPS)
  if (n >= 4) dot4_groups(x, w, acc, len, w_stride, n >> 2);
  o = n & ~3;
#else
  for (; o + 4 <= n; o += 4) dot4(x, w + o * w_stride, acc + o, len, w_stride);
#endif
  if (o < n) dot_rows(x, w + o * w_stride, acc + o, len, w_stride, n - o);
  return 0;
}

/* ---- Packed 4-bit weights (micro_scalar_dot_q7q4) ----
 * A weight byte holds two weights; the low one is (int8_t)(b << 4) >> 4 and the high one
 * (int8_t)b >> 4: one SBFX each on Armv7-M (LSLS + ASRS on Armv6-M). Four outputs per pass share
 * each pair of activations: per two inputs 2 LDRSB, then per output LDRB, 2 extractions and 2
 * MLA (about 3 instructions per MAC on Armv7-M). */

/* The weights of byte b: low and high nibble, sign-extended. */
static inline int32_t nibble_low(int32_t b) { return (int32_t)((uint32_t)b << 28) >> 28; }
static inline int32_t nibble_high(int32_t b) { return (int32_t)((uint32_t)b << 24) >> 28; }

/* a + x * lo + y * hi, wrapping like TIR's int32 sums. */
static inline int32_t mac2(int32_t a, int32_t x, int32_t lo, int32_t y, int32_t hi) {
  return (int32_t)((uint32_t)a + (uint32_t)(x * lo) + (uint32_t)(y * hi));
}

/* acc[0..k) += x . w4(row j) for k <= 4 rows w_stride bytes apart. */
static inline void q4_rows(const int8_t* x, const uint8_t* w, int32_t* acc, int32_t len,
                           int32_t w_stride, int32_t k) {
  int32_t a0 = acc[0], a1 = k > 1 ? acc[1] : 0, a2 = k > 2 ? acc[2] : 0, a3 = k > 3 ? acc[3] : 0;
  const uint8_t* w0 = w;
  const uint8_t* w1 = w + (k > 1 ? w_stride : 0);
  const uint8_t* w2 = w + (k > 2 ? 2 * w_stride : 0);
  const uint8_t* w3 = w + (k > 3 ? 3 * w_stride : 0);
  const int32_t pairs = len / 2;
  for (int32_t j = 0; j < pairs; ++j) {
    const int32_t xe = x[2 * j], xo = x[2 * j + 1];
    int32_t b = w0[j];
    a0 = mac2(a0, xe, nibble_low(b), xo, nibble_high(b));
    if (k > 1) b = w1[j], a1 = mac2(a1, xe, nibble_low(b), xo, nibble_high(b));
    if (k > 2) b = w2[j], a2 = mac2(a2, xe, nibble_low(b), xo, nibble_high(b));
    if (k > 3) b = w3[j], a3 = mac2(a3, xe, nibble_low(b), xo, nibble_high(b));
  }
  if (len & 1) {
    const int32_t xe = x[len - 1];
    a0 = mac2(a0, xe, nibble_low(w0[pairs]), 0, 0);
    if (k > 1) a1 = mac2(a1, xe, nibble_low(w1[pairs]), 0, 0);
    if (k > 2) a2 = mac2(a2, xe, nibble_low(w2[pairs]), 0, 0);
    if (k > 3) a3 = mac2(a3, xe, nibble_low(w3[pairs]), 0, 0);
  }
  acc[0] = a0;
  if (k > 1) acc[1] = a1;
  if (k > 2) acc[2] = a2;
  if (k > 3) acc[3] = a3;
}

int32_t micro_scalar_dot_q7q4(void* x_ptr, void* w_ptr, void* acc_ptr, int32_t len, int32_t n,
                              int32_t w_stride) {
  const int8_t* x = x_ptr;
  const uint8_t* w = w_ptr;
  int32_t* acc = acc_ptr;
  int32_t o = 0;
  for (; o + 4 <= n; o += 4) q4_rows(x, w + o * w_stride, acc + o, len, w_stride, 4);
  if (n - o == 3) q4_rows(x, w + o * w_stride, acc + o, len, w_stride, 3);
  if (n - o == 2) q4_rows(x, w + o * w_stride, acc + o, len, w_stride, 2);
  if (n - o == 1) q4_rows(x, w + o * w_stride, acc + o, len, w_stride, 1);
  return 0;
}
