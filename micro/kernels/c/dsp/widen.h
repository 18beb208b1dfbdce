/* int8 -> int16 widening of convolution window rows for Cortex-M cores with the DSP extension
 * (M4, M7, M33). Called from TIR kernels tensorized by micro/kernels/dsp/widen.py (see
 * docs/dsp.md). The pointers are void* because that is how TVM's C code generator declares an
 * extern function called with buffer addresses. */
#ifndef MICRO_DSP_WIDEN_H_
#define MICRO_DSP_WIDEN_H_

#include <stdint.h>

/* For r < rows, q < quads, with x = input + r * in_step + 4 * q (int8) and
 * y = window + r * out_step + 4 * q (int16):
 *   y[0] = x[0], y[1] = x[2], y[2] = x[1], y[3] = x[3]
 * each quad of four consecutive int8 values widened in SXTB16's order (v0, v2, v1, v3), the
 * order micro_dsp_conv_q15q7 reads. Writes the rows' 4 * quads values (nothing between rows),
 * returns 0. `in_step` is in bytes, `out_step` in int16 values; the input may have any
 * alignment, the window must be 4-byte aligned and out_step even. */
int32_t micro_dsp_widen_rows_q7(void* input, void* window, int32_t rows, int32_t quads,
                                int32_t in_step, int32_t out_step);

#endif
