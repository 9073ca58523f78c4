/* Training-time augmentation of lowspike.data.audio in one pass over a batch of waveforms:
 * Gaussian noise, time warping and time shifting, y[b, i] = x[b]((i - s_b) r_b) by linear
 * interpolation, zero outside the clip, with x = wave + sigma * noise. Built by lowspike.native
 * with -ffp-contract=off and no fast-math: the float operations are warp_then_shift's, in its
 * order, so the result is the same bits (a test checks it). A call handles the clips
 * [begin, end) of the batch. */

#include <math.h>
#include <stdint.h>

void lowspike_augment(const float *waves, const float *noise, float sigma, const float *rates,
                      const int64_t *shifts, int64_t length, int64_t begin, int64_t end, float *out) {
    for (int64_t b = begin; b < end; b++) {
        const float *wave = waves + b * length;
        const float *drawn = noise ? noise + b * length : 0;
        float rate = rates[b], last = (float)(length - 1);
        for (int64_t i = 0; i < length; i++) {
            int64_t source = i - shifts[b];
            float position = (float)source * rate;
            float floor_position = floorf(position);
            int64_t left = (int64_t)floor_position;
            float weight = position - (float)left;
            int64_t l = left < 0 ? 0 : (left > length ? length : left);
            int64_t r = l + 1 > length + 1 ? length + 1 : l + 1;
            float a = 0.0f, c = 0.0f;
            if (l < length) a = drawn ? wave[l] + sigma * drawn[l] : wave[l];
            if (r < length) c = drawn ? wave[r] + sigma * drawn[r] : wave[r];
            float inside = (source >= 0 && source < length && position <= last) ? 1.0f : 0.0f;
            out[b * length + i] = ((1.0f - weight) * a + weight * c) * inside;
        }
    }
}
