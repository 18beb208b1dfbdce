/* int8 dot products on Helium (MVE), see dot_product_mve.h and docs/isa-mve.md.
 *
 * VMLADAVA.S8 Rda, Qn, Qm adds the 16 products of two int8 vectors to a 32-bit general-purpose
 * register: one instruction per 16 MACs. The rows are weights with the reduction innermost (the
 * schedule re-lays them out at compile time), so one VLDRB.8 loads 16 weights of one output; the
 * activation vector is loaded once per 16 inputs and used by up to four outputs, whose
 * accumulators stay in registers (VMLADAVA needs even-numbered ones: GCC's "Te" constraint).
 *
 * The loop is a tail-predicated low-overhead loop: DLSTP.8 sets LR to the number of elements and
 * LETP runs the loop body once per 16 of them, predicating the last iteration to the remaining
 * len % 16 lanes (inactive lanes of a load are zero and are not added), so any length needs no
 * scalar tail and no separate predicated copy of the body, and the loads never read past a row.
 *
 * Exactness: VMLADAVA's accumulation is modulo 2^32, like TIR's int32 sums, and the int32 sum
 * does not depend on the order of additions (two's-complement addition is associative), so the
 * results equal the scalar loop's for every input. */
#include "dot_product_mve.h"

#include <arm_mve.h>
#include <stdint.h>

#if !defined(__ARM_FEATURE_MVE) || !(__ARM_FEATURE_MVE & 1)
#error "dot_product_mve.c needs a core with the MVE (Helium) integer instructions (-mcpu=cortex-m55)"
#endif

/* Four outputs: acc[0..3] += x . w{0..3}. Per 16 inputs: 1 + 4 VLDRB, 4 VMLADAVA, LETP. */
static void dot4(const int8_t* x, const int8_t* w, int32_t stride, int32_t len, int32_t* acc) {
  const int8_t* w0 = w;
  const int8_t* w1 = w0 + stride;
  const int8_t* w2 = w1 + stride;
  const int8_t* w3 = w2 + stride;
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  __asm__ volatile(
      "dlstp.8 lr, %[len]\n"
      "1:\n\t"
      "vldrb.8 q0, [%[x]], #16\n\t"
      "vldrb.8 q1, [%[w0]], #16\n\t"
      "vmladava.s8 %[a0], q0, q1\n\t"
      "vldrb.8 q2, [%[w1]], #16\n\t"
      "vmladava.s8 %[a1], q0, q2\n\t"
      "vldrb.8 q3, [%[w2]], #16\n\t"
      "vmladava.s8 %[a2], q0, q3\n\t"
      "vldrb.8 q1, [%[w3]], #16\n\t"
      "vmladava.s8 %[a3], q0, q1\n\t"
      "letp lr, 1b"
      : [a0] "+Te"(a0), [a1] "+Te"(a1), [a2] "+Te"(a2), [a3] "+Te"(a3), [x] "+r"(x),
        [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3)
      : [len] "r"(len)
      : "lr", "q0", "q1", "q2", "q3", "memory");
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

/* Two outputs (6 instructions per 32 MACs). */
static void dot2(const int8_t* x, const int8_t* w, int32_t stride, int32_t len, int32_t* acc) {
  const int8_t* w0 = w;
  const int8_t* w1 = w0 + stride;
  int32_t a0 = acc[0], a1 = acc[1];
  __asm__ volatile(
      "dlstp.8 lr, %[len]\n"
      "1:\n\t"
      "vldrb.8 q0, [%[x]], #16\n\t"
      "vldrb.8 q1, [%[w0]], #16\n\t"
      "vmladava.s8 %[a0], q0, q1\n\t"
      "vldrb.8 q2, [%[w1]], #16\n\t"
      "vmladava.s8 %[a1], q0, q2\n\t"
      "letp lr, 1b"
      : [a0] "+Te"(a0), [a1] "+Te"(a1), [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1)
      : [len] "r"(len)
      : "lr", "q0", "q1", "q2", "memory");
  acc[0] = a0, acc[1] = a1;
}

/* One output (4 instructions per 16 MACs). */
static void dot1(const int8_t* x, const int8_t* w, int32_t len, int32_t* acc) {
  int32_t a0 = acc[0];
  __asm__ volatile(
      "dlstp.8 lr, %[len]\n"
      "1:\n\t"
      "vldrb.8 q0, [%[x]], #16\n\t"
      "vldrb.8 q1, [%[w]], #16\n\t"
      "vmladava.s8 %[a0], q0, q1\n\t"
      "letp lr, 1b"
      : [a0] "+Te"(a0), [x] "+r"(x), [w] "+r"(w)
      : [len] "r"(len)
      : "lr", "q0", "q1", "memory");
  acc[0] = a0;
}

int32_t micro_mve_dot_q7(void* x_ptr, void* w_ptr, void* acc_ptr, int32_t len, int32_t n,
                         int32_t w_stride) {
  const int8_t* x = x_ptr;
  const int8_t* w = w_ptr;
  int32_t* acc = acc_ptr;
  if (len <= 0) return 0; /* DLSTP would run the body once */
  int32_t o = 0;
  for (; o + 4 <= n; o += 4) dot4(x, w + o * w_stride, w_stride, len, acc + o);
  if (o + 2 <= n) {
    dot2(x, w + o * w_stride, w_stride, len, acc + o);
    o += 2;
  }
  if (o < n) dot1(x, w + o * w_stride, len, acc + o);
  return 0;
}

/* ---- Packed 4-bit weights (micro_mve_dot_q7q4) ----
 * Byte j of a row holds the weights of inputs 2j (low nibble) and 2j + 1 (high nibble). Per pass
 * of 16 weight bytes (32 inputs): the activations' even and odd elements are gathered
 * (VLDRB.U8 Qd, [Rn, Qm] with byte offsets 0, 2, .., 30 and 1, 3, .., 31), each output's
 * bytes loaded (VLDRB.8), the low nibbles sign-extended by VSHL #4 then VSHR.S8 #4 and the high
 * ones by VSHR.S8 #4, and both halves added by VMLADAVA.S8. DLSTP.8 counts the len / 2 whole
 * bytes; an odd len's last input (a low nibble) is added in C. */

static const uint8_t kEven[16] __attribute__((aligned(16))) = {
    0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};

/* The last input of an odd len: x[len - 1] times the low nibble of byte len / 2. */
static inline int32_t q4_last(const int8_t* x, const int8_t* w, int32_t len) {
  return x[len - 1] * ((int32_t)((uint32_t)(uint8_t)w[len / 2] << 28) >> 28);
}

/* Four outputs over bytes = len / 2 whole bytes (> 0). */
static void dot4_q4(const int8_t* x, const int8_t* w, int32_t stride, int32_t bytes,
                    int32_t* acc) {
  const uint8x16_t even = vldrbq_u8(kEven), odd = vaddq_n_u8(even, 1);
  const int8_t* w0 = w;
  const int8_t* w1 = w0 + stride;
  const int8_t* w2 = w1 + stride;
  const int8_t* w3 = w2 + stride;
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  __asm__ volatile(
      "dlstp.8 lr, %[bytes]\n"
      "1:\n\t"
      "vldrb.u8 q0, [%[x], %q[even]]\n\t"
      "vldrb.u8 q1, [%[x], %q[odd]]\n\t"
      "adds %[x], #32\n\t"
#define MICRO_Q4_ROW(W, A)                                   \
      "vldrb.8 q2, [%[" W "]], #16\n\t"                      \
      "vshl.i8 q3, q2, #4\n\t"                               \
      "vshr.s8 q3, q3, #4\n\t"                               \
      "vshr.s8 q2, q2, #4\n\t"                               \
      "vmladava.s8 %[" A "], q0, q3\n\t"                     \
      "vmladava.s8 %[" A "], q1, q2\n\t"
      MICRO_Q4_ROW("w0", "a0")
      MICRO_Q4_ROW("w1", "a1")
      MICRO_Q4_ROW("w2", "a2")
      MICRO_Q4_ROW("w3", "a3")
      "letp lr, 1b"
      : [a0] "+Te"(a0), [a1] "+Te"(a1), [a2] "+Te"(a2), [a3] "+Te"(a3), [x] "+r"(x),
        [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3)
      : [bytes] "r"(bytes), [even] "w"(even), [odd] "w"(odd)
      : "lr", "q0", "q1", "q2", "q3", "memory");
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

/* One output over bytes = len / 2 whole bytes (> 0). */
static void dot1_q4(const int8_t* x, const int8_t* w, int32_t bytes, int32_t* acc) {
  const uint8x16_t even = vldrbq_u8(kEven), odd = vaddq_n_u8(even, 1);
  const int8_t* w0 = w;
  int32_t a0 = acc[0];
  __asm__ volatile(
      "dlstp.8 lr, %[bytes]\n"
      "1:\n\t"
      "vldrb.u8 q0, [%[x], %q[even]]\n\t"
      "vldrb.u8 q1, [%[x], %q[odd]]\n\t"
      "adds %[x], #32\n\t"
      MICRO_Q4_ROW("w0", "a0")
      "letp lr, 1b"
      : [a0] "+Te"(a0), [x] "+r"(x), [w0] "+r"(w0)
      : [bytes] "r"(bytes), [even] "w"(even), [odd] "w"(odd)
      : "lr", "q0", "q1", "q2", "q3", "memory");
#undef MICRO_Q4_ROW
  acc[0] = a0;
}

int32_t micro_mve_dot_q7q4(void* x_ptr, void* w_ptr, void* acc_ptr, int32_t len, int32_t n,
                           int32_t w_stride) {
  const int8_t* x = x_ptr;
  const int8_t* w = w_ptr;
  int32_t* acc = acc_ptr;
  const int32_t bytes = len / 2;
  int32_t o = 0;
  if (bytes > 0) { /* DLSTP would run the body once */
    for (; o + 4 <= n; o += 4) dot4_q4(x, w + o * w_stride, w_stride, bytes, acc + o);
    for (; o < n; ++o) dot1_q4(x, w + o * w_stride, bytes, acc + o);
  }
  if (len & 1) {
    for (o = 0; o < n; ++o)
      acc[o] = (int32_t)((uint32_t)acc[o] + (uint32_t)q4_last(x, w + o * w_stride, len));
  }
  return 0;
}
