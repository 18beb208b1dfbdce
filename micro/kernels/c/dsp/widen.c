/* int8 -> int16 widening of convolution window rows on the DSP extension (see widen.h and
 * docs/dsp.md).
 *
 * SXTB16 sign-extends the bytes 0 and 2 of a word into the two 16-bit halves of a register, and
 * with its operand rotated by 8 bits the bytes 1 and 3: one LDR of four int8 values and two
 * SXTB16 give the quad (v0, v2, v1, v3) as two words, stored with one STRD. Two quads per
 * iteration of the inner loop: 10 instructions per 8 values (LDR, LDR, four SXTB16, two STRD,
 * SUBS, BNE), where TVM's element-wise copy with its index arithmetic takes about 11 per value.
 * Sign extension is exact, so results are bit-exact. */
#include "widen.h"

#include <stdint.h>
#include <string.h>

#if !defined(__ARM_FEATURE_DSP) || !__ARM_FEATURE_DSP
#error "widen.c needs a core with the Arm DSP extension (SXTB16)"
#endif

/* One row: `pairs` (>= 1) pairs of quads, in assembly. */
static inline void widen_pairs(const int8_t* x, uint32_t* y, int32_t pairs) {
  uint32_t a, b, t0, t1, t2, t3;
  __asm__ volatile(
      "1:\n\t"
      "ldr %[a], [%[x]], #4\n\t"
      "ldr %[b], [%[x]], #4\n\t"
      "sxtb16 %[t0], %[a]\n\t"
      "sxtb16 %[t1], %[a], ror #8\n\t"
      "sxtb16 %[t2], %[b]\n\t"
      "sxtb16 %[t3], %[b], ror #8\n\t"
      "strd %[t0], %[t1], [%[y]], #8\n\t"
      "strd %[t2], %[t3], [%[y]], #8\n\t"
      "subs %[n], %[n], #1\n\t"
      "bne 1b\n\t"
      : [x] "+r"(x), [y] "+r"(y), [n] "+r"(pairs), [a] "=&r"(a), [b] "=&r"(b), [t0] "=&r"(t0),
        [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3)
      :
      : "cc", "memory");
}

/* The bytes 0 and 2 of w, sign-extended into 16-bit lanes; with ror 8, the bytes 1 and 3. */
static inline uint32_t sxtb16(uint32_t w) {
  uint32_t out;
  __asm__("sxtb16 %0, %1" : "=r"(out) : "r"(w));
  return out;
}

static inline uint32_t sxtb16_ror8(uint32_t w) {
  uint32_t out;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(out) : "r"(w));
  return out;
}

int32_t micro_dsp_widen_rows_q7(void* input, void* window, int32_t rows, int32_t quads,
                                int32_t in_step, int32_t out_step) {
  const int8_t* x = (const int8_t*)input;
  uint32_t* y = (uint32_t*)window;
  if (in_step == 4 * quads && out_step == 4 * quads) { /* contiguous rows: one long row */
    quads *= rows;
    rows = 1;
  }
  int32_t pairs = quads >> 1;
  for (; rows > 0; --rows) {
    if (pairs > 0) {
      widen_pairs(x, y, pairs);
    }
    if (quads & 1) {
      uint32_t word;
      memcpy(&word, x + 8 * pairs, sizeof(word)); /* one LDR, unaligned allowed */
      y[4 * pairs] = sxtb16(word);
      y[4 * pairs + 1] = sxtb16_ror8(word);
    }
    x += in_step;
    y += out_step >> 1;
  }
  return 0;
}
