/*
 * The streaming ECG front end: raw int16 ADC samples in, R peaks and the model's int8 beats out.
 *
 * The C translation of pla_tvm/stream/reference.py (FrontEnd, quantize_beat), computing the same
 * integers bit for bit; its constants come from ecg_stream_config.h, which
 * pla_tvm.stream.csource.config_header renders from a StreamConfig (one sampling rate, one model
 * input). Bare metal: C11, static memory only (no heap), no floating point, nothing from libc but
 * memset/memmove; one 64-bit division per classified beat (libgcc's on Cortex-M), none per sample.
 *
 * Sample indices (the R peaks, a beat's start) count the samples pushed since ecg_stream_init,
 * from 0; they are passed modulo 2^32 (the module itself keeps them in 64 bits).
 * Not reentrant: one stream per firmware; call everything from one context.
 */
#ifndef ECG_STREAM_H_
#define ECG_STREAM_H_

#include <stdint.h>

#include "ecg_stream_config.h"

/* Indices of ecg_stream_skipped(): the reference's SKIP_* reasons, in their order
 * (pla_tvm.stream.reference.SKIP_REASONS). */
#define ECG_STREAM_SKIP_RR 0     /* RR interval outside [0.2 s, 2.0 s] */
#define ECG_STREAM_SKIP_FLAT 1   /* flat beat (cannot be normalised) */
#define ECG_STREAM_SKIP_ORDER 2  /* R peak not after the previous one */
#define ECG_STREAM_SKIP_BUFFER 3 /* beat start no longer buffered */
#define ECG_STREAM_SKIP_REASONS 4

/* Reset every state variable; the next pushed sample primes the filters (the reference's n == 0). */
void ecg_stream_init(void);

/* Process one raw sample; may call ecg_stream_on_peak and then ecg_stream_on_beat before it
 * returns. */
void ecg_stream_push(int16_t sample);

/* Counts of detected beats not classified, indexed by ECG_STREAM_SKIP_*
 * (ECG_STREAM_SKIP_REASONS entries, valid until the next ecg_stream_init). */
const uint32_t* ecg_stream_skipped(void);

/* Defined by the user. Called for every R peak the reference appends to r_peaks. */
void ecg_stream_on_peak(uint32_t r_peak);

/* Defined by the user. Called for every classified beat, right after the on_peak of the R peak
 * that closes it: start is its first sample (its R peak, the reference's beat_peaks entry), beat
 * the ECG_STREAM_LENGTH int8 model inputs (valid during the call only). */
void ecg_stream_on_beat(uint32_t start, const int8_t* beat);

#endif /* ECG_STREAM_H_ */
