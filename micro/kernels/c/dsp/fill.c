/* micro_dsp_fill_channels_q15 (see fill.h and docs/dsp.md). Plain C: it needs no DSP
 * instruction, but it is built with the DSP library's kernels. */
#include "fill.h"

#include <stdint.h>

/* ---- micro_dsp_fill_channels_q15: a depthwise pass's window, transposed to channel-major ----
 *
 * The padded columns are filled first; then each channel's columns inside the row, read
 * `channels` bytes apart (LDRSB with a post-increment when the channel count is a constant the
 * switch below knows) and stored as consecutive int16 values: about 2.5 instructions per value
 * with the loop unrolled, where TVM's loop with its padding test per value takes about 9. */
static inline __attribute__((always_inline)) void fill_inside(const int8_t* x, int16_t* y,
                                                              int32_t count, int32_t channels,
                                                              int32_t rows, int32_t step) {
  for (int32_t c = 0; c < rows; ++c, ++x, y += step) {
    const int8_t* src = x;
    int16_t* dst = y;
#pragma GCC unroll 4
    for (int32_t j = 0; j < count; ++j, src += channels) dst[j] = *src;
  }
}

int32_t micro_dsp_fill_channels_q15(void* row, void* window, int32_t first, int32_t cols,
                                    int32_t channels, int32_t width, int32_t pad,
                                    int32_t channel_step) {
  const int8_t* x = row;
  int16_t* y = window;
  int32_t lo = first < 0 ? -first : 0; /* columns [lo, hi) lie inside the row */
  int32_t hi = width - first < cols ? width - first : cols;
  if (lo > cols) lo = cols;
  if (hi < lo) hi = lo;
  for (int32_t c = 0; c < channels; ++c) {
    int16_t* w = y + c * channel_step;
    for (int32_t j = 0; j < lo; ++j) w[j] = (int16_t)pad;
    for (int32_t j = hi; j < cols; ++j) w[j] = (int16_t)pad;
  }
  if (hi == lo) return 0;
  x += (first + lo) * channels;
  y += lo;
  switch (channels) { /* constant strides: LDRSB with an immediate post-increment */
    case 1: fill_inside(x, y, hi - lo, 1, 1, channel_step); break;
    case 8: fill_inside(x, y, hi - lo, 8, 8, channel_step); break;
    case 16: fill_inside(x, y, hi - lo, 16, 16, channel_step); break;
    case 32: fill_inside(x, y, hi - lo, 32, 32, channel_step); break;
    case 64: fill_inside(x, y, hi - lo, 64, 64, channel_step); break;
    default: fill_inside(x, y, hi - lo, channels, channels, channel_step); break;
  }
  return 0;
}
