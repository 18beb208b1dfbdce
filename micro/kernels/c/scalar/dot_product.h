/* int8 dot products for cores without the DSP extension: Armv6-M (Cortex-M0/M0+) and Armv7-M
 * (Cortex-M3). Called from TIR kernels tensorized by micro/kernels/scalar/ (see
 * docs/isa-armv6m.md and docs/isa-armv7m.md). */
#ifndef MICRO_SCALAR_DOT_PRODUCT_H_
#define MICRO_SCALAR_DOT_PRODUCT_H_

#include <stdint.h>

/* acc[o] += sum_{r < len} x[r] * w[o * w_stride + r] for o < n (int32, wrapping). Returns 0.
 * Any len, n, w_stride and alignment. x and w point to int8_t, acc to int32_t; the pointers are
 * void* because that is how TVM's C code generator declares an extern function called with
 * buffer addresses. */
int32_t micro_scalar_dot_q7(void* x, void* w, void* acc, int32_t len, int32_t n,
                            int32_t w_stride);

/* acc[o] += sum_{r < len} x[r] * w[(o / 4) * 4 * len + (r / 4) * 16 + (o % 4) * 4 + r % 4] for
 * o < n: weights interleaved as [n/4, len/4, 4, 4] (dsp's micro_dsp_dot_q7x4 layout); n and len
 * multiples of 4. Returns 0. */
int32_t micro_scalar_dot_q7x4(void* x, void* w, void* acc, int32_t len, int32_t n);

/* int8 activations times packed signed 4-bit weights, micro_dsp_dot_q7q4's contract: acc[o] +=
 * sum_{r < len} x[r] * w4(o, r) for o < n, row o starting w_stride bytes after row o - 1, byte j
 * of a row holding w4(o, 2j) in its low nibble and w4(o, 2j + 1) in its high nibble (two's
 * complement; for an odd len the last high nibble is not read). Any len, n, w_stride and
 * alignment. Four outputs per pass over the activations. Returns 0. */
int32_t micro_scalar_dot_q7q4(void* x, void* w, void* acc, int32_t len, int32_t n,
                              int32_t w_stride);

#endif
