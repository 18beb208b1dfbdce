/* GNU-named soft-float helpers for LLVM objects on Armv6-M (part of micro's firmware template).
 *
 * TVM's LLVM emits soft-float operations as calls to the GNU libgcc names (__addsf3, __ltsf2,
 * ...). libgcc provides those names for Armv7-M, but its Armv6-M build only has the AEABI names
 * (__aeabi_fadd, ...) for arithmetic and conversions (its comparisons, __ltsf2 and friends, and
 * __fixunssfsi exist). Each helper below is the C operation itself, which GCC compiles into the
 * AEABI call. */
#include "micro_config.h"

#if MICRO_ARMV6M

float __addsf3(float a, float b) { return a + b; }
float __subsf3(float a, float b) { return a - b; }
float __mulsf3(float a, float b) { return a * b; }
float __divsf3(float a, float b) { return a / b; }
float __negsf2(float a) { return -a; }
int __unordsf2(float a, float b) { return a != a || b != b; }
int __fixsfsi(float a) { return (int)a; }
float __floatsisf(int a) { return (float)a; }
float __floatunsisf(unsigned a) { return (float)a; }
double __extendsfdf2(float a) { return (double)a; }
float __truncdfsf2(double a) { return (float)a; }
double __adddf3(double a, double b) { return a + b; }
double __subdf3(double a, double b) { return a - b; }
double __muldf3(double a, double b) { return a * b; }
double __divdf3(double a, double b) { return a / b; }

#endif /* MICRO_ARMV6M */
