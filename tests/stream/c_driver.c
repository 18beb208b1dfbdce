/*
 * Host driver of the C front end for tests/stream/test_c_front_end.py: pushes the int16 samples
 * (native byte order) of the file argv[1] twice, each time after ecg_stream_init (so a state the
 * reset forgets shows), and prints one line per event of the second pass, in order:
 *   P <r_peak>                      ecg_stream_on_peak
 *   B <start> <v_0> ... <v_{L-1}>   ecg_stream_on_beat
 *   S <rr> <flat> <order> <buffer>  the skip counts, after the last sample
 *   N <samples>                     last line
 */
#include <stdio.h>

#include "ecg_stream.h"

static int printing;

void ecg_stream_on_peak(uint32_t r_peak) {
    if (!printing) {
        return;
    }
    printf("P %lu\n", (unsigned long)r_peak);
}

void ecg_stream_on_beat(uint32_t start, const int8_t* beat) {
    if (!printing) {
        return;
    }
    printf("B %lu", (unsigned long)start);
    for (int j = 0; j < ECG_STREAM_LENGTH; ++j) {
        printf(" %d", beat[j]);
    }
    printf("\n");
}

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s samples.bin\n", argv[0]);
        return 2;
    }
    FILE* file = fopen(argv[1], "rb");
    if (file == NULL) {
        perror(argv[1]);
        return 2;
    }
    unsigned long samples = 0;
    for (printing = 0; printing < 2; ++printing) {
        rewind(file);
        ecg_stream_init();
        samples = 0;
        int16_t sample;
        while (fread(&sample, sizeof sample, 1, file) == 1) {
            ecg_stream_push(sample);
            ++samples;
        }
    }
    fclose(file);
    const uint32_t* skipped = ecg_stream_skipped();
    printf("S");
    for (int k = 0; k < ECG_STREAM_SKIP_REASONS; ++k) {
        printf(" %lu", (unsigned long)skipped[k]);
    }
    printf("\nN %lu\n", samples);
    return 0;
}
