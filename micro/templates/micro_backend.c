/* Workspace allocator for generated kernels: a stack of blocks carved from a static arena.
 *
 * Kernels allocate and free their workspace in nested order, and the arena is sized at build
 * time from the kernels' requests, so a bump pointer that falls back when the top blocks are
 * freed is enough. Blocks freed out of order are marked and reclaimed once the blocks above them
 * are gone. Returning NULL makes the kernel return -1, which model_run passes on. */
#include "micro_backend.h"

#define MICRO_WORKSPACE_ALIGN 16u
#define MICRO_WORKSPACE_MAX_BLOCKS 32

typedef struct {
  size_t offset;
  int freed;
} micro_block_t;

static uint8_t* g_base;
static size_t g_size;
static size_t g_top;
static int g_depth;
static micro_block_t g_blocks[MICRO_WORKSPACE_MAX_BLOCKS];

void micro_workspace_init(uint8_t* base, size_t size) {
  g_base = base;
  g_size = size;
  g_top = 0;
  g_depth = 0;
}

void* TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes,
                               int dtype_code_hint, int dtype_bits_hint) {
  (void)device_type;
  (void)device_id;
  (void)dtype_code_hint;
  (void)dtype_bits_hint;
  size_t size = ((size_t)nbytes + MICRO_WORKSPACE_ALIGN - 1u) & ~(size_t)(MICRO_WORKSPACE_ALIGN - 1u);
  if (g_depth == MICRO_WORKSPACE_MAX_BLOCKS || size > g_size - g_top) return NULL;
  g_blocks[g_depth].offset = g_top;
  g_blocks[g_depth].freed = 0;
  g_depth++;
  g_top += size;
  return g_base + g_blocks[g_depth - 1].offset;
}

int TVMBackendFreeWorkspace(int device_type, int device_id, void* ptr) {
  (void)device_type;
  (void)device_id;
  int i = g_depth - 1;
  while (i >= 0 && (g_blocks[i].freed || g_base + g_blocks[i].offset != (uint8_t*)ptr)) i--;
  if (i < 0) return -1;
  g_blocks[i].freed = 1;
  while (g_depth > 0 && g_blocks[g_depth - 1].freed) g_top = g_blocks[--g_depth].offset;
  return 0;
}
