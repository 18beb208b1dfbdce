/* A trivial test application for micro.App: sums int16 samples and writes the running sum
 * (int32, little-endian) after every EMIT_EVERY-th sample; no init, never runs the model. */
#include <stdint.h>
#include <string.h>

#include "micro_config.h"

static uint32_t g_count;
static int32_t g_sum;

int32_t sum_step(const void* record, void* out) {
  int16_t sample;
  memcpy(&sample, record, sizeof sample);
  g_sum += sample;
  if (++g_count % EMIT_EVERY != 0) return 0;
  memcpy(out, &g_sum, sizeof g_sum);
  return sizeof g_sum;
}
