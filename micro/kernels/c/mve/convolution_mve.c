/* int8 convolution on Helium (MVE), see convolution_mve.h and docs/isa-mve.md.
 *
 * The window the DSP library's lowering writes (int16, four channels per quad) is read eight
 * values at a time (VLDRH.16: two quads of one position). One output's weights for those two
 * quads are bytes 0-3 and 8-11 of the pair's 16 bytes (the other output's 4-7 and 12-15): a
 * gather load with a constant vector of byte offsets (VLDRB.S16 Qd, [Rn, Qm]) widens them to
 * int16 lanes in the window's order (bytes 0, 2, 1, 3 of a quad). VMLADAVA.S16 adds the eight products to a general-purpose
 * register (an even-numbered one: GCC's "Te" constraint). Per pass of eight values, two positions
 * by the pair's two outputs: 2 window loads, 2 gathers, 1 pointer add, 4 VMLADAVA and LETP,
 * 10 instructions per 32 MACs.
 *
 * The loop is tail-predicated (DLSTP.16 / LETP): with an odd number of quads per kernel row the
 * last pass has four active lanes; inactive lanes are neither loaded nor added. Each kernel row
 * starts its weights afresh (8 bytes per quad), so a short last pass does not shift the next
 * row.
 *
 * Exactness: the products are those of int16 by int8 values and VMLADAVA accumulates modulo
 * 2^32, like TIR's int32 sums, whose value does not depend on the order of additions: the
 * results equal the scalar loop's for every input. */
#include "convolution_mve.h"

#include <stdint.h>

#if !defined(__ARM_FEATURE_MVE) || !(__ARM_FEATURE_MVE & 1)
#error "convolution_mve.c needs a core with the MVE (Helium) integer instructions (-mcpu=cortex-m55)"
#endif

/* Byte offsets of the first output's weights for two quads, then the second output's, in the
 * window's order within a quad (v0, v2, v1, v3). */
static const uint16_t kGather[16] __attribute__((aligned(16))) = {
    0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15};

/* a[0..3] (p0 o0, p0 o1, p1 o0, p1 o1) += one kernel row of n values of two positions. */
static inline void row_2x2(const int16_t* x0, const int16_t* x1, const int8_t* w, int32_t n,
                           int32_t* a) {
  int32_t a00 = a[0], a01 = a[1], a10 = a[2], a11 = a[3];
  __asm__ volatile(
      "vldrh.u16 q4, [%[g]]\n\t"
      "vldrh.u16 q5, [%[g], #16]\n\t"
      "dlstp.16 lr, %[n]\n"
      "1:\n\t"
      "vldrh.16 q0, [%[x0]], #16\n\t"
      "vldrh.16 q1, [%[x1]], #16\n\t"
      "vldrb.s16 q2, [%[w], q4]\n\t"
      "vldrb.s16 q3, [%[w], q5]\n\t"
      "add %[w], %[w], #16\n\t"
      "vmladava.s16 %[a00], q0, q2\n\t"
      "vmladava.s16 %[a10], q1, q2\n\t"
      "vmladava.s16 %[a01], q0, q3\n\t"
      "vmladava.s16 %[a11], q1, q3\n\t"
      "letp lr, 1b"
      : [a00] "+Te"(a00), [a01] "+Te"(a01), [a10] "+Te"(a10), [a11] "+Te"(a11),
        [x0] "+r"(x0), [x1] "+r"(x1), [w] "+r"(w)
      : [n] "r"(n), [g] "r"(kGather)
      : "lr", "q0", "q1", "q2", "q3", "q4", "q5", "memory");
  a[0] = a00, a[1] = a01, a[2] = a10, a[3] = a11;
}

/* a[0..1] (o0, o1) += one kernel row of n values of one position. */
static inline void row_1x2(const int16_t* x0, const int8_t* w, int32_t n, int32_t* a) {
  int32_t a00 = a[0], a01 = a[1];
  __asm__ volatile(
      "vldrh.u16 q4, [%[g]]\n\t"
      "vldrh.u16 q5, [%[g], #16]\n\t"
      "dlstp.16 lr, %[n]\n"
      "1:\n\t"
      "vldrh.16 q0, [%[x0]], #16\n\t"
      "vldrb.s16 q2, [%[w], q4]\n\t"
      "vldrb.s16 q3, [%[w], q5]\n\t"
      "add %[w], %[w], #16\n\t"
      "vmladava.s16 %[a00], q0, q2\n\t"
      "vmladava.s16 %[a01], q0, q3\n\t"
      "letp lr, 1b"
      : [a00] "+Te"(a00), [a01] "+Te"(a01), [x0] "+r"(x0), [w] "+r"(w)
      : [n] "r"(n), [g] "r"(kGather)
      : "lr", "q0", "q2", "q3", "q4", "q5", "memory");
  a[0] = a00, a[1] = a01;
}

int32_t micro_mve_conv_q15q7(void* window, void* weight, void* acc, int32_t quads, int32_t rows,
                             int32_t row_step, int32_t positions, int32_t window_step,
                             int32_t pairs, int32_t acc_step) {
  const int16_t* x = window;
  const int8_t* w = weight;
  int32_t* out = acc;
  const int32_t n = 4 * quads;
  const int32_t row_bytes = 8 * quads;
  if (quads <= 0) { /* DLSTP would run the body once; the sums are 0 */
    for (int32_t p = 0; p < positions; ++p)
      for (int32_t o = 0; o < 2 * pairs; ++o) out[p * acc_step + o] = 0;
    return 0;
  }
  for (int32_t pair = 0; pair < pairs; ++pair, w += row_bytes * rows, out += 2) {
    int32_t p = 0;
    for (; p + 2 <= positions; p += 2) {
      int32_t a[4] = {0, 0, 0, 0};
      for (int32_t k = 0; k < rows; ++k) {
        const int16_t* x0 = x + k * row_step + p * window_step;
        row_2x2(x0, x0 + window_step, w + k * row_bytes, n, a);
      }
      int32_t* o0 = out + p * acc_step;
      o0[0] = a[0], o0[1] = a[1], o0[acc_step] = a[2], o0[acc_step + 1] = a[3];
    }
    if (p < positions) {
      int32_t a[2] = {0, 0};
      for (int32_t k = 0; k < rows; ++k)
        row_1x2(x + k * row_step + p * window_step, w + k * row_bytes, n, a);
      out[p * acc_step] = a[0], out[p * acc_step + 1] = a[1];
    }
  }
  return 0;
}
