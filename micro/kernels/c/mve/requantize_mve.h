/* TFLite's int8 requantization on Helium (MVE), four channels per vector, for the Cortex-M55.
 * Called from TIR kernels tensorized by micro/kernels/mve/requantize.py (see docs/isa-mve.md). */
#ifndef MICRO_MVE_REQUANTIZE_H_
#define MICRO_MVE_REQUANTIZE_H_

#include <stdint.h>

/* out[i] = clamp(q + zp, qmin, qmax) for i < n, q = RoundingDivideByPOT(SRDHM(acc[i] + bias[i],
 * mult[i]), -shift[i]): TFLite's double-rounding requantization exactly as
 * micro.fixed_point_tir states it, for any int32 acc, bias and mult and shift[i] in [-31, 0]
 * (the sum wraps). acc, bias, mult point to word-aligned int32_t, shift and out to int8_t.
 * 15 instructions per four channels in a tail-predicated loop; returns 0. */
int32_t micro_mve_requantize_q7(void* acc, void* bias, void* mult, void* shift, void* out,
                                int32_t n, int32_t zp, int32_t qmin, int32_t qmax);

/* The epilogue of an int8 convolution pass (micro_dsp_requantize_channels_q7's contract, see
 * micro/kernels/c/dsp/requantize.h): for p < positions, c < channels,
 *   out[p * out_step + c] = requantization of acc[p * acc_step + c] + bias[c] with mult[c] and
 *   shift[c], zero point zp, clamped to [qmin, qmax]:
 * micro_mve_requantize_q7 on each position's channels (acc_step words apart). Returns 0. */
int32_t micro_mve_requantize_channels_q7(void* acc, void* bias, void* mult, void* shift,
                                         int8_t* out, int32_t positions, int32_t channels,
                                         int32_t acc_step, int32_t out_step, int32_t zp,
                                         int32_t qmin, int32_t qmax);

#endif
