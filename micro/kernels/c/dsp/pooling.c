/* int8 pooling on the DSP extension (see pooling.h and docs/dsp.md).
 *
 * Row sums (global average pooling): SXTAB16 adds two sign-extended bytes of a word to the two
 * 16-bit halves of an accumulator in one instruction, and with its operand rotated by 8 bits the
 * other two: a word of four channels costs one load and two SXTAB16, into two registers holding
 * the channels (0, 2) and (1, 3) as int16 pairs. A 16-bit lane holds the sum of at most 256 int8
 * values (256 * -128 = -32768, 256 * 127 = 32512), so the rows are summed in chunks of 256 whose
 * pairs are then sign-extended and added to the int32 outputs. The int32 sums are the scalar
 * loop's (integer addition is associative), so results are bit-exact.
 *
 * Max pooling: SSUB8 subtracts four signed bytes at once and sets the APSR.GE flag of each byte
 * lane where the difference is >= 0; SEL then takes each byte from its first operand where the
 * flag is set and from its second elsewhere: the lane-wise signed maximum of two words in two
 * instructions. A window's taps are reduced a word of four channels at a time. Max is exact,
 * so results are bit-exact; padding is TVM's own stage before the pooling (its value, -128,
 * is the identity of the maximum). */
#include "pooling.h"

#include <stdint.h>
#include <string.h>

#if !defined(__ARM_FEATURE_DSP) || !__ARM_FEATURE_DSP
#error "pooling.c needs a core with the Arm DSP extension (SXTAB16, SSUB8, SEL)"
#endif

/* Rows summed in 16-bit lanes before they are added to the int32 outputs. */
#define MICRO_SUM_CHUNK 256

static inline uint32_t word_at(const int8_t* p) {
  uint32_t word;
  memcpy(&word, p, sizeof(word)); /* one LDR, unaligned allowed on these cores */
  return word;
}

static inline void put_word(int8_t* p, uint32_t word) { memcpy(p, &word, sizeof(word)); }

/* acc + the bytes 0 and 2 of w, sign-extended, in 16-bit lanes; with ror #8 the bytes 1 and 3. */
static inline int32_t sxtab16(int32_t acc, uint32_t w) {
  __asm__("sxtab16 %0, %0, %1" : "+r"(acc) : "r"(w));
  return acc;
}

static inline int32_t sxtab16_ror8(int32_t acc, uint32_t w) {
  __asm__("sxtab16 %0, %0, %1, ror #8" : "+r"(acc) : "r"(w));
  return acc;
}

/* Add the sums of four channels, held as the int16 pairs (c0, c2) and (c1, c3), to out[0..3],
 * or write them for the first chunk. */
static inline void flush4(int32_t* out, int32_t even, int32_t odd, int32_t first) {
  int32_t v0 = (int16_t)even, v1 = (int16_t)odd, v2 = even >> 16, v3 = odd >> 16;
  if (first) {
    out[0] = v0;
    out[1] = v1;
    out[2] = v2;
    out[3] = v3;
  } else {
    out[0] += v0;
    out[1] += v1;
    out[2] += v2;
    out[3] += v3;
  }
}

/* Eight channels over n <= 256 rows from p, `step` bytes apart: two rows per iteration of an
 * assembly loop (4 LDR, 8 SXTAB16, an ADD and the loop's SUBS and BNE: 15 instructions per 16
 * values), the second row's words read at register offsets. */
static inline __attribute__((always_inline)) void sum8(const int8_t* p, int32_t step, int32_t n,
                                                       int32_t* out, int32_t first) {
  int32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
  int32_t pairs = n >> 1;
  if (pairs > 0) {
    int32_t step4 = step + 4, step2 = 2 * step;
    uint32_t w0, w1;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[w0], [%[p]]\n\t"
        "ldr %[w1], [%[p], #4]\n\t"
        "sxtab16 %[a0], %[a0], %[w0]\n\t"
        "sxtab16 %[a1], %[a1], %[w0], ror #8\n\t"
        "sxtab16 %[b0], %[b0], %[w1]\n\t"
        "sxtab16 %[b1], %[b1], %[w1], ror #8\n\t"
        "ldr %[w0], [%[p], %[s]]\n\t"
        "ldr %[w1], [%[p], %[s4]]\n\t"
        "add %[p], %[p], %[s2]\n\t"
        "sxtab16 %[a0], %[a0], %[w0]\n\t"
        "sxtab16 %[a1], %[a1], %[w0], ror #8\n\t"
        "sxtab16 %[b0], %[b0], %[w1]\n\t"
        "sxtab16 %[b1], %[b1], %[w1], ror #8\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [p] "+r"(p),
          [n] "+r"(pairs), [w0] "=&r"(w0), [w1] "=&r"(w1)
        : [s] "r"(step), [s4] "r"(step4), [s2] "r"(step2)
        : "cc", "memory");
  }
  if (n & 1) {
    uint32_t w0 = word_at(p), w1 = word_at(p + 4);
    a0 = sxtab16(a0, w0);
    a1 = sxtab16_ror8(a1, w0);
    b0 = sxtab16(b0, w1);
    b1 = sxtab16_ror8(b1, w1);
  }
  flush4(out, a0, a1, first);
  flush4(out + 4, b0, b1, first);
}

/* Four channels over n <= 256 rows: 2 LDR, 4 SXTAB16, ADD, SUBS, BNE per two rows. */
static inline __attribute__((always_inline)) void sum4(const int8_t* p, int32_t step, int32_t n,
                                                       int32_t* out, int32_t first) {
  int32_t a0 = 0, a1 = 0;
  int32_t pairs = n >> 1;
  if (pairs > 0) {
    int32_t step2 = 2 * step;
    uint32_t w0, w1;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[w0], [%[p]]\n\t"
        "ldr %[w1], [%[p], %[s]]\n\t"
        "add %[p], %[p], %[s2]\n\t"
        "sxtab16 %[a0], %[a0], %[w0]\n\t"
        "sxtab16 %[a1], %[a1], %[w0], ror #8\n\t"
        "sxtab16 %[a0], %[a0], %[w1]\n\t"
        "sxtab16 %[a1], %[a1], %[w1], ror #8\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [p] "+r"(p), [n] "+r"(pairs), [w0] "=&r"(w0),
          [w1] "=&r"(w1)
        : [s] "r"(step), [s2] "r"(step2)
        : "cc", "memory");
  }
  if (n & 1) {
    uint32_t w0 = word_at(p);
    a0 = sxtab16(a0, w0);
    a1 = sxtab16_ror8(a1, w0);
  }
  flush4(out, a0, a1, first);
}

int32_t micro_dsp_sum_rows_q7(void* input, void* out_ptr, int32_t rows, int32_t channels,
                              int32_t row_step) {
  const int8_t* x = input;
  int32_t* out = out_ptr;
  if (rows <= 0) {
    for (int32_t c = 0; c < channels; ++c) out[c] = 0;
    return 0;
  }
  int32_t c = 0;
  for (; c + 8 <= channels; c += 8) {
    for (int32_t k = 0; k < rows; k += MICRO_SUM_CHUNK) {
      int32_t n = rows - k < MICRO_SUM_CHUNK ? rows - k : MICRO_SUM_CHUNK;
      sum8(x + k * row_step + c, row_step, n, out + c, k == 0);
    }
  }
  if (c + 4 <= channels) {
    for (int32_t k = 0; k < rows; k += MICRO_SUM_CHUNK) {
      int32_t n = rows - k < MICRO_SUM_CHUNK ? rows - k : MICRO_SUM_CHUNK;
      sum4(x + k * row_step + c, row_step, n, out + c, k == 0);
    }
    c += 4;
  }
  for (; c < channels; ++c) { /* fewer than four channels left: one at a time */
    const int8_t* p = x + c;
    int32_t s = 0;
    for (int32_t k = 0; k < rows; ++k, p += row_step) s += *p;
    out[c] = s;
  }
  return 0;
}

/* The lane-wise signed maximum of four int8 values in each word: SSUB8 sets GE per lane where
 * a >= b, SEL takes those lanes from a and the others from b. One asm statement, so nothing
 * can come between the flags and their use. */
static inline uint32_t max4(uint32_t a, uint32_t b) {
  uint32_t m;
  __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(m) : "r"(a), "r"(b));
  return m;
}

static inline int8_t max1(int8_t a, int8_t b) { return a > b ? a : b; }

/* Eight channels of a two-tap window: 2 LDRD, 2 SSUB8, 2 SEL and one STRD (7 instructions),
 * every pointer moved on by the loads and the store themselves. */
#define MICRO_MAX2_GROUP                  \
  "ldrd %[a0], %[a1], [%[p0]], #8\n\t"  \
  "ldrd %[b0], %[b1], [%[p1]], #8\n\t"  \
  "ssub8 %[t], %[a0], %[b0]\n\t"        \
  "sel %[a0], %[a0], %[b0]\n\t"         \
  "ssub8 %[t], %[a1], %[b1]\n\t"        \
  "sel %[a1], %[a1], %[b1]\n\t"         \
  "strd %[a0], %[a1], [%[y]], #8\n\t"

#define MICRO_MAX2_OPERANDS                                                                 \
  : [p0] "+r"(p0), [p1] "+r"(p1), [y] "+r"(y), [n] "+r"(positions), [a0] "=&r"(a0),       \
    [a1] "=&r"(a1), [b0] "=&r"(b0), [b1] "=&r"(b1), [t] "=&r"(t)                          \
  : [skip] "r"(skip)                                                                        \
  : "cc", "memory"

/* Positions whose windows start `skip` bytes after the previous one's end, the window's two
 * taps `p1 - p0` apart: `groups` (1 to 4) groups of eight channels unrolled, then 4 instructions
 * per position (the two taps' pointers moved on, SUBS, BNE). */
#define MICRO_MAX2_POSITIONS(groups)                                                     \
  __asm__ volatile("1:\n\t" groups "add %[p0], %[p0], %[skip]\n\t"                    \
                   "add %[p1], %[p1], %[skip]\n\t"                                      \
                   "subs %[n], %[n], #1\n\t"                                            \
                   "bne 1b\n\t" MICRO_MAX2_OPERANDS)

/* y[k * channels + c] = max(p[k * step + c], p[k * step + d + c]) for k < positions and
 * c < channels: a run of two-tap windows, `step` bytes apart, into a contiguous output. Every
 * address word-aligned and `channels` a multiple of 8 (LDRD and STRD). */
static void max2_run(const int8_t* p, int8_t* y, int32_t positions, int32_t channels,
                     int32_t step, int32_t d) {
  const int8_t* p0 = p;
  const int8_t* p1 = p + d;
  int32_t skip = step - channels; /* the loads moved both pointers on by `channels` */
  uint32_t a0, a1, b0, b1, t;
  switch (channels >> 3) {
    case 1: MICRO_MAX2_POSITIONS(MICRO_MAX2_GROUP); return;
    case 2: MICRO_MAX2_POSITIONS(MICRO_MAX2_GROUP MICRO_MAX2_GROUP); return;
    case 3: MICRO_MAX2_POSITIONS(MICRO_MAX2_GROUP MICRO_MAX2_GROUP MICRO_MAX2_GROUP); return;
    case 4:
      MICRO_MAX2_POSITIONS(MICRO_MAX2_GROUP MICRO_MAX2_GROUP MICRO_MAX2_GROUP MICRO_MAX2_GROUP);
      return;
    default:
      break;
  }
  int32_t groups = channels >> 3;
  for (; positions > 0; --positions, p0 += skip, p1 += skip) {
    int32_t n = groups;
    __asm__ volatile("1:\n\t" MICRO_MAX2_GROUP
                     "subs %[n], %[n], #1\n\t"
                     "bne 1b\n\t"
                     : [p0] "+r"(p0), [p1] "+r"(p1), [y] "+r"(y), [n] "+r"(n), [a0] "=&r"(a0),
                       [a1] "=&r"(a1), [b0] "=&r"(b0), [b1] "=&r"(b1), [t] "=&r"(t)
                     :
                     : "cc", "memory");
  }
}

/* The maximum over the taps of one window's channel c (single bytes, for the channels after the
 * last whole word). */
static inline int8_t max_taps1(const int8_t* q, const int32_t* offsets, int32_t taps) {
  int8_t m = q[0];
  for (int32_t t = 1; t < taps; ++t) m = max1(m, q[offsets[t]]);
  return m;
}

/* A run of `positions` windows, `step` bytes apart, into a contiguous output, for windows of
 * 1 to 4 taps at byte offsets `offsets` from the first (0): per word of four channels one
 * LDR per tap (the others at register offsets), SSUB8 + SEL per tap after the first and a STR.
 * Inlined with a constant `taps`. */
static inline __attribute__((always_inline)) int8_t* run_few(const int8_t* p, int8_t* y,
                                                              int32_t positions, int32_t step,
                                                              int32_t channels,
                                                              const int32_t* offsets,
                                                              int32_t taps) {
  int32_t o1 = taps > 1 ? offsets[1] : 0, o2 = taps > 2 ? offsets[2] : 0;
  int32_t o3 = taps > 3 ? offsets[3] : 0;
  int32_t words = channels & ~3;
  for (; positions > 0; --positions, p += step) {
    const int8_t* q = p;
    for (const int8_t* end = p + words; q != end; q += 4, y += 4) {
      uint32_t m = word_at(q);
      if (taps > 1) m = max4(m, word_at(q + o1));
      if (taps > 2) m = max4(m, word_at(q + o2));
      if (taps > 3) m = max4(m, word_at(q + o3));
      put_word(y, m);
    }
    for (int32_t c = words; c < channels; ++c, ++q, ++y) *y = max_taps1(q, offsets, taps);
  }
  return y;
}

/* The geometry of a pooling: window, strides and dilations in elements, the input's extent and
 * padding, and its strides in bytes. */
typedef struct {
  int32_t channels, window_rows, window_cols, stride_rows, stride_cols, dilation_rows,
      dilation_cols, in_rows, in_cols, pad_top, pad_left, row_stride, col_stride;
} pool_geometry;

/* The window at input row r and column q of its first tap (either may lie in the padding): the
 * maximum over its taps inside the input, from -128 (the padding's value), one word of four
 * channels at a time. */
static __attribute__((noinline)) void window_clipped(const int8_t* x, int8_t* y, int32_t r,
                                                     int32_t q, const pool_geometry* g) {
  int32_t dh = g->dilation_rows, dw = g->dilation_cols;
  int32_t a0 = r >= 0 ? 0 : (dh - 1 - r) / dh;
  int32_t a1 = g->in_rows > r ? (g->in_rows - r + dh - 1) / dh : 0;
  int32_t b0 = q >= 0 ? 0 : (dw - 1 - q) / dw;
  int32_t b1 = g->in_cols > q ? (g->in_cols - q + dw - 1) / dw : 0;
  if (a1 > g->window_rows) a1 = g->window_rows;
  if (b1 > g->window_cols) b1 = g->window_cols;
  int32_t c = 0;
  for (; c + 4 <= g->channels; c += 4) {
    uint32_t m = 0x80808080u;
    for (int32_t a = a0; a < a1; ++a) {
      const int8_t* row = x + (r + a * dh) * g->row_stride + c;
      for (int32_t b = b0; b < b1; ++b) m = max4(m, word_at(row + (q + b * dw) * g->col_stride));
    }
    put_word(y + c, m);
  }
  for (; c < g->channels; ++c) {
    int8_t m = -128;
    for (int32_t a = a0; a < a1; ++a) {
      const int8_t* row = x + (r + a * dh) * g->row_stride + c;
      for (int32_t b = b0; b < b1; ++b) m = max1(m, row[(q + b * dw) * g->col_stride]);
    }
    y[c] = m;
  }
}

/* A run of windows of more than 4 taps: for each word of four channels, the taps row by row. */
static int8_t* run_any(const int8_t* p, int8_t* y, int32_t positions, int32_t step,
                       const pool_geometry* g) {
  int32_t tap_row = g->dilation_rows * g->row_stride, tap_col = g->dilation_cols * g->col_stride;
  int32_t words = g->channels & ~3;
  for (; positions > 0; --positions, p += step) {
    const int8_t* q = p;
    for (const int8_t* end = p + words; q != end; q += 4, y += 4) {
      uint32_t m = word_at(q);
      for (int32_t a = 0; a < g->window_rows; ++a) {
        const int8_t* r = q + a * tap_row;
        for (int32_t b = 0; b < g->window_cols; ++b, r += tap_col) m = max4(m, word_at(r));
      }
      put_word(y, m);
    }
    for (int32_t c = words; c < g->channels; ++c, ++q, ++y) {
      int8_t m = q[0];
      for (int32_t a = 0; a < g->window_rows; ++a) {
        for (int32_t b = 0; b < g->window_cols; ++b) m = max1(m, q[a * tap_row + b * tap_col]);
      }
      *y = m;
    }
  }
  return y;
}

/* A run of `positions` windows inside the input, the first at `p`, `step` bytes apart, into a
 * contiguous output; returns the output's end. */
static inline __attribute__((always_inline)) int8_t* run(const int8_t* p, int8_t* y,
                                                          int32_t positions, int32_t step,
                                                          const pool_geometry* g) {
  int32_t taps = g->window_rows * g->window_cols;
  int32_t tap_row = g->dilation_rows * g->row_stride, tap_col = g->dilation_cols * g->col_stride;
  int32_t channels = g->channels;
  if (positions <= 0) return y;
  if (taps == 2) {
    int32_t d = g->window_rows == 2 ? tap_row : tap_col;
    int32_t offsets[2] = {0, d};
    /* LDRD and STRD need word-aligned addresses: every window, its taps and the outputs. */
    if (((uintptr_t)p | (uintptr_t)y | (uint32_t)step | (uint32_t)d) % 4 == 0
        && channels % 8 == 0) {
      max2_run(p, y, positions, channels, step, d);
      return y + positions * channels;
    }
    return run_few(p, y, positions, step, channels, offsets, 2);
  }
  if (taps > 4) return run_any(p, y, positions, step, g);
  int32_t offsets[4] = {0, 0, 0, 0};
  for (int32_t a = 0, t = 0; a < g->window_rows; ++a) {
    for (int32_t b = 0; b < g->window_cols; ++b, ++t) offsets[t] = a * tap_row + b * tap_col;
  }
  if (taps == 1) return run_few(p, y, positions, step, channels, offsets, 1);
  if (taps == 3) return run_few(p, y, positions, step, channels, offsets, 3);
  return run_few(p, y, positions, step, channels, offsets, 4);
}

/* One axis of the output: its positions, its stride and padding, and the positions [lo, hi)
 * whose windows lie inside the input (the first tap at or after the padding, the last before
 * the input's end). */
typedef struct {
  int32_t outputs, stride, pad, lo, hi;
} pool_axis;

static pool_axis axis_of(int32_t outputs, int32_t stride, int32_t span, int32_t size,
                         int32_t pad) {
  int32_t lo = (pad + stride - 1) / stride;
  int32_t n = size + pad - span + 1; /* i * stride < n */
  int32_t hi = n > 0 ? (n + stride - 1) / stride : 0;
  if (hi > outputs) hi = outputs;
  if (lo > hi) lo = hi;
  pool_axis axis = {outputs, stride, pad, lo, hi};
  return axis;
}

/* A pooling with windows in the padding: runs of the windows inside the input, the others
 * clipped one at a time. Runs go along the output's columns, or down its rows when it has one
 * column (1-D pooling): the output stays contiguous either way. */
static __attribute__((noinline)) void pool_padded(const int8_t* x, int8_t* y, int32_t out_rows,
                                                  int32_t out_cols, const pool_geometry* g) {
  pool_axis rows = axis_of(out_rows, g->stride_rows,
                           (g->window_rows - 1) * g->dilation_rows + 1, g->in_rows, g->pad_top);
  pool_axis cols = axis_of(out_cols, g->stride_cols,
                           (g->window_cols - 1) * g->dilation_cols + 1, g->in_cols, g->pad_left);
  int32_t down = out_cols == 1;
  pool_axis inner = down ? rows : cols, outer = down ? cols : rows;
  int32_t inner_bytes = down ? g->row_stride : g->col_stride;
  int32_t outer_bytes = down ? g->col_stride : g->row_stride;
  for (int32_t o = 0; o < outer.outputs; ++o) {
    int32_t start = o * outer.stride - outer.pad; /* the outer coordinate of the first tap */
    int32_t inside = o >= outer.lo && o < outer.hi && inner.hi > inner.lo;
    for (int32_t k = 0; k < inner.outputs; ++k, y += g->channels) {
      int32_t coordinate = k * inner.stride - inner.pad;
      if (inside && k == inner.lo) {
        const int8_t* p = x + start * outer_bytes + coordinate * inner_bytes;
        y = run(p, y, inner.hi - inner.lo, inner.stride * inner_bytes, g) - g->channels;
        k = inner.hi - 1;
      } else {
        window_clipped(x, y, down ? coordinate : start, down ? start : coordinate, g);
      }
    }
  }
}

int32_t micro_dsp_max_pool_q7(void* input, void* out, int32_t out_rows, int32_t out_cols,
                              int32_t channels, int32_t window_rows, int32_t window_cols,
                              int32_t stride_rows, int32_t stride_cols, int32_t dilation_rows,
                              int32_t dilation_cols, int32_t in_rows, int32_t in_cols,
                              int32_t pad_top, int32_t pad_left, int32_t row_stride,
                              int32_t col_stride) {
  const int8_t* x = input;
  int8_t* y = out;
  if (out_rows <= 0 || out_cols <= 0 || channels <= 0) return 0;
  pool_geometry g = {channels, window_rows, window_cols, stride_rows, stride_cols,
                     dilation_rows, dilation_cols, in_rows, in_cols, pad_top, pad_left,
                     row_stride, col_stride};
  int32_t last_row = (out_rows - 1) * stride_rows + (window_rows - 1) * dilation_rows;
  int32_t last_col = (out_cols - 1) * stride_cols + (window_cols - 1) * dilation_cols;
  if (pad_top > 0 || pad_left > 0 || last_row >= in_rows || last_col >= in_cols) {
    pool_padded(x, y, out_rows, out_cols, &g);
  } else if (out_cols == 1) { /* 1-D pooling: one run down the rows */
    run(x, y, out_rows, stride_rows * row_stride, &g);
  } else {
    for (int32_t i = 0; i < out_rows; ++i) {
      y = run(x + i * stride_rows * row_stride, y, out_cols, stride_cols * col_stride, &g);
    }
  }
  return 0;
}
