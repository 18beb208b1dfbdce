/* The streaming firmware's application around the model (a micro.App, see docs/micro.md):
 * one raw ADC sample per step through the ECG front end (ecg_stream.c), the model on every
 * beat it completes, and one event record per R peak and per classified beat.
 *
 * Event records, little-endian, every one a multiple of 4 bytes (pla_tvm/stream/firmware.py
 * parses them):
 *   R peak: u8 1, u8[3] 0, u32 R-peak sample index, u32 index of the sample being processed
 *   beat:   u8 2, u8 class, u8[2] 0, u32 its R peak (the beat runs to the next one), u32 index
 *           of the sample being processed, the model's output bytes, zero-padded to 4 bytes.
 * The class is the argmax of the outputs (lowest index on ties), int8 or float32 outputs. */
#include <stdint.h>
#include <string.h>

#include "ecg_stream.h"
#include "micro_config.h"
#include "model.h"

#if MODEL_INPUT_BYTES != ECG_STREAM_LENGTH
#error "the model's input must be one int8 beat of ECG_STREAM_LENGTH samples"
#endif

#define STREAM_EVENT_PEAK 1u
#define STREAM_EVENT_BEAT 2u
#define STREAM_BEAT_EVENT_BYTES (12 + ((MODEL_OUTPUT_BYTES + 3) / 4) * 4)

static uint8_t* g_out;
static int32_t g_written;
static int32_t g_failed;
static uint32_t g_sample;
static int8_t g_input[MODEL_INPUT_BYTES] __attribute__((aligned(16)));
static uint8_t g_output[MODEL_OUTPUT_BYTES] __attribute__((aligned(16)));

static void put_u32(uint8_t* p, uint32_t value) {
  p[0] = (uint8_t)value;
  p[1] = (uint8_t)(value >> 8);
  p[2] = (uint8_t)(value >> 16);
  p[3] = (uint8_t)(value >> 24);
}

static uint8_t argmax(void) {
  uint8_t best = 0;
#if STREAM_OUTPUT_FLOAT
  float values[MODEL_OUTPUT_BYTES / 4];
  memcpy(values, g_output, sizeof values);
  for (uint8_t i = 1; i < MODEL_OUTPUT_BYTES / 4; ++i) {
    if (values[i] > values[best]) best = i;
  }
#else
  const int8_t* values = (const int8_t*)g_output;
  for (uint8_t i = 1; i < MODEL_OUTPUT_BYTES; ++i) {
    if (values[i] > values[best]) best = i;
  }
#endif
  return best;
}

void ecg_stream_on_peak(uint32_t r_peak) {
  uint8_t* p = g_out + g_written;
  p[0] = STREAM_EVENT_PEAK;
  p[1] = p[2] = p[3] = 0;
  put_u32(p + 4, r_peak);
  put_u32(p + 8, g_sample);
  g_written += 12;
}

void ecg_stream_on_beat(uint32_t start, const int8_t* beat) {
  memcpy(g_input, beat, MODEL_INPUT_BYTES);
  if (MODEL_RUN(g_input, g_output) != 0) {
    g_failed = 1;
    return;
  }
  uint8_t* p = g_out + g_written;
  memset(p, 0, STREAM_BEAT_EVENT_BYTES);
  p[0] = STREAM_EVENT_BEAT;
  p[1] = argmax();
  put_u32(p + 4, start);
  put_u32(p + 8, g_sample);
  memcpy(p + 12, g_output, MODEL_OUTPUT_BYTES);
  g_written += STREAM_BEAT_EVENT_BYTES;
}

int32_t stream_app_init(void) {
  ecg_stream_init();
  g_sample = 0;
  g_failed = 0;
  return 0;
}

int32_t stream_app_step(const void* record, void* out) {
  int16_t sample;
  memcpy(&sample, record, sizeof sample);
  g_out = (uint8_t*)out;
  g_written = 0;
  ecg_stream_push(sample);
  g_sample++;
  return g_failed ? -1 : g_written;
}
