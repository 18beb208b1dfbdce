/* Round-to-nearest-even for single-precision FPU cores (part of micro's firmware template).
 *
 * TVM's C code rounds with nearbyintf (quantize: round(x / scale) + zero point). newlib's
 * version works on the float's bits in integer code, about thirty instructions a call; on a core
 * with a single-precision FPU (FPv4/FPv5 have no VRINT) adding and subtracting 2^23 makes the
 * FPU itself round, in its default round-to-nearest-even mode, to the same result: for
 * |x| < 2^23 the sum lies in [2^23, 2^24), where floats are exactly the integers, and the
 * subtraction is exact; larger magnitudes, infinities and NaNs are returned as they are (they
 * are integral already, or propagate). copysignf keeps the sign of -0.3 -> -0.0. The firmware is
 * compiled without -ffast-math, so the compiler keeps the addition and subtraction. These
 * definitions take the place of libm's when the model calls them. */
#include "micro_backend.h"

#if defined(__ARM_FP) && (__ARM_FP & 4)

float nearbyintf(float x) {
  const float two_pow_23 = 8388608.0f;
  float magnitude = fabsf(x);
  if (!(magnitude < two_pow_23)) return x;
  return copysignf((magnitude + two_pow_23) - two_pow_23, x);
}

float rintf(float x) { return nearbyintf(x); }
#endif
