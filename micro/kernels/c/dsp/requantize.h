/* TFLite's int8 requantization on Cortex-M cores with the DSP extension.
 * Called from TIR kernels tensorized by micro/kernels/dsp/requantize.py (see docs/dsp.md). */
#ifndef MICRO_DSP_REQUANTIZE_H_
#define MICRO_DSP_REQUANTIZE_H_

#include <stdint.h>

/* out[i] = TFLite's int8 requantization of acc[i] + bias[i] with per-channel multiplier mult[i]
 * (int32, >= 0) and shift shift[i] (int8, <= 0), zero point zp, clamped to [qmin, qmax]
 * (see requantize.c). acc, bias, mult point to int32_t, shift and out to int8_t. Returns 0. */
int32_t micro_dsp_requantize_q7(void* acc, void* bias, void* mult, void* shift, void* out,
                                int32_t n, int32_t zp, int32_t qmin, int32_t qmax);

/* The epilogue of an int8 convolution pass, per channel c < channels and position p < positions:
 *   out[p * out_step + c] = clamp(q + zp, qmin, qmax),
 *   q = RoundingDivideByPOT(SRDHM(acc[p * acc_step + c] + bias[c], mult[c]), -shift[c])
 * with the int32 sum wrapping, TFLite's double rounding as micro.fixed_point_tir states it (for
 * any multiplier; shift[c] in [-31, 0]) and -128 <= qmin <= qmax <= 127. acc, bias and mult
 * point to int32_t, shift and out to int8_t. The assembly takes pairs of positions channel by
 * channel when the two steps are equal (see requantize.c); returns 0. */
int32_t micro_dsp_requantize_channels_q7(void* acc, void* bias, void* mult, void* shift,
                                         void* out, int32_t positions, int32_t channels,
                                         int32_t acc_step, int32_t out_step, int32_t zp,
                                         int32_t qmin, int32_t qmax);

/* micro_dsp_requantize_channels_q7 with each channel's constants precomputed at compile time
 * (micro/kernels/dsp/requantize_table.py), four int32 per channel in `table`:
 *   table[4 c] = bias[c], table[4 c + 1] = mult[c] (>= 0), table[4 c + 2] = e - 1,
 *   table[4 c + 3] = khi = (2 zp + 1) << (e - 2),   e = -shift[c], 2 <= e <= 24,
 * so that one LDM loads a channel's set-up (see requantize.c). The same outputs as
 * micro_dsp_requantize_channels_q7 with those bias, mult and shift; returns 0. */
int32_t micro_dsp_requantize_table_q7(void* acc, void* table, void* out, int32_t positions,
                                      int32_t channels, int32_t acc_step, int32_t out_step,
                                      int32_t zp, int32_t qmin, int32_t qmax);

#endif
