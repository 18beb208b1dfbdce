/* Backend services that generated kernels and the entry point expect (part of micro's firmware
 * template). Replaces TVM's runtime headers: no TVM runtime runs on the device. */
#ifndef MICRO_BACKEND_H_
#define MICRO_BACKEND_H_

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TVM_DLL

/* Hand the workspace arena of a model to the allocator; called at the start of each inference. */
void micro_workspace_init(uint8_t* base, size_t size);

/* Called by generated kernels for intermediates too large for the stack. */
void* TVMBackendAllocWorkspace(int device_type, int device_id, uint64_t nbytes,
                               int dtype_code_hint, int dtype_bits_hint);
int TVMBackendFreeWorkspace(int device_type, int device_id, void* ptr);

#if defined(__ARM_FP) && (__ARM_FP & 4)
/* Rounding for single-precision FPU cores, in place of libm's (micro_round.c). */
float nearbyintf(float x);
float rintf(float x);
#endif

#endif /* MICRO_BACKEND_H_ */
