/* Glue for kernels compiled by TVM's LLVM back end (part of micro's firmware template; not part
 * of an exported C library, whose kernels are C). */
#include "micro_backend.h"

/* Objects from TVM's LLVM back end call micro_backend.c's allocator through these pointers (weak
 * and NULL in the objects themselves). */
void* (*__TVMBackendAllocWorkspace)(int, int, uint64_t, int, int) = TVMBackendAllocWorkspace;
int (*__TVMBackendFreeWorkspace)(int, int, void*) = TVMBackendFreeWorkspace;

/* LLVM objects reference the EHABI personality routine from their unwind tables; kernels never
 * throw, so an empty one keeps libgcc's unwinder out of the image. */
void __aeabi_unwind_cpp_pr0(void) {}
