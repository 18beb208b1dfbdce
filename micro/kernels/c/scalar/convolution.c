/* int8 convolution on cores without the DSP extension (see convolution.h, docs/isa-armv7m.md).
 *
 * Without SMLAD or SXTB16, each multiply-accumulate is one MLA (Armv7-M; MULS + ADDS on
 * Armv6-M) on operands loaded already extended: LDRSH for the int16 window (the DSP library's
 * layout, widened once per pass) and LDRSB for the int8 weights. Two positions by two outputs per
 * pass reuse each loaded value twice: per quad (16 MACs) 8 + 8 loads and 16 MLA and the loop,
 * 34 instructions in Armv7-M assembly (2.1 per MAC); C elsewhere. Sums wrap like TIR's int32 arithmetic (computed unsigned),
 * whose value does not depend on the order of additions: bit-exact. */
#include "convolution.h"

#include <stdint.h>

/* a += x * w, wrapping. */
#define MICRO_MAC(a, x, w) ((a) = (int32_t)((uint32_t)(a) + (uint32_t)((int32_t)(x) * (w))))

#if defined(__ARM_ARCH_7M__)
/* One window value of both positions (offset X in bytes) against one weight byte of each
 * output (offsets W0, W0 + 4): 2 LDRSH, 2 LDRSB, 4 MLA. */
#define MICRO_CONV_VALUE(X, W0, W1)                 \
  "ldrsh %[xa], [%[x0], #" X "]\n\t"              \
  "ldrsh %[xb], [%[x1], #" X "]\n\t"              \
  "ldrsb %[wt], [%[w], #" W0 "]\n\t"              \
  "mla %[a00], %[xa], %[wt], %[a00]\n\t"          \
  "mla %[a10], %[xb], %[wt], %[a10]\n\t"          \
  "ldrsb %[wt], [%[w], #" W1 "]\n\t"              \
  "mla %[a01], %[xa], %[wt], %[a01]\n\t"          \
  "mla %[a11], %[xb], %[wt], %[a11]\n\t"

/* a[0..3] (p0 o0, p0 o1, p1 o0, p1 o1) += `quads` quads of two positions' windows x0, x1 against
 * the pair's weights w. Per quad 8 LDRSH, 8 LDRSB, 16 MLA and the loop's CMP + BNE (the value at
 * offset 0 is loaded last, post-incrementing its pointer): 34 instructions per 16 MACs. */
static inline void quads_2x2(const int16_t* x0, const int16_t* x1, const int8_t* w,
                             int32_t quads, int32_t* a) {
  if (quads <= 0) return; /* the loop runs its body before testing */
  const int8_t* end = w + 8 * quads;
  int32_t a00 = a[0], a01 = a[1], a10 = a[2], a11 = a[3], xa, xb, wt;
  __asm__ volatile(
      "1:\n\t"
      /* window (v0, v2, v1, v3) against weight bytes 0, 2, 1, 3 */
      MICRO_CONV_VALUE("2", "2", "6")
      MICRO_CONV_VALUE("4", "1", "5")
      MICRO_CONV_VALUE("6", "3", "7")
      "ldrsh %[xa], [%[x0]], #8\n\t"
      "ldrsh %[xb], [%[x1]], #8\n\t"
      "ldrsb %[wt], [%[w], #4]\n\t"
      "mla %[a01], %[xa], %[wt], %[a01]\n\t"
      "mla %[a11], %[xb], %[wt], %[a11]\n\t"
      "ldrsb %[wt], [%[w]], #8\n\t"
      "mla %[a00], %[xa], %[wt], %[a00]\n\t"
      "mla %[a10], %[xb], %[wt], %[a10]\n\t"
      "cmp %[w], %[end]\n\t"
      "bne 1b"
      : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [xa] "=&r"(xa),
        [xb] "=&r"(xb), [wt] "=&r"(wt), [x0] "+r"(x0), [x1] "+r"(x1), [w] "+r"(w)
      : [end] "r"(end)
      : "cc", "memory");
  a[0] = a00, a[1] = a01, a[2] = a10, a[3] = a11;
}
#else
static inline void quads_2x2(const int16_t* x0, const int16_t* x1, const int8_t* wq,
                             int32_t quads, int32_t* a) {
  for (int32_t q = 0; q < quads; ++q, x0 += 4, x1 += 4, wq += 8) {
    /* window (v0, v2, v1, v3) against weight bytes 0, 2, 1, 3 */
    int32_t w0 = wq[0], w1 = wq[2], w2 = wq[1], w3 = wq[3];
    MICRO_MAC(a[0], x0[0], w0), MICRO_MAC(a[2], x1[0], w0);
    MICRO_MAC(a[0], x0[1], w1), MICRO_MAC(a[2], x1[1], w1);
    MICRO_MAC(a[0], x0[2], w2), MICRO_MAC(a[2], x1[2], w2);
    MICRO_MAC(a[0], x0[3], w3), MICRO_MAC(a[2], x1[3], w3);
    w0 = wq[4], w1 = wq[6], w2 = wq[5], w3 = wq[7];
    MICRO_MAC(a[1], x0[0], w0), MICRO_MAC(a[3], x1[0], w0);
    MICRO_MAC(a[1], x0[1], w1), MICRO_MAC(a[3], x1[1], w1);
    MICRO_MAC(a[1], x0[2], w2), MICRO_MAC(a[3], x1[2], w2);
    MICRO_MAC(a[1], x0[3], w3), MICRO_MAC(a[3], x1[3], w3);
  }
}
#endif

int32_t micro_scalar_conv_q15q7(void* window, void* weight, void* acc, int32_t quads,
                                int32_t rows, int32_t row_step, int32_t positions,
                                int32_t window_step, int32_t pairs, int32_t acc_step) {
  const int16_t* x = window;
  int32_t* out = acc;
  const int32_t pair_bytes = 8 * quads * rows;
  for (int32_t pair = 0; pair < pairs; ++pair, out += 2) {
    const int8_t* w = (const int8_t*)weight + pair * pair_bytes;
    int32_t p = 0;
    for (; p + 2 <= positions; p += 2) {
      int32_t a[4] = {0, 0, 0, 0};
      for (int32_t k = 0; k < rows; ++k) {
        const int16_t* x0 = x + k * row_step + p * window_step;
        quads_2x2(x0, x0 + window_step, w + k * 8 * quads, quads, a);
      }
      int32_t* o = out + p * acc_step;
      o[0] = a[0], o[1] = a[1], o[acc_step] = a[2], o[acc_step + 1] = a[3];
    }
    if (p < positions) {
      int32_t a0 = 0, a1 = 0;
      const int8_t* wq = w;
      for (int32_t k = 0; k < rows; ++k) {
        const int16_t* x0 = x + k * row_step + p * window_step;
        for (int32_t q = 0; q < quads; ++q, x0 += 4, wq += 8) {
          MICRO_MAC(a0, x0[0], wq[0]), MICRO_MAC(a0, x0[1], wq[2]);
          MICRO_MAC(a0, x0[2], wq[1]), MICRO_MAC(a0, x0[3], wq[3]);
          MICRO_MAC(a1, x0[0], wq[4]), MICRO_MAC(a1, x0[1], wq[6]);
          MICRO_MAC(a1, x0[2], wq[5]), MICRO_MAC(a1, x0[3], wq[7]);
        }
      }
      out[p * acc_step] = a0, out[p * acc_step + 1] = a1;
    }
  }
  return 0;
}

int32_t micro_scalar_widen_rows_q7(void* input, void* window, int32_t rows, int32_t quads,
                                   int32_t in_step, int32_t out_step) {
  for (int32_t r = 0; r < rows; ++r) {
    const int8_t* x = (const int8_t*)input + r * in_step;
    int16_t* y = (int16_t*)window + r * out_step;
    for (int32_t q = 0; q < quads; ++q, x += 4, y += 4) {
      const int16_t v0 = x[0], v1 = x[1], v2 = x[2], v3 = x[3];
      y[0] = v0, y[1] = v2, y[2] = v1, y[3] = v3;
    }
  }
  return 0;
}

int32_t micro_scalar_depthwise_q15(void* window, void* weight, void* acc, int32_t positions,
                                   int32_t channels, int32_t pairs, int32_t stride,
                                   int32_t channel_step, int32_t weight_step, int32_t acc_step,
                                   int32_t accumulate) {
  const int32_t taps = 2 * pairs;
  for (int32_t c = 0; c < channels; ++c) {
    const int16_t* x = (const int16_t*)window + c * channel_step;
    const int16_t* w = (const int16_t*)weight + c * weight_step;
    int32_t* a = (int32_t*)acc + c;
    for (int32_t p = 0; p < positions; ++p, x += stride, a += acc_step) {
      int32_t s = accumulate ? *a : 0;
      for (int32_t t = 0; t < taps; ++t) MICRO_MAC(s, x[t], w[t]);
      *a = s;
    }
  }
  return 0;
}
