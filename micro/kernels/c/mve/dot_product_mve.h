/* Helium (MVE) micro-kernels for int8 dot products on the Cortex-M55 (Armv8.1-M with MVE).
 * Called from TIR kernels tensorized by micro/kernels/mve/dot_product.py (see docs/isa-mve.md). */
#ifndef MICRO_MVE_DOT_PRODUCT_H_
#define MICRO_MVE_DOT_PRODUCT_H_

#include <stdint.h>

/* acc[o] += sum_{r < len} x[r] * w[o * w_stride + r] for o < n (int32, wrapping). Any len >= 0,
 * n >= 0, w_stride and alignment (byte loads). x and w point to int8_t, acc to int32_t (word
 * aligned); void* because that is how TVM's C code generator declares an extern function called
 * with buffer addresses. Four outputs per pass over x: per 16 inputs one VLDRB of activations,
 * four VLDRB of weights and four VMLADAVA in a tail-predicated loop (DLSTP.8 / LETP), 10
 * instructions per 64 MACs. Returns 0. */
int32_t micro_mve_dot_q7(void* x, void* w, void* acc, int32_t len, int32_t n, int32_t w_stride);

/* int8 activations times packed signed 4-bit weights, micro_dsp_dot_q7q4's contract: acc[o] +=
 * sum_{r < len} x[r] * w4(o, r) for o < n, row o starting w_stride bytes after row o - 1, byte j
 * of a row holding w4(o, 2j) in its low nibble and w4(o, 2j + 1) in its high nibble (two's
 * complement; for an odd len the last high nibble is not read). Any len, n, w_stride and
 * alignment. Per 32 inputs the activations' even and odd elements are gathered once (two
 * VLDRB.U8 gathers) and used by up to four outputs, each unpacking 16 bytes of weights (VLDRB.8,
 * VSHL + VSHR for the low nibbles, VSHR for the high ones) into two VMLADAVA.S8: 29 instructions
 * per 128 MACs. Returns 0. */
int32_t micro_mve_dot_q7q4(void* x, void* w, void* acc, int32_t len, int32_t n,
                           int32_t w_stride);

#endif
