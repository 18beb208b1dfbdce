/* A test application for micro.App: int16 samples in, the model every WINDOW_EVERY samples.
 *
 * State: the running sum of the samples (starting at INIT_SUM, set by window_init) and the last
 * MODEL_INPUT_BYTES samples in a ring. Every WINDOW_EVERY-th sample (indices 6, 13, ... for 7)
 * the model's int8 input is filled from the ring, oldest first, each sample >> 6 clamped to int8,
 * and the step writes the model's output, the sample index (uint32) and the running sum (int32),
 * little-endian. The sample STEP_FAILS_ON makes the step return -1, STEP_OVERSIZE_ON one byte
 * more than output_max_bytes; a second init call, -2. */
#include <stdint.h>
#include <string.h>

#include "micro_config.h"
#include "model.h"

static int8_t g_ring[MODEL_INPUT_BYTES];
static int8_t g_model_in[MODEL_INPUT_BYTES] __attribute__((aligned(16)));
static uint32_t g_index;
static int32_t g_sum;
static int g_inits;

int32_t window_init(void) {
  g_inits++;
  g_sum = INIT_SUM;
  return INIT_STATUS;
}

int32_t window_step(const void* record, void* out) {
  int16_t sample;
  memcpy(&sample, record, sizeof sample);
  if (g_inits != 1) return -2;
  if (sample == STEP_FAILS_ON) return -1;
  if (sample == STEP_OVERSIZE_ON) return MICRO_APP_OUTPUT_MAX_BYTES + 1;
  g_sum += sample;
  int32_t scaled = sample >> 6;
  scaled = scaled > 127 ? 127 : (scaled < -128 ? -128 : scaled);
  g_ring[g_index % MODEL_INPUT_BYTES] = (int8_t)scaled;
  uint32_t index = g_index++;
  if (index % WINDOW_EVERY != WINDOW_EVERY - 1) return 0;
  for (uint32_t i = 0; i < MODEL_INPUT_BYTES; ++i)
    g_model_in[i] = g_ring[(index + 1 + i) % MODEL_INPUT_BYTES];
  uint8_t* bytes = out;
  if (MODEL_RUN(g_model_in, bytes) != 0) return -3;
  memcpy(bytes + MODEL_OUTPUT_BYTES, &index, 4);
  memcpy(bytes + MODEL_OUTPUT_BYTES + 4, &g_sum, 4);
  return MODEL_OUTPUT_BYTES + 8;
}
