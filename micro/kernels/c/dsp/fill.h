/* The per-pass window of a depthwise convolution, filled with its padding, for Cortex-M cores
 * with the DSP extension (M4, M7, M33). Called from the blocks micro/kernels/dsp/fill.py puts
 * in place of TVM's loop (see docs/dsp.md). */
#ifndef MICRO_DSP_FILL_H_
#define MICRO_DSP_FILL_H_

#include <stdint.h>

/* The channel-major window of a depthwise convolution's pass (micro/kernels/dsp/fill.py): for
 * c < channels and j < cols, with column k = first + j of an input row of `width` positions,
 *   window[c * channel_step + j] = 0 <= k < width ? (int16) row[k * channels + c] : pad
 * (the row NWC int8, `channels` values per position; `channel_step` in int16 values). Columns
 * outside the row are the padding. Returns 0. */
int32_t micro_dsp_fill_channels_q15(void* row, void* window, int32_t first, int32_t cols,
                                    int32_t channels, int32_t width, int32_t pad,
                                    int32_t channel_step);

#endif
