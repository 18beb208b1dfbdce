/* int8 dot products on the DSP extension (see dot_product.h and docs/dsp.md): a two-output and a
 * four-output SMLAD micro-kernel, and a two-output one for packed 4-bit weights (below).
 *
 * Four consecutive int8 values v0..v3 in one word become two int16 pairs with SXTB16:
 * (v0, v2) and, rotated by 8 bits, (v1, v3). Extending the activations and the weights the same
 * way pairs every activation with its own weight, so one SMLAD adds two products. The
 * activations are extended once per chunk into a static buffer and reused by every output; two
 * or four outputs are accumulated at once in registers. The int32 sum equals the scalar loop's
 * (two's-complement addition is associative and SMLAD's result wraps the same way), so results
 * are bit-exact. */
#include "dot_product.h"

#include <stdint.h>
#include <string.h>

#if !defined(__ARM_FEATURE_DSP) || !__ARM_FEATURE_DSP
#error "dot_product.c needs a core with the Arm DSP extension (SXTB16, SMLAD)"
#endif
#include <arm_acle.h>

/* Activation quads extended per pass, into one static buffer (512 bytes of RAM, counted with the
 * model's static memory) rather than the stack: the firmware is single-threaded, and a stack
 * buffer would be most of the model's stack. */
#define MICRO_DSP_CHUNK_QUADS 64
static int32_t micro_dsp_pairs[2 * MICRO_DSP_CHUNK_QUADS] __attribute__((aligned(8)));

/* Extend `quads` groups of four activations into the pairs (x0, x2), (x1, x3) of each group. */
static void extend_activations(const int8_t* x, int32_t quads);

/* One word of four int8 values; memcpy lets the compiler emit an unaligned LDR. */
static inline int32_t load_q7x4(const int8_t* p) {
  int32_t word;
  memcpy(&word, p, sizeof word);
  return word;
}

/* (v1, v3) of a word: SXTB16 with its built-in rotation, which GCC's ACLE lacks. */
static inline int32_t sxtb16_ror8(int32_t word) {
  int32_t pair;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(pair) : "r"(word));
  return pair;
}

/* The two SMLADs of four activations (pre-extended pairs xa, xb) with four weights. */
static inline int32_t mac_q7x4(int32_t acc, int32_t xa, int32_t xb, const int8_t* w) {
  int32_t word = load_q7x4(w);
  acc = __smlad(xa, __sxtb16(word), acc);
  return __smlad(xb, sxtb16_ror8(word), acc);
}

/* Every activation of a call passes through here once: assembly keeps it at five instructions
 * per quad (an unaligned LDR, two SXTB16, one STRD, and the counter), where GCC's loop takes
 * eight. quads >= 1. */
static void extend_activations(const int8_t* x, int32_t quads) {
  int32_t* pairs = micro_dsp_pairs;
  int32_t word, low, high;
  __asm__ volatile(
      "1:\n\t"
      "ldr %[word], [%[x]], #4\n\t"
      "sxtb16 %[low], %[word]\n\t"
      "sxtb16 %[high], %[word], ror #8\n\t"
      "strd %[low], %[high], [%[pairs]], #8\n\t"
      "subs %[quads], %[quads], #1\n\t"
      "bne 1b"
      : [x] "+r"(x), [pairs] "+r"(pairs), [quads] "+r"(quads), [word] "=&r"(word),
        [low] "=&r"(low), [high] "=&r"(high)
      :
      : "cc", "memory");
}

/* Eight activations' pairs (two quads) into xa0/xb0/xa1/xb1. */
#define MICRO_DSP_PAIRS8                          \
  "ldrd %[xa0], %[xb0], [%[p]], #8\n\t"        \
  "ldrd %[xa1], %[xb1], [%[p]], #8\n\t"

/* One output's eight activations (16 MACs' worth of pairs already in xa0/xb0/xa1/xb1): its eight
 * weights (one LDRD from word-aligned `w`), four SXTB16 and four SMLAD into `a`. */
#define MICRO_DSP_DOT8(a, w)                              \
  "ldrd %[wa], %[wb], [%[" w "]], #8\n\t"              \
  "sxtb16 %[t], %[wa]\n\t"                              \
  "smlad %[" a "], %[xa0], %[t], %[" a "]\n\t"          \
  "sxtb16 %[t], %[wa], ror #8\n\t"                      \
  "smlad %[" a "], %[xb0], %[t], %[" a "]\n\t"          \
  "sxtb16 %[t], %[wb]\n\t"                              \
  "smlad %[" a "], %[xa1], %[t], %[" a "]\n\t"          \
  "sxtb16 %[t], %[wb], ror #8\n\t"                      \
  "smlad %[" a "], %[xb1], %[t], %[" a "]\n\t"

/* Two outputs over pre-extended activation pairs, `iterations` times eight activations.
 *
 * The loop is assembly because it needs 13 registers at once (two accumulators, three pointers,
 * a counter, four activation pairs' worth of temporaries and a scratch register) and GCC spills
 * some of them when it allocates this loop itself. Per eight activations and two outputs (16
 * MACs): two LDRD of activation pairs, two LDRD of weights (w0 and w1 must be word-aligned), eight
 * SXTB16, eight SMLAD, SUBS and BNE: 22 instructions. */
static void dot2_aligned(const int32_t* pairs, int32_t iterations, const int8_t* w0,
                         const int8_t* w1, int32_t* acc) {
  int32_t a0 = acc[0], a1 = acc[1];
  int32_t xa0, xb0, xa1, xb1, wa, wb, t;
  __asm__(
      "1:\n\t"
      MICRO_DSP_PAIRS8
      MICRO_DSP_DOT8("a0", "w0")
      MICRO_DSP_DOT8("a1", "w1")
      "subs %[n], %[n], #1\n\t"
      "bne 1b"
      : [a0] "+r"(a0), [a1] "+r"(a1), [p] "+r"(pairs), [w0] "+r"(w0), [w1] "+r"(w1),
        [n] "+r"(iterations), [xa0] "=&r"(xa0), [xb0] "=&r"(xb0), [xa1] "=&r"(xa1),
        [xb1] "=&r"(xb1), [wa] "=&r"(wa), [wb] "=&r"(wb), [t] "=&r"(t)
      :
      : "cc", "memory");
  acc[0] = a0, acc[1] = a1;
}

/* One output (an odd one left by the pairs): 13 instructions per eight activations, where the C
 * loop takes about 18. */
static void dot1_aligned(const int32_t* pairs, int32_t iterations, const int8_t* w0,
                         int32_t* acc) {
  int32_t a0 = acc[0];
  int32_t xa0, xb0, xa1, xb1, wa, wb, t;
  __asm__(
      "1:\n\t"
      MICRO_DSP_PAIRS8
      MICRO_DSP_DOT8("a0", "w0")
      "subs %[n], %[n], #1\n\t"
      "bne 1b"
      : [a0] "+r"(a0), [p] "+r"(pairs), [w0] "+r"(w0), [n] "+r"(iterations),
        [xa0] "=&r"(xa0), [xb0] "=&r"(xb0), [xa1] "=&r"(xa1), [xb1] "=&r"(xb1), [wa] "=&r"(wa),
        [wb] "=&r"(wb), [t] "=&r"(t)
      :
      : "cc", "memory");
  acc[0] = a0;
}

/* The same in C for rows that are not word-aligned (LDR may be unaligned, LDRD may not). */
static void dot2(const int32_t* pairs, const int32_t* end, const int8_t* w0, const int8_t* w1,
                 int32_t* acc) {
  int32_t a0 = acc[0], a1 = acc[1];
  for (const int32_t* p = pairs; p < end; p += 4, w0 += 8, w1 += 8) {
    a0 = mac_q7x4(a0, p[0], p[1], w0);
    a1 = mac_q7x4(a1, p[0], p[1], w1);
    a0 = mac_q7x4(a0, p[2], p[3], w0 + 4);
    a1 = mac_q7x4(a1, p[2], p[3], w1 + 4);
  }
  acc[0] = a0, acc[1] = a1;
}

/* acc[o] += x[0:4*quads] . w[o*w_stride : o*w_stride + 4*quads] with quads <= the chunk. */
static void dot_quads(const int8_t* x, const int8_t* w, int32_t* acc, int32_t quads, int32_t n,
                      int32_t w_stride) {
  const int32_t* pairs = micro_dsp_pairs;
  extend_activations(x, quads);
  const int32_t* even = pairs + 4 * (quads / 2); /* dot2's part: pairs of quads */
  const int32_t* end = pairs + 2 * quads;
  const int32_t last = 4 * (quads - 1); /* offset of an odd last quad */
  const int aligned = (((uintptr_t)w | (uint32_t)w_stride) & 3) == 0;
  int32_t o = 0;
  for (; o + 2 <= n; o += 2) {
    const int8_t* w0 = w + o * w_stride;
    const int8_t* w1 = w0 + w_stride;
    if (even < end) { /* the odd last quad of both outputs */
      acc[o] = mac_q7x4(acc[o], end[-2], end[-1], w0 + last);
      acc[o + 1] = mac_q7x4(acc[o + 1], end[-2], end[-1], w1 + last);
    }
    if (aligned && even > pairs) {
      dot2_aligned(pairs, quads / 2, w0, w1, acc + o);
    } else {
      dot2(pairs, even, w0, w1, acc + o);
    }
  }
  for (; o < n; ++o) {
    const int8_t* wo = w + o * w_stride;
    if (even < end) acc[o] = mac_q7x4(acc[o], end[-2], end[-1], wo + last);
    if (aligned && even > pairs) {
      dot1_aligned(pairs, quads / 2, wo, acc + o);
    } else {
      int32_t a = acc[o];
      for (const int32_t* p = pairs; p < even; p += 2, wo += 4) a = mac_q7x4(a, p[0], p[1], wo);
      acc[o] = a;
    }
  }
}

int32_t micro_dsp_dot_q7(void* x_ptr, void* w_ptr, void* acc_ptr, int32_t len, int32_t n,
                       int32_t w_stride) {
  const int8_t* x = x_ptr;
  const int8_t* w = w_ptr;
  int32_t* acc = acc_ptr;
  int32_t done = 0;
  while (len - done >= 4) {
    int32_t quads = (len - done) / 4;
    if (quads > MICRO_DSP_CHUNK_QUADS) quads = MICRO_DSP_CHUNK_QUADS;
    dot_quads(x + done, w + done, acc, quads, n, w_stride);
    done += 4 * quads;
  }
  for (int32_t o = 0; o < n; ++o) {
    const int8_t* wo = w + o * w_stride;
    for (int32_t r = done; r < len; ++r) acc[o] += x[r] * wo[r];
  }
  return 0;
}

/* One quad step of dot4_group: activation pairs into r8/r9, the four outputs' weight words into
 * r2, r10, r11, r12 (one LDM), then two SMLADs per output into r4..r7 (18 instructions). */
#define MICRO_DSP_QUAD_STEP                       \
  "ldrd r8, r9, [r0], #8\n\t"                   \
  "ldmia r1!, {r2, r10, r11, r12}\n\t"          \
  "sxtb16 lr, r2\n\t"                           \
  "smlad r4, lr, r8, r4\n\t"                    \
  "sxtb16 r2, r2, ror #8\n\t"                   \
  "smlad r4, r2, r9, r4\n\t"                    \
  "sxtb16 lr, r10\n\t"                          \
  "smlad r5, lr, r8, r5\n\t"                    \
  "sxtb16 r10, r10, ror #8\n\t"                 \
  "smlad r5, r10, r9, r5\n\t"                   \
  "sxtb16 lr, r11\n\t"                          \
  "smlad r6, lr, r8, r6\n\t"                    \
  "sxtb16 r11, r11, ror #8\n\t"                 \
  "smlad r6, r11, r9, r6\n\t"                   \
  "sxtb16 lr, r12\n\t"                          \
  "smlad r7, lr, r8, r7\n\t"                    \
  "sxtb16 r12, r12, ror #8\n\t"                 \
  "smlad r7, r12, r9, r7\n\t"

/* For `groups` groups of four outputs: acc[4g..4g+3] += the dot products of `quads` (>= 1)
 * activation quads (pre-extended pairs, 8-byte aligned) with the group's interleaved weights
 * (word-aligned; per quad the four outputs' four bytes, output-major), the groups' weights
 * `skip` bytes apart after their `quads` quads.
 *
 * Assembly, not C: with the interleaved layout one LDM fetches the weights of all four outputs,
 * but the loop then needs 14 registers (four accumulators, two activation pairs, four weight
 * words, a scratch, two pointers and a counter), every register AAPCS lets a function use, which
 * no C compiler allocates without spilling; the group loop's state therefore lives on the stack.
 * Quads beyond a multiple of eight run one at a time, then eight per iteration: 18 instructions
 * per 16 MACs plus 2 per eight quads. */
/* A naked function reads its arguments in assembly, where GCC does not see them used. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
__attribute__((naked, noinline)) static void dot4_groups(const int32_t* pairs, const int8_t* w,
                                                          int32_t* acc, int32_t quads,
                                                          int32_t groups, int32_t skip) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "sub sp, sp, #16\n\t" /* [sp] pairs, [sp+4] quads, [sp+8] groups left, [sp+12] acc */
      "str r0, [sp]\n\t"
      "str r3, [sp, #4]\n\t"
      "ldr r4, [sp, #52]\n\t" /* groups (first stack argument: 16 + 36 bytes up) */
      "str r4, [sp, #8]\n\t"
      "4:\n\t"
      "str r2, [sp, #12]\n\t"
      "ldmia r2, {r4-r7}\n\t"
      "ldr r0, [sp]\n\t"
      "ldr r3, [sp, #4]\n\t"
      "ands r3, r3, #7\n\t"
      "beq 2f\n\t"
      "1:\n\t"
      MICRO_DSP_QUAD_STEP
      "subs r3, r3, #1\n\t"
      "bne 1b\n\t"
      "2:\n\t"
      "ldr r3, [sp, #4]\n\t"
      "lsrs r3, r3, #3\n\t"
      "beq 5f\n\t"
      "3:\n\t"
      MICRO_DSP_QUAD_STEP MICRO_DSP_QUAD_STEP MICRO_DSP_QUAD_STEP MICRO_DSP_QUAD_STEP
      MICRO_DSP_QUAD_STEP MICRO_DSP_QUAD_STEP MICRO_DSP_QUAD_STEP MICRO_DSP_QUAD_STEP
      "subs r3, r3, #1\n\t"
      "bne 3b\n\t"
      "5:\n\t"
      "ldr r2, [sp, #12]\n\t"
      "stmia r2!, {r4-r7}\n\t"
      "ldr r3, [sp, #56]\n\t" /* skip */
      "add r1, r1, r3\n\t"
      "ldr r3, [sp, #8]\n\t"
      "subs r3, r3, #1\n\t"
      "str r3, [sp, #8]\n\t"
      "bne 4b\n\t"
      "add sp, sp, #16\n\t"
      "pop {r4-r11, pc}\n\t");
}
#pragma GCC diagnostic pop

int32_t micro_dsp_dot_q7x4(void* x_ptr, void* w_ptr, void* acc_ptr, int32_t len, int32_t n) {
  const int8_t* x = x_ptr;
  const int8_t* w = w_ptr;
  int32_t* acc = acc_ptr;
  const int32_t total_quads = len / 4;
  for (int32_t done = 0; done < total_quads; done += MICRO_DSP_CHUNK_QUADS) {
    int32_t quads = total_quads - done;
    if (quads > MICRO_DSP_CHUNK_QUADS) quads = MICRO_DSP_CHUNK_QUADS;
    extend_activations(x + 4 * done, quads);
    dot4_groups(micro_dsp_pairs, w + 16 * done, acc, quads, n / 4, 16 * (total_quads - quads));
  }
  return 0;
}

/* int8 activations times packed 4-bit weights (micro_dsp_dot_q7q4).
 *
 * A weight word holds eight nibbles w0..w7 (w0 in bits 0-3, w7 in bits 28-31). With
 * m = 0xF000F000, (word << 12) & m puts w0 and w4 in the top nibbles of the two halfwords, i.e.
 * the int16 pair (4096 w0, 4096 w4), exactly (the top nibble is the sign); (word << 8) & m gives
 * (4096 w1, 4096 w5), (word << 4) & m (4096 w2, 4096 w6) and word & m (4096 w3, 4096 w7): one AND
 * with a shifted register per pair, no SXTB16. The activations are sign-extended once per chunk
 * into the matching pairs (x0, x4), (x1, x5), (x2, x6), (x3, x7) (SXTB16, then PKHBT / PKHTB), so
 * one SMLAD adds two products, each 4096 times too large.
 *
 * Range: a product is at most 128 * 8 = 1024 in magnitude, so the sum of one chunk of at most
 * 256 activations, times 4096, is at most 2^12 * 2^10 * 2^8 = 2^30 in magnitude: it fits an
 * int32 accumulator started at 0, every partial sum too, and every term is a multiple of 4096,
 * so the arithmetic shift `sum >> 12` is the chunk's exact dot product. It is added to acc[o]
 * (wrapping, as the scalar loop would): bit-exact. */

/* Groups of eight activations extended per chunk: 4 words each, the same 512-byte buffer. */
#define MICRO_DSP_CHUNK_OCTETS (MICRO_DSP_CHUNK_QUADS / 2)

/* Extend `octets` (>= 1) groups of eight activations (any alignment) into their four pairs. Per
 * eight activations two LDR, four SXTB16, four PKH, two STRD and the counter: 14 instructions. */
static void extend_activations_q4(const int8_t* x, int32_t octets) {
  int32_t* pairs = micro_dsp_pairs;
  int32_t low, high, even_lo, even_hi, p0, p1;
  __asm__ volatile(
      "1:\n\t"
      "ldr %[low], [%[x]], #4\n\t"            /* x0 x1 x2 x3 */
      "ldr %[high], [%[x]], #4\n\t"           /* x4 x5 x6 x7 */
      "sxtb16 %[even_lo], %[low]\n\t"         /* (x0, x2) */
      "sxtb16 %[even_hi], %[high]\n\t"        /* (x4, x6) */
      "sxtb16 %[low], %[low], ror #8\n\t"     /* (x1, x3) */
      "sxtb16 %[high], %[high], ror #8\n\t"   /* (x5, x7) */
      "pkhbt %[p0], %[even_lo], %[even_hi], lsl #16\n\t" /* (x0, x4) */
      "pkhbt %[p1], %[low], %[high], lsl #16\n\t"        /* (x1, x5) */
      "strd %[p0], %[p1], [%[pairs]], #8\n\t"
      "pkhtb %[p0], %[even_hi], %[even_lo], asr #16\n\t" /* (x2, x6) */
      "pkhtb %[p1], %[high], %[low], asr #16\n\t"        /* (x3, x7) */
      "strd %[p0], %[p1], [%[pairs]], #8\n\t"
      "subs %[octets], %[octets], #1\n\t"
      "bne 1b"
      : [x] "+r"(x), [pairs] "+r"(pairs), [octets] "+r"(octets), [low] "=&r"(low),
        [high] "=&r"(high), [even_lo] "=&r"(even_lo), [even_hi] "=&r"(even_hi), [p0] "=&r"(p0),
        [p1] "=&r"(p1)
      :
      : "cc", "memory");
}

/* One output's eight weights (one unaligned LDR of eight nibbles from `w`, moved on) against the
 * four activation pairs in xa..xd: four AND with a shifted register and four SMLAD into `a`. */
#define MICRO_DSP_DOT8_Q4(a, w)                         \
  "ldr %[word], [%[" w "]], #4\n\t"                    \
  "and %[t], %[m], %[word], lsl #12\n\t"               \
  "smlad %[" a "], %[xa], %[t], %[" a "]\n\t"          \
  "and %[t], %[m], %[word], lsl #8\n\t"                \
  "smlad %[" a "], %[xb], %[t], %[" a "]\n\t"          \
  "and %[t], %[m], %[word], lsl #4\n\t"                \
  "smlad %[" a "], %[xc], %[t], %[" a "]\n\t"          \
  "and %[t], %[m], %[word]\n\t"                        \
  "smlad %[" a "], %[xd], %[t], %[" a "]\n\t"

/* Two outputs, `octets` (>= 1) times eight activations: their sums times 4096, from 0.
 * Per 16 MACs two LDRD of activation pairs, two LDR of weights, eight AND, eight SMLAD, SUBS
 * and BNE: 22 instructions, in 13 registers (assembly, as dot2_aligned, so that none spills). */
static void dot2_q4(const int32_t* pairs, int32_t octets, const int8_t* w0, const int8_t* w1,
                    int32_t* sums) {
  int32_t a0 = 0, a1 = 0;
  int32_t xa, xb, xc, xd, word, t;
  const int32_t m = (int32_t)0xF000F000;
  __asm__(
      "1:\n\t"
      "ldrd %[xa], %[xb], [%[p]], #8\n\t"
      "ldrd %[xc], %[xd], [%[p]], #8\n\t"
      MICRO_DSP_DOT8_Q4("a0", "w0")
      MICRO_DSP_DOT8_Q4("a1", "w1")
      "subs %[n], %[n], #1\n\t"
      "bne 1b"
      : [a0] "+r"(a0), [a1] "+r"(a1), [p] "+r"(pairs), [w0] "+r"(w0), [w1] "+r"(w1),
        [n] "+r"(octets), [xa] "=&r"(xa), [xb] "=&r"(xb), [xc] "=&r"(xc), [xd] "=&r"(xd),
        [word] "=&r"(word), [t] "=&r"(t)
      : [m] "r"(m)
      : "cc", "memory");
  sums[0] = a0, sums[1] = a1;
}

/* One output (the odd one left by the pairs): 13 instructions per eight MACs. */
static int32_t dot1_q4(const int32_t* pairs, int32_t octets, const int8_t* w0) {
  int32_t a0 = 0;
  int32_t xa, xb, xc, xd, word, t;
  const int32_t m = (int32_t)0xF000F000;
  __asm__(
      "1:\n\t"
      "ldrd %[xa], %[xb], [%[p]], #8\n\t"
      "ldrd %[xc], %[xd], [%[p]], #8\n\t"
      MICRO_DSP_DOT8_Q4("a0", "w0")
      "subs %[n], %[n], #1\n\t"
      "bne 1b"
      : [a0] "+r"(a0), [p] "+r"(pairs), [w0] "+r"(w0), [n] "+r"(octets), [xa] "=&r"(xa),
        [xb] "=&r"(xb), [xc] "=&r"(xc), [xd] "=&r"(xd), [word] "=&r"(word), [t] "=&r"(t)
      : [m] "r"(m)
      : "cc", "memory");
  return a0;
}

/* a + b modulo 2^32, as TIR's int32 sums (no signed overflow in C). */
static inline int32_t wrapping_add(int32_t a, int32_t b) {
  return (int32_t)((uint32_t)a + (uint32_t)b);
}

/* A tail of 1 to 7 activations as one octet padded with zero activations: the weight word is
 * built from the row's ceil(tail / 2) remaining bytes (no read past the row), and the nibbles
 * beyond the tail meet zeros. About 20 instructions per output. */
static void q4_tail(const int8_t* x, const int8_t* w, int32_t* acc, int32_t tail, int32_t n,
                    int32_t w_stride) {
  int8_t padded[8] __attribute__((aligned(4))) = {0};
  memcpy(padded, x, (size_t)tail);
  extend_activations_q4(padded, 1);
  const int32_t xa = micro_dsp_pairs[0], xb = micro_dsp_pairs[1];
  const int32_t xc = micro_dsp_pairs[2], xd = micro_dsp_pairs[3];
  const uint32_t m = 0xF000F000u;
  const int32_t bytes = (tail + 1) / 2;
  for (int32_t o = 0; o < n; ++o) {
    const uint8_t* row = (const uint8_t*)(w + o * w_stride);
    uint32_t word = row[0];
    if (bytes > 1) word |= (uint32_t)row[1] << 8;
    if (bytes > 2) word |= (uint32_t)row[2] << 16;
    if (bytes > 3) word |= (uint32_t)row[3] << 24;
    int32_t sum = __smlad(xa, (int32_t)((word << 12) & m), 0);
    sum = __smlad(xb, (int32_t)((word << 8) & m), sum);
    sum = __smlad(xc, (int32_t)((word << 4) & m), sum);
    sum = __smlad(xd, (int32_t)(word & m), sum);
    acc[o] = wrapping_add(acc[o], sum >> 12);
  }
}

int32_t micro_dsp_dot_q7q4(void* x_ptr, void* w_ptr, void* acc_ptr, int32_t len, int32_t n,
                           int32_t w_stride) {
  const int8_t* x = x_ptr;
  const int8_t* w = w_ptr;
  int32_t* acc = acc_ptr;
  int32_t done = 0; /* activations done: a multiple of 8, so rows advance done / 2 bytes */
  while (len - done >= 8) {
    int32_t octets = (len - done) / 8;
    if (octets > MICRO_DSP_CHUNK_OCTETS) octets = MICRO_DSP_CHUNK_OCTETS;
    extend_activations_q4(x + done, octets);
    const int8_t* wd = w + done / 2;
    int32_t o = 0;
    for (; o + 2 <= n; o += 2) {
      int32_t sums[2];
      dot2_q4(micro_dsp_pairs, octets, wd + o * w_stride, wd + (o + 1) * w_stride, sums);
      acc[o] = wrapping_add(acc[o], sums[0] >> 12);
      acc[o + 1] = wrapping_add(acc[o + 1], sums[1] >> 12);
    }
    if (o < n) {
      acc[o] = wrapping_add(acc[o], dot1_q4(micro_dsp_pairs, octets, wd + o * w_stride) >> 12);
    }
    done += 8 * octets;
  }
  if (done < len) q4_tail(x + done, w + done / 2, acc, len - done, n, w_stride);
  return 0;
}
