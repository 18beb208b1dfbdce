/* int8 pooling micro-kernels for Cortex-M cores with the DSP extension (M4, M7, M33).
 * Called from TIR kernels tensorized by micro/kernels/dsp/pooling.py (see docs/dsp.md). The
 * pointers are void* because that is how TVM's C code generator declares an extern function
 * called with buffer addresses. Both functions write their outputs (whatever they held) and
 * return 0. */
#ifndef MICRO_DSP_POOLING_H_
#define MICRO_DSP_POOLING_H_

#include <stdint.h>

/* out[c] = sum_{k < rows} input[k * row_step + c] for c < channels (int8 in, int32 out,
 * wrapping): the per-channel sum of global average pooling over the rows of an int8
 * [rows, channels] tensor whose rows start `row_step` bytes apart. Any alignment; out is
 * int32_t, 4-byte aligned. */
int32_t micro_dsp_sum_rows_q7(void* input, void* out, int32_t rows, int32_t channels,
                              int32_t row_step);

/* out[(i * out_cols + j) * channels + c] =
 *   max_{a < window_rows, b < window_cols} input[i * row_step + j * col_step + a * tap_row
 *                                                + b * tap_col + c]
 * for i < out_rows, j < out_cols, c < channels (int8): max pooling of an NHWC tensor whose
 * windows start `row_step` bytes apart along the output rows and `col_step` along the output
 * columns, their taps `tap_row` and `tap_col` bytes apart (strides and dilations times the
 * input's row and column strides). The output is contiguous. Any alignment. */
int32_t micro_dsp_max_pool_q7(void* input, void* out, int32_t out_rows, int32_t out_cols,
                              int32_t channels, int32_t window_rows, int32_t window_cols,
                              int32_t row_step, int32_t col_step, int32_t tap_row,
                              int32_t tap_col);

#endif
