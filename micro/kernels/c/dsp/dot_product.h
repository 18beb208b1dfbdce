/* SMLAD micro-kernels for int8 dot products on Cortex-M cores with the DSP extension.
 * Called from TIR kernels tensorized by micro/kernels/dsp/dot_product.py (see docs/dsp.md). */
#ifndef MICRO_DSP_DOT_PRODUCT_H_
#define MICRO_DSP_DOT_PRODUCT_H_

#include <stdint.h>

/* acc[o] += sum_{r < len} x[r] * w[o * w_stride + r] for o < n (int32, wrapping). Returns 0.
 * x and w point to int8_t, acc to int32_t; the pointers are void* because that is how TVM's C
 * code generator declares an extern function called with buffer addresses. */
int32_t micro_dsp_dot_q7(void* x, void* w, void* acc, int32_t len, int32_t n, int32_t w_stride);

/* The same for four outputs at a time with interleaved weights, for n and len multiples of 4:
 * w[((o / 4) * (len / 4) + r / 4) * 16 + (o % 4) * 4 + r % 4] is the weight of output o and input
 * r (for each group of four outputs and each quad of four inputs, the four outputs' four bytes).
 * One LDM loads a quad's weights for all four outputs: 18 instructions per 16 MACs plus the
 * loop's. w must be
 * word-aligned (LDM faults otherwise); micro.kernels.dsp only passes re-laid-out constants, which the
 * generated model aligns to 16 bytes, at offsets that are multiples of 16. */
int32_t micro_dsp_dot_q7x4(void* x, void* w, void* acc, int32_t len, int32_t n);

/* int8 activations times packed signed 4-bit weights: acc[o] += sum_{r < len} x[r] * w4(o, r) for
 * o < n (int32, wrapping), where row o starts w_stride bytes after row o - 1 and byte j of a row
 * holds w4(o, 2j) in its low nibble and w4(o, 2j + 1) in its high nibble, both two's complement
 * in [-8, 7] (for an odd len the last high nibble is not read). Any len, n, alignment of x, w and
 * w_stride. 22 instructions per 16 MACs in the inner loop (two outputs). Returns 0. */
int32_t micro_dsp_dot_q7q4(void* x, void* w, void* acc, int32_t len, int32_t n,
                           int32_t w_stride);

#endif
