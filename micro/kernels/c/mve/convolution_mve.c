/* int8 convolution on Helium (MVE), see convolution_mve.h and docs/isa-mve.md.
 *
 * In NWC layout the KW x C values of one kernel row of an output position are contiguous, so a
 * convolution is, per kernel row, dot products of contiguous int8 runs: the window row of each
 * position against each output's weights. VLDRB.8 loads 16 of them and VMLADAVA.S8 adds their
 * 16 products to a general-purpose register (an even-numbered one: GCC's "Te" constraint). Per
 * pass of 16 values, two positions by two outputs: 2 window loads, 2 weight loads, 4 VMLADAVA and
 * LETP, 9 instructions per 64 MACs. The loop is tail-predicated (DLSTP.8 / LETP): any n, the last
 * pass with n % 16 active lanes, inactive lanes neither loaded nor added.
 *
 * Exactness: int8 products summed modulo 2^32, like TIR's int32 sums, whose value does not
 * depend on the order of additions: the results equal the scalar loop's for every input. */
#include "convolution_mve.h"

#include <stdint.h>

#if !defined(__ARM_FEATURE_MVE) || !(__ARM_FEATURE_MVE & 1)
#error "convolution_mve.c needs a core with the MVE (Helium) integer instructions (-mcpu=cortex-m55)"
#endif

/* a[0..3] (p0 o0, p0 o1, p1 o0, p1 o1) += one kernel row of two positions, two outputs. */
static inline void row_2x2(const int8_t* x0, const int8_t* x1, const int8_t* w0,
                           const int8_t* w1, int32_t n, int32_t* a) {
  int32_t a00 = a[0], a01 = a[1], a10 = a[2], a11 = a[3];
  __asm__ volatile(
      "dlstp.8 lr, %[n]\n"
      "1:\n\t"
      "vldrb.8 q0, [%[x0]], #16\n\t"
      "vldrb.8 q1, [%[x1]], #16\n\t"
      "vldrb.8 q2, [%[w0]], #16\n\t"
      "vmladava.s8 %[a00], q0, q2\n\t"
      "vmladava.s8 %[a10], q1, q2\n\t"
      "vldrb.8 q3, [%[w1]], #16\n\t"
      "vmladava.s8 %[a01], q0, q3\n\t"
      "vmladava.s8 %[a11], q1, q3\n\t"
      "letp lr, 1b"
      : [a00] "+Te"(a00), [a01] "+Te"(a01), [a10] "+Te"(a10), [a11] "+Te"(a11),
        [x0] "+r"(x0), [x1] "+r"(x1), [w0] "+r"(w0), [w1] "+r"(w1)
      : [n] "r"(n)
      : "lr", "q0", "q1", "q2", "q3", "memory");
  a[0] = a00, a[1] = a01, a[2] = a10, a[3] = a11;
}

/* a[0..1] (p0, p1) += one kernel row of two positions, one output. */
static inline void row_2x1(const int8_t* x0, const int8_t* x1, const int8_t* w0, int32_t n,
                           int32_t* a) {
  int32_t a0 = a[0], a1 = a[1];
  __asm__ volatile(
      "dlstp.8 lr, %[n]\n"
      "1:\n\t"
      "vldrb.8 q0, [%[x0]], #16\n\t"
      "vldrb.8 q1, [%[x1]], #16\n\t"
      "vldrb.8 q2, [%[w0]], #16\n\t"
      "vmladava.s8 %[a0], q0, q2\n\t"
      "vmladava.s8 %[a1], q1, q2\n\t"
      "letp lr, 1b"
      : [a0] "+Te"(a0), [a1] "+Te"(a1), [x0] "+r"(x0), [x1] "+r"(x1), [w0] "+r"(w0)
      : [n] "r"(n)
      : "lr", "q0", "q1", "q2", "memory");
  a[0] = a0, a[1] = a1;
}

/* a[0..1] (o0, o1) += one kernel row of one position, two outputs. */
static inline void row_1x2(const int8_t* x0, const int8_t* w0, const int8_t* w1, int32_t n,
                           int32_t* a) {
  int32_t a0 = a[0], a1 = a[1];
  __asm__ volatile(
      "dlstp.8 lr, %[n]\n"
      "1:\n\t"
      "vldrb.8 q0, [%[x0]], #16\n\t"
      "vldrb.8 q1, [%[w0]], #16\n\t"
      "vmladava.s8 %[a0], q0, q1\n\t"
      "vldrb.8 q2, [%[w1]], #16\n\t"
      "vmladava.s8 %[a1], q0, q2\n\t"
      "letp lr, 1b"
      : [a0] "+Te"(a0), [a1] "+Te"(a1), [x0] "+r"(x0), [w0] "+r"(w0), [w1] "+r"(w1)
      : [n] "r"(n)
      : "lr", "q0", "q1", "q2", "memory");
  a[0] = a0, a[1] = a1;
}

int32_t micro_mve_conv_q7(void* window, void* weight, void* acc, int32_t n, int32_t rows,
                          int32_t row_step, int32_t positions, int32_t window_step,
                          int32_t outputs, int32_t acc_step) {
  const int8_t* x = window;
  const int8_t* w = weight;
  int32_t* out = acc;
  const int32_t per_output = n * rows;
  if (n <= 0) { /* DLSTP would run the body once; the sums are 0 */
    for (int32_t p = 0; p < positions; ++p)
      for (int32_t o = 0; o < outputs; ++o) out[p * acc_step + o] = 0;
    return 0;
  }
  int32_t p = 0;
  for (; p + 2 <= positions; p += 2) {
    const int8_t* xp = x + p * window_step;
    int32_t* o0 = out + p * acc_step;
    int32_t o = 0;
    for (; o + 2 <= outputs; o += 2) {
      int32_t a[4] = {0, 0, 0, 0};
      const int8_t* wo = w + o * per_output;
      for (int32_t k = 0; k < rows; ++k)
        row_2x2(xp + k * row_step, xp + k * row_step + window_step, wo + k * n,
                wo + per_output + k * n, n, a);
      o0[o] = a[0], o0[o + 1] = a[1], o0[acc_step + o] = a[2], o0[acc_step + o + 1] = a[3];
    }
    if (o < outputs) {
      int32_t a[2] = {0, 0};
      for (int32_t k = 0; k < rows; ++k)
        row_2x1(xp + k * row_step, xp + k * row_step + window_step, w + o * per_output + k * n,
                n, a);
      o0[o] = a[0], o0[acc_step + o] = a[1];
    }
  }
  if (p < positions) {
    const int8_t* xp = x + p * window_step;
    int32_t* o0 = out + p * acc_step;
    int32_t o = 0;
    for (; o + 2 <= outputs; o += 2) {
      int32_t a[2] = {0, 0};
      const int8_t* wo = w + o * per_output;
      for (int32_t k = 0; k < rows; ++k)
        row_1x2(xp + k * row_step, wo + k * n, wo + per_output + k * n, n, a);
      o0[o] = a[0], o0[o + 1] = a[1];
    }
    if (o < outputs) {
      int32_t a[2] = {0, 0};
      for (int32_t k = 0; k < rows; ++k)
        row_1x2(xp + k * row_step, w + o * per_output + k * n, w + o * per_output + k * n, n, a);
      o0[o] = a[0];
    }
  }
  return 0;
}
