/* SMLAD micro-kernel for int8 dot products on Cortex-M cores with the DSP extension.
 * Called from TIR kernels tensorized by micro/dsp.py (see docs/dsp.md). */
#ifndef PLA_DSP_H_
#define PLA_DSP_H_

#include <stdint.h>

/* acc[o] += sum_{r < len} x[r] * w[o * w_stride + r] for o < n (int32, wrapping). Returns 0.
 * x and w point to int8_t, acc to int32_t; the pointers are void* because that is how TVM's C
 * code generator declares an extern function called with buffer addresses. */
int32_t pla_dsp_dot_q7(void* x, void* w, void* acc, int32_t len, int32_t n, int32_t w_stride);

#endif
