/* Test harness of micro's firmware template: stream a whole input file through the model.
 *
 * Reads fixed-size input records (MODEL_INPUT_BYTES each, raw little-endian) from
 * MICRO_INPUT_FILE over semihosting until end of file, runs the model on each, appends each
 * output record (MODEL_OUTPUT_BYTES) to MICRO_OUTPUT_FILE, and counts SysTick ticks around each
 * call (under `qemu -icount shift=0` a tick is a fixed number of instructions). One QEMU run
 * classifies a whole test set. The host parses the MICRO:* lines printed to stdout; the exact
 * contract is in docs/micro.md.
 *
 * With an application (micro.App, MICRO_APP defined in micro_config.h) the loop is the app's
 * instead: records of MICRO_APP_INPUT_BYTES are read in blocks, the app's init runs once, its
 * step once per record (counted as the model call is), and the bytes each step writes are
 * buffered and written in blocks; see app_main below. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "micro_config.h"
#include "model.h"

#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)
#define SYST_MAX 0x00FFFFFFu

extern uint32_t __stack_limit[], __stack_top[];

#ifndef MICRO_APP
static uint8_t g_input[MODEL_INPUT_BYTES] __attribute__((aligned(16)));
static uint8_t g_output[MODEL_OUTPUT_BYTES] __attribute__((aligned(16)));
#define MICRO_HOOK_BUFFER g_input
#else
#define APP_IN_BLOCK_BYTES (MICRO_APP_IN_BLOCK_RECORDS * MICRO_APP_INPUT_BYTES)
int32_t MICRO_APP_STEP(const void* record, void* out);
#ifdef MICRO_APP_INIT
int32_t MICRO_APP_INIT(void);
#endif
static uint8_t g_in_block[APP_IN_BLOCK_BYTES] __attribute__((aligned(16)));
static uint8_t g_step_out[MICRO_APP_OUTPUT_MAX_BYTES] __attribute__((aligned(16)));
static uint8_t g_out_block[MICRO_APP_OUT_BLOCK_BYTES] __attribute__((aligned(16)));
#define MICRO_HOOK_BUFFER g_in_block
#endif
static volatile uint32_t g_systick_wraps;

void SysTick_Handler(void) { g_systick_wraps++; }

/* Markers for the exact counter (QEMU plugin): it records the instruction count when execution
 * reaches each of them. noipa keeps them separate, out of line and never merged. */
void __attribute__((noipa, used)) micro_count_begin(void) { __asm__ volatile(""); }
void __attribute__((noipa, used)) micro_count_end(void) { __asm__ volatile(""); }

static void ticks_start(void) {
  SYST_RVR = SYST_MAX;
  SYST_CVR = 0u;
  SYST_CSR = 7u; /* enable, interrupt on wrap, count the processor clock */
}

static uint64_t ticks_now(void) {
  uint32_t wraps, value;
  do {
    wraps = g_systick_wraps;
    value = SYST_CVR;
  } while (wraps != g_systick_wraps);
  return ((uint64_t)wraps << 24) + (SYST_MAX - value);
}

static inline uint32_t* stack_pointer(void) {
  uint32_t* sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  return sp;
}

/* Lowest stack address written since painting. */
static uintptr_t stack_low_water(void) {
  const uint32_t* p = __stack_limit;
  while (p < __stack_top && *p == MICRO_STACK_PAINT) ++p;
  return (uintptr_t)p;
}

/* newlib-nano's printf has no 64-bit conversions. */
static const char* u64_text(uint64_t value, char* buf) {
  char* p = buf + 20;
  *p = '\0';
  do {
    *--p = (char)('0' + value % 10u);
    value /= 10u;
  } while (value);
  return p;
}

#ifndef MICRO_APP
static int read_record(int fd, uint8_t* dst, size_t size) {
  size_t got = 0;
  while (got < size) {
    int n = read(fd, dst + got, size - got);
    if (n <= 0) break;
    got += (size_t)n;
  }
  return got == 0 ? 0 : (got == size ? 1 : -1);
}
#endif

static void test_hook(void) {
#if MICRO_TEST_HOOK == MICRO_HOOK_FAULT
  /* A store nothing answers (BusFault on the MPS boards). QEMU's nRF51 ignores unmapped
   * addresses, so follow with an unaligned word store, which faults on Armv6-M. */
  *(volatile uint32_t*)MICRO_FAULT_ADDRESS = 0xDEADBEEFu;
  uint8_t* volatile odd = MICRO_HOOK_BUFFER + 1; /* volatile: the compiler must not split the store */
  *(volatile uint32_t*)odd = 0xDEADBEEFu;
#elif MICRO_TEST_HOOK == MICRO_HOOK_HANG
  volatile int forever = 1; /* volatile: the code after the loop stays in the image */
  while (forever) {
  }
#elif MICRO_TEST_HOOK == MICRO_HOOK_HOST_FILES
  /* A hostile image: read a host file, create files outside the run folder. */
  int read_fd = open(MICRO_ESCAPE_READ, O_RDONLY);
  char byte;
  int read_ok = read_fd >= 0 && read(read_fd, &byte, 1) == 1;
  int written[2] = {0, 0};
  const char* targets[2] = {MICRO_ESCAPE_WRITE, MICRO_ESCAPE_UP};
  for (int i = 0; i < 2; ++i) {
    int fd = open(targets[i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    written[i] = fd >= 0 && write(fd, "escaped\n", 8) == 8;
    if (fd >= 0) close(fd);
  }
  printf("MICRO:ESCAPE read=%d write=%d up=%d\n", read_ok, written[0], written[1]);
#endif
}

#ifndef MICRO_APP
int main(void) {
  int in = open(MICRO_INPUT_FILE, O_RDONLY);
  if (in < 0) return MICRO_EXIT_NO_INPUT;
  int out = open(MICRO_OUTPUT_FILE, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out < 0) return MICRO_EXIT_NO_OUTPUT;
  printf("MICRO:BEGIN board=%s input_bytes=%d output_bytes=%d\n", MICRO_BOARD,
         MODEL_INPUT_BYTES, MODEL_OUTPUT_BYTES);
  test_hook();
  uintptr_t startup_low = stack_low_water();
  uintptr_t model_low = (uintptr_t)__stack_top;
  uintptr_t frame = 0;
  uint32_t count = 0, tick_min = UINT32_MAX, tick_max = 0;
  uint64_t tick_total = 0;
  ticks_start();
  for (;;) {
    int status = read_record(in, g_input, MODEL_INPUT_BYTES);
    if (status == 0) break;
    if (status < 0) {
      printf("MICRO:ERROR truncated input record %lu\n", (unsigned long)count);
      return MICRO_EXIT_SHORT_INPUT;
    }
    if (count == 0) { /* repaint below this frame: the first call gives the model's stack use */
      uint32_t* sp = stack_pointer();
      frame = (uintptr_t)sp;
      for (uint32_t* p = __stack_limit; p < sp - 8; ++p) *p = MICRO_STACK_PAINT;
    }
    uint64_t t0 = ticks_now();
    micro_count_begin();
    status = MODEL_RUN(g_input, g_output);
    micro_count_end();
    uint64_t t1 = ticks_now();
    if (count == 0) model_low = stack_low_water();
    if (status != 0) {
      printf("MICRO:ERROR model_run returned %d on record %lu\n", status, (unsigned long)count);
      return MICRO_EXIT_MODEL_ERROR;
    }
    if (write(out, g_output, MODEL_OUTPUT_BYTES) != MODEL_OUTPUT_BYTES) return MICRO_EXIT_WRITE_ERROR;
    uint32_t ticks = (uint32_t)(t1 - t0);
    tick_total += ticks;
    tick_min = ticks < tick_min ? ticks : tick_min;
    tick_max = ticks > tick_max ? ticks : tick_max;
    count++;
  }
  close(in);
  close(out);
  uintptr_t final_low = stack_low_water();
  uintptr_t low = startup_low < final_low ? startup_low : final_low;
  char buf[21];
  printf("MICRO:RESULT inferences=%lu ticks_total=%s ticks_min=%lu ticks_max=%lu\n",
         (unsigned long)count, u64_text(tick_total, buf), (unsigned long)(count ? tick_min : 0),
         (unsigned long)tick_max);
  printf("MICRO:STACK model_bytes=%lu total_bytes=%lu reserved_bytes=%lu\n",
         (unsigned long)(count ? frame - model_low : 0),
         (unsigned long)((uintptr_t)__stack_top - low),
         (unsigned long)((uintptr_t)__stack_top - (uintptr_t)__stack_limit));
  printf("MICRO:END\n");
  return MICRO_EXIT_OK;
}

#else /* MICRO_APP */

/* Reads up to `size` bytes (fewer only at end of file). */
static size_t read_block(int fd, uint8_t* dst, size_t size) {
  size_t got = 0;
  while (got < size) {
    int n = read(fd, dst + got, size - got);
    if (n <= 0) break;
    got += (size_t)n;
  }
  return got;
}

/* The lowest stack address written since the last repaint goes into *low; then the stack between
 * it and `frame` is painted again. Inlined: it must not paint under a frame of its own. */
static inline __attribute__((always_inline)) void stack_mark(uintptr_t* low, uintptr_t frame) {
  uintptr_t used = stack_low_water();
  if (used < *low) *low = used;
  for (uint32_t* p = (uint32_t*)used; p < (uint32_t*)frame - 8; ++p) *p = MICRO_STACK_PAINT;
}

int main(void) {
  int in = open(MICRO_INPUT_FILE, O_RDONLY);
  if (in < 0) return MICRO_EXIT_NO_INPUT;
  int out = open(MICRO_OUTPUT_FILE, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (out < 0) return MICRO_EXIT_NO_OUTPUT;
  printf("MICRO:BEGIN board=%s input_bytes=%d output_bytes=%d\n", MICRO_BOARD,
         MICRO_APP_INPUT_BYTES, MICRO_APP_OUTPUT_MAX_BYTES);
  test_hook();
#ifdef MICRO_APP_INIT
  int32_t init_status = MICRO_APP_INIT();
  if (init_status != 0) {
    printf("MICRO:ERROR app init returned %ld\n", (long)init_status);
    return MICRO_EXIT_MODEL_ERROR;
  }
#endif
  /* The stack below this frame is painted again after every I/O call, and measured before it:
   * `step_low` is the deepest any step reached, `io_low` the deepest the I/O calls did. */
  uintptr_t startup_low = stack_low_water();
  uintptr_t frame = (uintptr_t)stack_pointer();
  uintptr_t step_low = frame, io_low = frame;
  for (uint32_t* p = __stack_limit; p < (uint32_t*)frame - 8; ++p) *p = MICRO_STACK_PAINT;
  uint32_t count = 0, tick_min = UINT32_MAX, tick_max = 0;
  uint64_t tick_total = 0, written = 0;
  size_t used = 0;
  ticks_start();
  for (;;) {
    size_t got = read_block(in, g_in_block, APP_IN_BLOCK_BYTES);
    stack_mark(&io_low, frame);
    if (got == 0) break;
    size_t records = got / MICRO_APP_INPUT_BYTES;
    if (records * MICRO_APP_INPUT_BYTES != got) {
      printf("MICRO:ERROR truncated input record %lu\n", (unsigned long)(count + records));
      return MICRO_EXIT_SHORT_INPUT;
    }
    for (size_t r = 0; r < records; ++r) {
      const uint8_t* record = g_in_block + r * MICRO_APP_INPUT_BYTES;
      uint64_t t0 = ticks_now();
      micro_count_begin();
      int32_t n = MICRO_APP_STEP(record, g_step_out);
      micro_count_end();
      uint64_t t1 = ticks_now();
      if (n < 0 || n > MICRO_APP_OUTPUT_MAX_BYTES) {
        printf("MICRO:ERROR app step returned %ld on record %lu%s\n", (long)n,
               (unsigned long)count, n < 0 ? "" : " (more than output_max_bytes)");
        return MICRO_EXIT_MODEL_ERROR;
      }
      if (used + (size_t)n > MICRO_APP_OUT_BLOCK_BYTES) {
        stack_mark(&step_low, frame);
        if (write(out, g_out_block, used) != (int)used) return MICRO_EXIT_WRITE_ERROR;
        stack_mark(&io_low, frame);
        used = 0;
      }
      memcpy(g_out_block + used, g_step_out, (size_t)n);
      used += (size_t)n;
      written += (uint64_t)n;
      uint32_t ticks = (uint32_t)(t1 - t0);
      tick_total += ticks;
      tick_min = ticks < tick_min ? ticks : tick_min;
      tick_max = ticks > tick_max ? ticks : tick_max;
      count++;
    }
    stack_mark(&step_low, frame);
  }
  if (used && write(out, g_out_block, used) != (int)used) return MICRO_EXIT_WRITE_ERROR;
  close(in);
  close(out);
  stack_mark(&io_low, frame);
  uintptr_t low = startup_low < io_low ? startup_low : io_low;
  low = step_low < low ? step_low : low;
  char buf[21];
  printf("MICRO:RESULT inferences=%lu ticks_total=%s ticks_min=%lu ticks_max=%lu\n",
         (unsigned long)count, u64_text(tick_total, buf), (unsigned long)(count ? tick_min : 0),
         (unsigned long)tick_max);
  printf("MICRO:APP output_bytes=%s\n", u64_text(written, buf));
  printf("MICRO:STACK model_bytes=%lu total_bytes=%lu reserved_bytes=%lu\n",
         (unsigned long)(count ? frame - step_low : 0),
         (unsigned long)((uintptr_t)__stack_top - low),
         (unsigned long)((uintptr_t)__stack_top - (uintptr_t)__stack_limit));
  printf("MICRO:END\n");
  return MICRO_EXIT_OK;
}
#endif /* MICRO_APP */
