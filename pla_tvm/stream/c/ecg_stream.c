/*
 * The streaming ECG front end (see ecg_stream.h): the C translation of
 * pla_tvm/stream/reference.py, function by function and bit for bit.
 *
 * Ranges. The reference computes with unbounded integers; every value here has the C type its
 * range needs, for any int16 input (not only adc_bits-wide samples) and any StreamConfig the
 * Python accepts (fs 125..1000, length 8..256, scale_constant bounded by StreamConfig's check).
 * With LW <= 25, HW <= 201, W <= 150 (fs = 1000) the filter values are:
 *   lowpass_sum   |.| <= LW * 32768                  <= 819200      < 2^20
 *   highpass_sum  |.| <= HW * LW * 32768             <= 164659200   < 2^28
 *   band          |.| <= (HW - 1) * LW * 65535       <= 327675000   < 2^29
 *   band slope    |.| <= 2 * that                    <= 655350000   < 2^30 (so 2 * slope < 2^31)
 *   energy        0 .. 32767^2 >> ENERGY_SHIFT
 *   integral      0 .. 32767^2                                      < 2^30 (2^ENERGY_SHIFT >= W)
 *   spki, npki, thr1, thr2: between 0 and the largest integral      < 2^30
 *   learn_sum     <= LEARNING * 2^30 <= 2^41 (int64)
 * tests/stream/test_c_front_end.py checks these bounds for every fs.
 * Times (sample indices, possibly negative before the first sample as in the reference) are
 * int64; ring buffers keep their write position (n mod ring) and wrap with compares, so the
 * per-sample path has no division and reads exactly the entries Python's `%` reads.
 */
#include "ecg_stream.h"

#include <stdbool.h>
#include <string.h>

#define STEPS (ECG_STREAM_LENGTH - 1)
#define HALF_HIGHPASS ((ECG_STREAM_HIGHPASS_WIDTH - 1) / 2)
#define QUANT_SHIFT (ECG_STREAM_SCALE_BITS + ECG_STREAM_GAIN_BITS)

_Static_assert(ECG_STREAM_LENGTH >= 8 && ECG_STREAM_LENGTH <= 256, "length 8..256 (int64 sums)");
_Static_assert(ECG_STREAM_FS >= 125 && ECG_STREAM_FS <= 1000, "fs 125..1000 (int32 filters)");
_Static_assert(ECG_STREAM_MAX_RR < ECG_STREAM_RAW_RING, "a beat fits the raw ring");
_Static_assert(ECG_STREAM_MAX_RR <= 0xFFFF && ECG_STREAM_FS <= 0xFFFF, "RR intervals fit uint16");

/* A peak of the integral: where, how high, and the steepest slope before it. */
typedef struct {
    int64_t t;     /* sample index, >= 0 */
    int64_t r;     /* its R peak (located when confirmed), t - WINDOW - K - DELAY .. t */
    int32_t value; /* integral, 0 .. 2^30 */
    int32_t slope; /* unscaled |band slope|, 0 .. 2^30 */
} peak_t;

typedef struct {
    int64_t n;           /* samples pushed, 0 .. 2^63 */
    int64_t learn_sum;   /* 0 .. 2^41 */
    int64_t peak_time;   /* 0 .. n */
    int64_t last_qrs;    /* 0 .. n */
    int64_t last_r;      /* -1 (none) or 0 .. n */
    int64_t quiet_since; /* LEARNING .. n + WINDOW: where the quiet watch counts from */
    int64_t quiet_sum;   /* 0 .. 2^30 * (SEARCH_BACK_CAP + FS) < 2^43 */
    uint32_t raw_pos;    /* n mod RAW_RING */
    uint32_t lowpass_pos; /* n mod HIGHPASS_WIDTH */
    uint32_t band_pos;   /* n mod BAND_RING */
    uint32_t energy_pos; /* n mod WINDOW */
    int32_t lowpass_sum; /* |.| < 2^20 */
    int32_t highpass_sum; /* |.| < 2^28 */
    int32_t integral;    /* 0 .. 2^30 */
    int32_t previous;    /* 0 .. 2^30 */
    int32_t peak_value;  /* 0 .. 2^30 */
    int32_t learn_max;   /* 0 .. 2^30 */
    int32_t quiet_max;   /* 0 .. 2^30 */
    int32_t spki, npki, thr1, thr2; /* 0 .. 2^30 */
    int32_t last_slope;  /* 0 .. 2^30 */
    int32_t rr_sum;      /* sum of rr[], <= RR_HISTORY * MAX_RR */
    int32_t search_limit; /* min(rr_sum * 166 / (100 * RR_HISTORY), SEARCH_BACK_CAP) */
    uint32_t rr_next;    /* 0 .. RR_HISTORY - 1 */
    uint32_t learning_count; /* 0 .. LEARNING_PEAKS */
    uint32_t candidate_count; /* 0 .. CANDIDATES */
    uint32_t skipped[ECG_STREAM_SKIP_REASONS];
    bool rising;
    bool have_qrs;
    peak_t learning_peaks[ECG_STREAM_LEARNING_PEAKS];
    peak_t candidates[ECG_STREAM_CANDIDATES];
    int32_t lowpass_ring[ECG_STREAM_HIGHPASS_WIDTH]; /* lowpass sums, |.| < 2^20 */
    int32_t band[ECG_STREAM_BAND_RING];              /* band-passed, |.| < 2^29 */
    int32_t energy[ECG_STREAM_WINDOW];               /* 0 .. 32767^2 >> ENERGY_SHIFT */
    uint16_t rr[ECG_STREAM_RR_HISTORY];              /* MIN_RR .. MAX_RR, or FS at first */
    int16_t raw[ECG_STREAM_RAW_RING];                /* raw samples */
    int8_t beat[ECG_STREAM_LENGTH];                  /* the last beat's model input */
} state_t;

_Static_assert(sizeof(state_t) <= ECG_STREAM_RAM_BYTES, "StreamConfig.ram_bytes() is too small");

static state_t s;

/* -- ring buffers ----------------------------------------------------------------------------- */

/* The slot ``back`` entries before ``pos`` in a ring of ``ring`` (back <= ring). */
static inline uint32_t ring_back(uint32_t pos, uint32_t back, uint32_t ring) {
    return pos >= back ? pos - back : pos + ring - back;
}

static inline uint32_t ring_next(uint32_t pos, uint32_t ring) {
    return pos + 1 == ring ? 0 : pos + 1;
}

/* The slot of sample index j <= n, that is Python's j % ring (j may be negative or old). */
static uint32_t ring_slot(int64_t j, uint32_t pos, uint32_t ring) {
    uint64_t back = (uint64_t)(s.n - j);
    if (back >= ring) {
        back = back <= 0xFFFFFFFFu ? (uint32_t)back % ring : back % ring; /* rare: old peaks */
    }
    return ring_back(pos, (uint32_t)back, ring);
}

/* -- beats ------------------------------------------------------------------------------------ */

/* floor(sqrt(v)), exact, for v < 2^64. */
static uint32_t isqrt64(uint64_t v) {
    uint64_t root = 0;
    uint64_t bit = (uint64_t)1 << 62;
    while (bit > v) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (v >= root + bit) {
            v -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)root;
}

/* value / 2^QUANT_SHIFT rounded half away from zero (reference: _round_shift). */
static inline int64_t round_shift(int64_t value) {
    const int64_t half = (int64_t)1 << (QUANT_SHIFT - 1);
    return value >= 0 ? (value + half) >> QUANT_SHIFT : -((-value + half) >> QUANT_SHIFT);
}

/* Walks the resampled beat Y_j = (L-1) x_i + f (x_{i+1} - x_i), i = j (n-1) / (L-1),
 * f = j (n-1) % (L-1), over the count raw samples from ring slot first (count <= MAX_RR). */
typedef struct {
    uint32_t first, i, f, step_i, step_f;
} resampler_t;

static void resampler_start(resampler_t* r, uint32_t first, uint32_t count) {
    r->first = first;
    r->i = 0;
    r->f = 0;
    r->step_i = (count - 1) / STEPS; /* constant divisor */
    r->step_f = (count - 1) % STEPS;
}

/* The next Y_j: |Y_j| <= (L-1) * 32768 < 2^23. */
static int32_t resampler_next(resampler_t* r) {
    uint32_t slot = r->first + r->i;
    if (slot >= ECG_STREAM_RAW_RING) {
        slot -= ECG_STREAM_RAW_RING;
    }
    const int32_t x = s.raw[slot];
    int32_t y = x * STEPS;
    if (r->f != 0) { /* i + 1 < count here */
        const int32_t next = s.raw[ring_next(slot, ECG_STREAM_RAW_RING)];
        y += (int32_t)r->f * (next - x); /* |.| < 255 * 65536 */
    }
    r->i += r->step_i;
    r->f += r->step_f;
    if (r->f >= STEPS) {
        r->f -= STEPS;
        r->i += 1;
    }
    return y;
}

/* The reference's quantize_beat into s.beat; false for a flat beat.
 * S = sum Y: |S| <= L (L-1) 32768 < 2^31; sum Y^2 < L ((L-1) 32768)^2 < 2^54;
 * D = L sum Y^2 - S^2 in 0 .. 2^62; gain = C 2^32 / isqrt(D) < 2^63;
 * |L Y_j - S| <= sqrt((L-1) D), so |(L Y_j - S) gain| < 2^63 - 2^47 by StreamConfig's bound on C. */
static bool quantize_beat(uint32_t first, uint32_t count) {
    resampler_t r;
    int64_t total = 0;
    uint64_t squares = 0;
    resampler_start(&r, first, count);
    for (uint32_t j = 0; j < ECG_STREAM_LENGTH; ++j) {
        const int64_t y = resampler_next(&r);
        total += y;
        squares += (uint64_t)(y * y);
    }
    const int64_t spread = (int64_t)(ECG_STREAM_LENGTH * squares) - total * total;
    if (spread <= 0) {
        return false;
    }
    const int64_t gain =
        (int64_t)(((uint64_t)ECG_STREAM_SCALE_CONSTANT << ECG_STREAM_GAIN_BITS) /
                  isqrt64((uint64_t)spread)); /* the beat's one 64-bit division */
    resampler_start(&r, first, count);
    for (uint32_t j = 0; j < ECG_STREAM_LENGTH; ++j) {
        const int64_t centred = (int64_t)ECG_STREAM_LENGTH * resampler_next(&r) - total;
        int64_t q = round_shift(centred * gain) + ECG_STREAM_ZERO_POINT;
        s.beat[j] = (int8_t)(q > 127 ? 127 : q < -128 ? -128 : q);
    }
    return true;
}

/* The beat from R peak start to the next one, stop (reference: _close_beat). */
static void close_beat(int64_t start, int64_t stop) {
    const int64_t length = stop - start;
    if (length < ECG_STREAM_MIN_RR || length > ECG_STREAM_MAX_RR) {
        s.skipped[ECG_STREAM_SKIP_RR]++;
        return;
    }
    if (start <= s.n - ECG_STREAM_RAW_RING) {
        s.skipped[ECG_STREAM_SKIP_BUFFER]++;
        return;
    }
    const uint32_t first = ring_back(s.raw_pos, (uint32_t)(s.n - start), ECG_STREAM_RAW_RING);
    if (!quantize_beat(first, (uint32_t)length)) {
        s.skipped[ECG_STREAM_SKIP_FLAT]++;
        return;
    }
    ecg_stream_on_beat((uint32_t)start, s.beat);
}

/* -- decisions -------------------------------------------------------------------------------- */

/* Keep the ``cap`` largest peaks in arrival order: a full list drops its first smallest entry
 * unless the new value is not larger. */
static void keep_largest(peak_t* list, uint32_t* count, uint32_t cap, peak_t peak) {
    if (*count == cap) {
        uint32_t smallest = 0;
        for (uint32_t k = 1; k < cap; ++k) {
            if (list[k].value < list[smallest].value) {
                smallest = k;
            }
        }
        if (peak.value <= list[smallest].value) {
            return;
        }
        memmove(&list[smallest], &list[smallest + 1], (cap - 1 - smallest) * sizeof(peak_t));
        *count -= 1;
    }
    list[(*count)++] = peak;
}

static void thresholds(void) {
    s.thr1 = s.npki + ((s.spki - s.npki) >> 2);
    s.thr2 = s.thr1 >> 1;
}

static void set_search_limit(void) {
    const int32_t limit = s.rr_sum * 166 / (100 * ECG_STREAM_RR_HISTORY);
    s.search_limit = limit < ECG_STREAM_SEARCH_BACK_CAP ? limit : ECG_STREAM_SEARCH_BACK_CAP;
}

/* The R peak of an integral peak at t: the largest |band| over the window before it, moved
 * back by the band-pass delay (while the band ring still holds that window). */
static int64_t r_peak(int64_t t) {
    const int64_t start = t - ECG_STREAM_WINDOW - ECG_STREAM_DERIVATIVE_SPAN;
    uint32_t slot = ring_slot(start, s.band_pos, ECG_STREAM_BAND_RING);
    int32_t best = -1;
    int64_t where = start;
    for (int64_t j = start; j <= t; ++j) {
        const int32_t value = s.band[slot] < 0 ? -s.band[slot] : s.band[slot];
        if (value > best) {
            best = value;
            where = j;
        }
        slot = ring_next(slot, ECG_STREAM_BAND_RING);
    }
    return where - ECG_STREAM_BANDPASS_DELAY;
}

/* A QRS whose integral peaked at t with its R peak r: close the previous beat. */
static void accept(int64_t t, int32_t slope, int64_t r) {
    s.have_qrs = true;
    s.last_qrs = t;
    s.last_slope = slope;
    s.quiet_since = (s.n > ECG_STREAM_LEARNING ? s.n : ECG_STREAM_LEARNING) + ECG_STREAM_WINDOW;
    s.quiet_max = 0;
    s.quiet_sum = 0;
    uint32_t kept = 0;
    for (uint32_t k = 0; k < s.candidate_count; ++k) {
        if (s.candidates[k].t > t) {
            s.candidates[kept++] = s.candidates[k];
        }
    }
    s.candidate_count = kept;
    if (r <= s.last_r) {
        s.skipped[ECG_STREAM_SKIP_ORDER]++;
        return;
    }
    ecg_stream_on_peak((uint32_t)r);
    if (s.last_r >= 0) {
        const int64_t rr = r - s.last_r;
        if (rr >= ECG_STREAM_MIN_RR && rr <= ECG_STREAM_MAX_RR) {
            s.rr_sum += (int32_t)rr - s.rr[s.rr_next];
            s.rr[s.rr_next] = (uint16_t)rr;
            s.rr_next = ring_next(s.rr_next, ECG_STREAM_RR_HISTORY);
            set_search_limit();
        }
        close_beat(s.last_r, r);
    }
    s.last_r = r;
}

static void decide(int64_t t, int32_t value, int32_t slope, int64_t r) {
    const int64_t since = t - s.last_qrs;
    if (s.have_qrs && since < ECG_STREAM_REFRACTORY) {
        return;
    }
    if (value > s.thr1) {
        if (s.have_qrs && since < ECG_STREAM_T_WAVE_WINDOW && 2 * slope < s.last_slope) {
            s.npki += (value - s.npki) >> 3;
        } else {
            s.spki += (value - s.spki) >> 3;
            accept(t, slope, r);
        }
    } else {
        s.npki += (value - s.npki) >> 3;
        if (value > s.thr2) {
            const peak_t peak = {t, r, value, slope};
            keep_largest(s.candidates, &s.candidate_count, ECG_STREAM_CANDIDATES, peak);
        }
    }
    thresholds();
}

static void end_learning(void) {
    s.spki = s.learn_max / 3;
    s.npki = (int32_t)((uint64_t)s.learn_sum / ECG_STREAM_LEARNING / 2);
    thresholds();
    for (uint32_t k = 0; k < s.learning_count; ++k) {
        const peak_t* p = &s.learning_peaks[k];
        decide(p->t, p->value, p->slope, p->r);
    }
}

static void search_back(void) {
    if (s.n - s.last_qrs <= s.search_limit) {
        return;
    }
    int32_t best = -1;
    for (uint32_t k = 0; k < s.candidate_count; ++k) {
        const peak_t* c = &s.candidates[k];
        if (c->t - s.last_qrs >= ECG_STREAM_REFRACTORY && c->value > s.thr2
            && (best < 0 || c->value > s.candidates[best].value)) {
            best = (int32_t)k;
        }
    }
    if (best < 0) {
        return;
    }
    const peak_t chosen = s.candidates[best]; /* accept() edits the list */
    s.spki += (chosen.value - s.spki) >> 2;
    accept(chosen.t, chosen.slope, chosen.r);
    thresholds();
}

/* Largest |band slope| (unscaled) over the integration window ending at t (n - t <= W). */
static int32_t slope_at(int64_t t) {
    uint32_t slot = ring_slot(t - ECG_STREAM_WINDOW + 1, s.band_pos, ECG_STREAM_BAND_RING);
    uint32_t earlier = ring_back(slot, ECG_STREAM_DERIVATIVE_SPAN, ECG_STREAM_BAND_RING);
    int32_t best = 0;
    for (uint32_t k = 0; k < ECG_STREAM_WINDOW; ++k) {
        int32_t d = s.band[slot] - s.band[earlier];
        d = d < 0 ? -d : d;
        best = d > best ? d : best;
        slot = ring_next(slot, ECG_STREAM_BAND_RING);
        earlier = ring_next(earlier, ECG_STREAM_BAND_RING);
    }
    return best;
}

static void on_integral_peak(int64_t t, int32_t value) {
    const int32_t slope = slope_at(t);
    const int64_t r = r_peak(t);
    if (s.n < ECG_STREAM_LEARNING) { /* kept for the replay at the learning's end */
        const peak_t peak = {t, r, value, slope};
        keep_largest(s.learning_peaks, &s.learning_count, ECG_STREAM_LEARNING_PEAKS, peak);
        return;
    }
    decide(t, value, slope, r);
}

/* Learn the levels again when no QRS came for the search-back wait plus 0.5 s (at least 2 s),
 * counted from one window after the last one (its integral has decayed). */
static void watch_quiet(void) {
    if (s.n < s.quiet_since) {
        return;
    }
    s.quiet_max = s.integral > s.quiet_max ? s.integral : s.quiet_max;
    s.quiet_sum += s.integral;
    const int64_t count = s.n - s.quiet_since + 1;
    const int64_t wait = s.search_limit + ECG_STREAM_FS / 2;
    if (count >= (wait > ECG_STREAM_LEARNING ? wait : ECG_STREAM_LEARNING)) {
        s.spki = s.quiet_max / 3;
        s.npki = (int32_t)((uint64_t)s.quiet_sum / (uint64_t)count / 2);
        thresholds();
        s.quiet_since = s.n + 1;
        s.quiet_max = 0;
        s.quiet_sum = 0;
    }
}

/* A peak of the integral is confirmed when it falls to half, or a window later. */
static void find_peak(int32_t value) {
    if (s.rising) {
        if (value >= s.peak_value) {
            s.peak_value = value;
            s.peak_time = s.n;
        } else if (2 * value <= s.peak_value || s.n - s.peak_time >= ECG_STREAM_WINDOW) {
            s.rising = false;
            on_integral_peak(s.peak_time, s.peak_value);
        }
    } else if (value > s.previous) {
        s.rising = true;
        s.peak_value = value;
        s.peak_time = s.n;
    }
    s.previous = value;
}

/* -- per sample ------------------------------------------------------------------------------- */

void ecg_stream_init(void) {
    memset(&s, 0, sizeof s);
    s.last_r = -1;
    s.quiet_since = ECG_STREAM_LEARNING;
    for (uint32_t k = 0; k < ECG_STREAM_RR_HISTORY; ++k) {
        s.rr[k] = ECG_STREAM_FS;
    }
    s.rr_sum = ECG_STREAM_RR_HISTORY * ECG_STREAM_FS;
    set_search_limit();
}

/* As if the first value had always been there: the filters start at rest. */
static void prime(int16_t sample) {
    for (uint32_t k = 0; k < ECG_STREAM_RAW_RING; ++k) {
        s.raw[k] = sample;
    }
    s.lowpass_sum = ECG_STREAM_LOWPASS_WIDTH * (int32_t)sample;
    for (uint32_t k = 0; k < ECG_STREAM_HIGHPASS_WIDTH; ++k) {
        s.lowpass_ring[k] = s.lowpass_sum;
    }
    s.highpass_sum = ECG_STREAM_HIGHPASS_WIDTH * s.lowpass_sum;
}

void ecg_stream_push(int16_t sample) {
    if (s.n == 0) {
        prime(sample);
    }
    const int32_t oldest =
        s.raw[ring_back(s.raw_pos, ECG_STREAM_LOWPASS_WIDTH, ECG_STREAM_RAW_RING)];
    s.raw[s.raw_pos] = sample;
    s.lowpass_sum += sample - oldest;
    s.highpass_sum += s.lowpass_sum - s.lowpass_ring[s.lowpass_pos];
    s.lowpass_ring[s.lowpass_pos] = s.lowpass_sum;
    const int32_t centre =
        s.lowpass_ring[ring_back(s.lowpass_pos, HALF_HIGHPASS, ECG_STREAM_HIGHPASS_WIDTH)];
    const int32_t band = ECG_STREAM_HIGHPASS_WIDTH * centre - s.highpass_sum;
    s.band[s.band_pos] = band;
    const int32_t before =
        s.band[ring_back(s.band_pos, ECG_STREAM_DERIVATIVE_SPAN, ECG_STREAM_BAND_RING)];
    int32_t slope = (band - before) >> ECG_STREAM_SLOPE_SHIFT; /* arithmetic shift (GCC) */
    slope = slope > 32767 ? 32767 : slope < -32767 ? -32767 : slope;
    const int32_t energy = (int32_t)((uint32_t)(slope * slope) >> ECG_STREAM_ENERGY_SHIFT);
    s.integral += energy - s.energy[s.energy_pos];
    s.energy[s.energy_pos] = energy;
    find_peak(s.integral);
    if (s.n < ECG_STREAM_LEARNING) {
        s.learn_max = s.integral > s.learn_max ? s.integral : s.learn_max;
        s.learn_sum += s.integral;
        if (s.n == ECG_STREAM_LEARNING - 1) {
            end_learning();
        }
    } else {
        if (s.have_qrs && s.candidate_count != 0) {
            search_back();
        }
        watch_quiet();
    }
    s.n += 1;
    s.raw_pos = ring_next(s.raw_pos, ECG_STREAM_RAW_RING);
    s.lowpass_pos = ring_next(s.lowpass_pos, ECG_STREAM_HIGHPASS_WIDTH);
    s.band_pos = ring_next(s.band_pos, ECG_STREAM_BAND_RING);
    s.energy_pos = ring_next(s.energy_pos, ECG_STREAM_WINDOW);
}

const uint32_t* ecg_stream_skipped(void) {
    return s.skipped;
}
