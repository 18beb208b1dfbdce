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

/* out[(i * out_cols + j) * channels + c] = max(-128,
 *     max_{a < window_rows, b < window_cols, r and q inside the input}
 *         input[r * row_stride + q * col_stride + c])
 *   with r = i * stride_rows + a * dilation_rows - pad_top,
 *        q = j * stride_cols + b * dilation_cols - pad_left,
 * for i < out_rows, j < out_cols, c < channels (int8): TVM's max pooling of an NHWC tensor of
 * in_rows x in_cols positions, `row_stride` and `col_stride` bytes apart (channels contiguous),
 * padded with -128 (the taps in the padding are skipped: -128 is the identity of the maximum).
 * `input` points to the input's first element; the output is contiguous. Any alignment. */
int32_t micro_dsp_max_pool_q7(void* input, void* out, int32_t out_rows, int32_t out_cols,
                              int32_t channels, int32_t window_rows, int32_t window_cols,
                              int32_t stride_rows, int32_t stride_cols, int32_t dilation_rows,
                              int32_t dilation_cols, int32_t in_rows, int32_t in_cols,
                              int32_t pad_top, int32_t pad_left, int32_t row_stride,
                              int32_t col_stride);

#endif
