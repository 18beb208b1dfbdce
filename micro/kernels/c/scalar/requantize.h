/* TFLite's int8 requantization for cores without the DSP extension: Armv6-M (Cortex-M0/M0+) and
 * Armv7-M (Cortex-M3). Called from TIR kernels tensorized by micro/kernels/scalar/ (see
 * docs/isa-armv6m.md and docs/isa-armv7m.md). */
#ifndef MICRO_SCALAR_REQUANTIZE_H_
#define MICRO_SCALAR_REQUANTIZE_H_

#include <stdint.h>

/* out[i] = TFLite's int8 requantization of acc[i] + bias[i] (int32, wrapping) with multiplier
 * mult[i] (int32) and shift shift[i] (int8, in [-31, 0]), zero point zp, clamped to
 * [qmin, qmax], as micro.fixed_point_tir.requantize states it. acc, bias, mult point to int32_t,
 * shift and out to int8_t. Returns 0. */
int32_t micro_scalar_requantize_q7(void* acc, void* bias, void* mult, void* shift, void* out,
                                   int32_t n, int32_t zp, int32_t qmin, int32_t qmax);

/* The epilogue of an int8 convolution pass (micro_dsp_requantize_channels_q7's contract, see
 * micro/kernels/c/dsp/requantize.h): for p < positions, c < channels,
 *   out[p * out_step + c] = requantization of acc[p * acc_step + c] + bias[c] with mult[c] and
 *   shift[c], zero point zp, clamped to [qmin, qmax]:
 * micro_scalar_requantize_q7 on each position's channels. Returns 0. */
int32_t micro_scalar_requantize_channels_q7(void* acc, void* bias, void* mult, void* shift,
                                            int8_t* out, int32_t positions, int32_t channels,
                                            int32_t acc_step, int32_t out_step, int32_t zp,
                                            int32_t qmin, int32_t qmax);

#endif
