/* TFLite's int8 requantization on the DSP extension (see requantize.h and docs/dsp.md). */
#include "requantize.h"

#include <stdint.h>

#if !defined(__ARM_FEATURE_DSP) || !__ARM_FEATURE_DSP
#error "requantize.c needs a core with the Arm DSP extension (QADD, SSAT)"
#endif
#include <arm_acle.h>

/* out[i] = clamp(q + zp, qmin, qmax), q = RoundingDivideByPOT(SRDHM(acc[i] + bias[i], mult[i]),
 * -shift[i]): TFLite's double-rounding requantization with right shifts only (shift <= 0) and
 * non-negative multipliers, as micro.fixed_point_tir describes it, in fewer instructions:
 * SMLAL onto the rounding constant for the high product, the rounding division's comparison as
 * the sign bit of a difference, QADD + SSAT for the zero point and the clamp to int8 (a
 * saturating add reaches the same clamped value as the exact sum, without int32 overflow). The
 * bias add wraps like the int32 stage it replaces. */
static inline int32_t requantize_one(int32_t x, int32_t mult, int32_t shift, int32_t zp) {
  int32_t high = (int32_t)(((int64_t)x * mult + (1 << 30)) >> 31);
  int32_t e = -shift;
  int32_t mask = (int32_t)((1u << e) - 1u);
  int32_t threshold = (mask >> 1) + (int32_t)((uint32_t)high >> 31);
  int32_t q = (high >> e) + (int32_t)((uint32_t)(threshold - (high & mask)) >> 31);
  return __ssat(__qadd(q, zp), 8);
}

int32_t micro_dsp_requantize_q7(void* acc_ptr, void* bias_ptr, void* mult_ptr, void* shift_ptr,
                              void* out_ptr, int32_t n, int32_t zp, int32_t qmin, int32_t qmax) {
  const int32_t* acc = acc_ptr;
  const int32_t* bias = bias_ptr;
  const int32_t* mult = mult_ptr;
  const int8_t* shift = shift_ptr;
  int8_t* out = out_ptr;
  if (qmin == -128 && qmax == 127) { /* the usual case: SSAT is the whole clamp */
#pragma GCC unroll 2
    for (int32_t i = 0; i < n; ++i) {
      int32_t x = (int32_t)((uint32_t)acc[i] + (uint32_t)bias[i]);
      out[i] = (int8_t)requantize_one(x, mult[i], shift[i], zp);
    }
    return 0;
  }
  for (int32_t i = 0; i < n; ++i) {
    int32_t v = requantize_one((int32_t)((uint32_t)acc[i] + (uint32_t)bias[i]), mult[i],
                               shift[i], zp);
    out[i] = (int8_t)(v < qmin ? qmin : (v > qmax ? qmax : v));
  }
  return 0;
}

/* ---- Per-channel requantization of a block of positions x channels (convolution epilogues) ----
 *
 * micro_dsp_requantize_channels_q7 (see requantize.h) runs most channels in assembly, a pair of
 * positions at a time, channel by channel; a channel the assembly does not take (below) and
 * blocks whose two strides differ run in C.
 *
 * The arithmetic. With x = acc + bias (int32, wrapping), P = x * mult (int64), e = -shift, TIR
 * computes high = (P + 2^30) >> 31, q = RoundingDivideByPOT(high, e) (ties away from zero) and
 * stores clamp(q + zp). For e >= 1, q = floor((high + 2^(e-1) - [high < 0]) / 2^e), and since
 * high is P + 2^30 divided by 2^31 (floored), the nudge and the zero point can be added to the
 * 64-bit product instead, as multiples of 2^31, where nothing overflows:
 *   q + zp = floor(Y / 2^(31+e)),  Y = P + 2^30 - [P < 0] 2^31 + (2 zp + 1) 2^(30+e).
 * [P < 0] may replace [high < 0]: they differ only for -2^30 <= P < 0, where high = 0 and both
 * give q = 0. For mult >= 0, [P < 0] is [x < 0] (P = 0 gives q = 0 either way). For e >= 2,
 * (2 zp + 1) 2^(30+e) is khi * 2^32 with khi = (2 zp + 1) << (e - 2), so the 64-bit constant is
 * (khi : 0x40000000), minus 2^31 for a negative x, and q + zp = hi(Y) >> (e - 1): one SMLAL onto
 * that constant and one shift. hi(Y) fits in int32 for e <= 24: hi(P) lies in [-2^30, 2^30 - 1]
 * (|x| <= 2^31, 0 <= mult < 2^31) and |khi| <= 255 * 2^22 <= 2^30.
 * The result is then saturated to int8 (SSAT) and clamped to [qmin, qmax] (SSUB8 sets the GE
 * flags of the low byte's comparison and SEL picks, the clamp of one byte in two instructions).
 *
 * The assembly takes a channel when 2 <= e <= 24 and mult >= 0 (TFLite's multipliers are
 * non-negative, and its shifts of a convolution's scale rarely leave that range); others (e = 0
 * or 1, larger e, a negative multiplier) run in C, each output as micro.fixed_point_tir
 * describes it. */

/* What the assembly reads, built by micro_dsp_requantize_channels_q7 on its stack. */
typedef struct {
  const int32_t* acc;   /* [0]  the first position's accumulators, channel 0 */
  const int32_t* bias;  /* [4] */
  const int32_t* mult;  /* [8] */
  const int8_t* shift;  /* [12] */
  int8_t* out;          /* [16] the first position's outputs, channel 0 */
  int32_t step;         /* [20] from one position to the next, in elements of acc and of out */
  int32_t channels;     /* [24] */
  int32_t z;            /* [28] 2 * zp + 1 */
  int32_t qmax;         /* [32] */
  int32_t qmin;         /* [36] */
} rq_frame;

/* Entry of the assembly loops (r0 the frame, r1 the first channel c): save, push z, qmax and qmin
 * (then at [sp], [sp, #4], [sp, #8]), set up the pointers at channel c: r0 acc, r1 out, r2 bias,
 * r3 mult, r4 shift, r5 step, r6 the channels left. 16 instructions. */
#define MICRO_RQ_ENTRY                                        \
  "push {r4-r11, lr}\n\t"                                     \
  "add r12, r0, #28\n\t"                                      \
  "ldm r12, {r6, r7, r8}\n\t"                                 \
  "push {r6, r7, r8}\n\t"                                     \
  "ldr r6, [r0, #24]\n\t"                                     \
  "subs r6, r6, r1\n\t"          /* channels left */          \
  "ldrd r2, r3, [r0, #4]\n\t"                                 \
  "add r2, r2, r1, lsl #2\n\t"   /* bias + c */               \
  "add r3, r3, r1, lsl #2\n\t"   /* mult + c */               \
  "ldr r4, [r0, #12]\n\t"                                     \
  "add r4, r4, r1\n\t"           /* shift + c */              \
  "ldr r5, [r0, #20]\n\t"                                     \
  "ldr r7, [r0, #16]\n\t"                                     \
  "ldr r0, [r0]\n\t"                                          \
  "add r0, r0, r1, lsl #2\n\t"   /* acc + c */                \
  "add r1, r7, r1\n\t"           /* out + c */

/* One channel's constants: r7 bias, r8 mult, r9 = e - 1, r10 = khi; a channel the assembly does
 * not take (e - 2 outside [0, 22] unsigned, or mult < 0) branches to label 9 with r6 counting it.
 * 10 instructions. */
#define MICRO_RQ_CHANNEL                                      \
  "ldr r7, [r2], #4\n\t"                                      \
  "ldr r8, [r3], #4\n\t"                                      \
  "ldrsb r9, [r4], #1\n\t"                                    \
  "mvn r9, r9\n\t"               /* e - 1 */                  \
  "sub r10, r9, #1\n\t"          /* e - 2 */                  \
  "orr r11, r10, r8, asr #31\n\t"                             \
  "cmp r11, #22\n\t"                                          \
  "bhi 9f\n\t"                                                \
  "ldr r11, [sp]\n\t"                                         \
  "lsl r10, r11, r10\n\t"        /* khi = z << (e - 2) */

/* One output from the accumulator in r11 to int8 in lr: 7 instructions. */
#define MICRO_RQ_SCALE                                        \
  "add r11, r11, r7\n\t"                                      \
  "and r12, r11, #0x80000000\n\t"                             \
  "rsbs r12, r12, #0x40000000\n\t"                            \
  "sbc lr, r10, #0\n\t"          /* (khi : 2^30) - [x < 0] 2^31 */ \
  "smlal r12, lr, r11, r8\n\t"   /* + x * mult */             \
  "asr lr, lr, r9\n\t"           /* q + zp */                 \
  "ssat lr, #8, lr\n\t"
/* Clamp lr to [qmin, qmax] (read from the stack): 6 instructions. */
#define MICRO_RQ_CLAMP                                        \
  "ldr r11, [sp, #4]\n\t"                                     \
  "ssub8 r12, r11, lr\n\t"                                    \
  "sel lr, lr, r11\n\t"                                       \
  "ldr r11, [sp, #8]\n\t"                                     \
  "ssub8 r12, lr, r11\n\t"                                    \
  "sel lr, lr, r11\n\t"
#define MICRO_RQ_NO_CLAMP

/* The next channel, or return the channels left (0 when every channel is done, else counting
 * the channel at which label 9 was reached). */
#define MICRO_RQ_NEXT_AND_EXIT                                \
  "subs r6, r6, #1\n\t"                                       \
  "bne 1b\n\t"                                                \
  "9:\n\t"                                                    \
  "mov r0, r6\n\t"                                            \
  "add sp, sp, #12\n\t"                                       \
  "pop {r4-r11, pc}\n\t"

/* Two positions (acc[0], acc[step]) of every channel from c on: per channel 10 instructions, per
 * output 9 (11 + 6 with a clamp), 2 for the loop. */
#define MICRO_RQ_PAIR(CLAMP)                                  \
  MICRO_RQ_ENTRY                                              \
  "1:\n\t"                                                    \
  MICRO_RQ_CHANNEL                                            \
  "ldr r11, [r0, r5, lsl #2]\n\t"                             \
  MICRO_RQ_SCALE                                              \
  CLAMP                                                       \
  "strb lr, [r1, r5]\n\t"                                     \
  "ldr r11, [r0], #4\n\t"                                     \
  MICRO_RQ_SCALE                                              \
  CLAMP                                                       \
  "strb lr, [r1], #1\n\t"                                     \
  MICRO_RQ_NEXT_AND_EXIT

/* One position of every channel from c on. */
#define MICRO_RQ_SINGLE(CLAMP)                                \
  MICRO_RQ_ENTRY                                              \
  "1:\n\t"                                                    \
  MICRO_RQ_CHANNEL                                            \
  "ldr r11, [r0], #4\n\t"                                     \
  MICRO_RQ_SCALE                                              \
  CLAMP                                                       \
  "strb lr, [r1], #1\n\t"                                     \
  MICRO_RQ_NEXT_AND_EXIT

/* Each returns the channels left from the first it did not take (0: all done). */
__attribute__((naked, noinline)) static int32_t rq_pair(const rq_frame* f, int32_t c) {
  __asm__ volatile(MICRO_RQ_PAIR(MICRO_RQ_NO_CLAMP));
}
__attribute__((naked, noinline)) static int32_t rq_pair_clamped(const rq_frame* f, int32_t c) {
  __asm__ volatile(MICRO_RQ_PAIR(MICRO_RQ_CLAMP));
}
__attribute__((naked, noinline)) static int32_t rq_single(const rq_frame* f, int32_t c) {
  __asm__ volatile(MICRO_RQ_SINGLE(MICRO_RQ_NO_CLAMP));
}
__attribute__((naked, noinline)) static int32_t rq_single_clamped(const rq_frame* f, int32_t c) {
  __asm__ volatile(MICRO_RQ_SINGLE(MICRO_RQ_CLAMP));
}

/* One output exactly as micro.fixed_point_tir states it (any multiplier, e = -shift in [0, 31]),
 * then clamped to [qmin, qmax]. */
static int32_t requantize_exact(int32_t x, int32_t mult, int32_t shift, int32_t zp, int32_t qmin,
                                int32_t qmax) {
  int32_t high = (int32_t)(((int64_t)x * mult + (1 << 30)) >> 31);
  uint32_t e = (uint32_t)(-shift) & 31u;
  int32_t mask = (int32_t)((1u << e) - 1u);
  int32_t threshold = (mask >> 1) + (int32_t)((uint32_t)high >> 31);
  int32_t q = (high >> e) + (int32_t)((uint32_t)(threshold - (high & mask)) >> 31);
  int32_t upper = qmax - zp, lower = qmin - zp;
  q = q < upper ? q : upper;
  q = q > lower ? q : lower;
  return q + zp;
}

/* Channel c of `positions` positions, in C. */
__attribute__((noinline)) static void rq_channel_exact(const rq_frame* f, int32_t c,
                                                       int32_t positions, int32_t acc_step,
                                                       int32_t out_step) {
  int32_t b = f->bias[c], m = f->mult[c], s = f->shift[c], zp = (f->z - 1) / 2;
  for (int32_t p = 0; p < positions; ++p) {
    int32_t x = (int32_t)((uint32_t)f->acc[p * acc_step + c] + (uint32_t)b);
    f->out[p * out_step + c] = (int8_t)requantize_exact(x, m, s, zp, f->qmin, f->qmax);
  }
}

/* Every channel of `positions` positions (1 or 2) from the assembly, the channels it leaves in C.
 */
static void rq_positions(const rq_frame* f, int32_t positions,
                         int32_t (*run)(const rq_frame*, int32_t)) {
  int32_t c = 0;
  for (;;) {
    int32_t left = run(f, c);
    if (left == 0) return;
    c = f->channels - left;
    rq_channel_exact(f, c, positions, f->step, f->step);
    if (++c == f->channels) return;
  }
}

int32_t micro_dsp_requantize_channels_q7(void* acc, void* bias, void* mult, void* shift,
                                         void* out, int32_t positions, int32_t channels,
                                         int32_t acc_step, int32_t out_step, int32_t zp,
                                         int32_t qmin, int32_t qmax) {
  rq_frame f = {acc, bias, mult, shift, out, acc_step, channels, 2 * zp + 1, qmax, qmin};
  if (channels <= 0 || positions <= 0) return 0;
  if (acc_step != out_step) {
    for (int32_t c = 0; c < channels; ++c) rq_channel_exact(&f, c, positions, acc_step, out_step);
    return 0;
  }
  int clamped = !(qmin == -128 && qmax == 127);
  for (int32_t p = 0; p + 1 < positions; p += 2) {
    rq_positions(&f, 2, clamped ? rq_pair_clamped : rq_pair);
    f.acc += 2 * acc_step;
    f.out += 2 * out_step;
  }
  if (positions & 1) rq_positions(&f, 1, clamped ? rq_single_clamped : rq_single);
  return 0;
}
