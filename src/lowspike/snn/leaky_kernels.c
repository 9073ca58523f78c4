/* The (leaky) integrate-and-fire layer of lowspike.snn.leaky over all T steps, one pass over
 * memory each way. Built and loaded by lowspike.snn.native with `-O3 -march=native
 * -ffp-contract=off` and no fast-math: every float operation below is the one PyTorch's eager
 * loop performs, in the same order, so the results are the same bits (a test checks it).
 *
 * Forward, per neuron i:  U[t] = beta U[t-1] + I[t] - theta S[t-1],  S[t] = 1[U[t] > theta]
 * (IF, beta = 1: (U - theta S) + I; LIF: (beta U + I) - theta S; lowspike/snn/leaky.py says why).
 * Backward (surrogate gradient, reset detached): the membranes are recomputed from the current,
 * then  dL/dU[t] = sigma'(U[t] - theta) dL/dS[t] + beta dL/dU[t+1],  dL/dI[t] = dL/dU[t]
 * (summed over t for a static current, one [N] current seen at every step).
 *
 * Neurons are processed in blocks of BLOCK lanes whose T steps run in registers/L1, so a
 * tensor is read and written once. A call handles the neurons [begin, end) of a layer of n; the
 * caller runs disjoint ranges on several threads (ctypes releases the GIL). */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 64

static inline float bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Round to nearest even, NaN kept quiet: c10::BFloat16's conversion. */
static inline uint16_t float_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if (f != f) return 0x7FC0;
    bits += 0x7FFF + ((bits >> 16) & 1);
    return (uint16_t)(bits >> 16);
}

static inline float current_at(const void *current, int bf16, int64_t index) {
    return bf16 ? bf16_to_float(((const uint16_t *)current)[index]) : ((const float *)current)[index];
}

/* Surrogate derivatives at x = U - theta, as lowspike.snn.surrogates computes them in place:
 * 0 atan (alpha 2): ((x * (pi/2 alpha))^2 + 1)^-1 * (alpha/2); 1 fast_sigmoid (slope 25):
 * ((|x| * slope) + 1)^2 ^-1; 2 triangular (threshold 1): +1 where x < 0, else -1. */
static inline float derivative(int surrogate, float x, float scale, float half_alpha) {
    if (surrogate == 0) {
        float y = x * scale;
        y = y * y;
        y = y + 1.0f;
        y = 1.0f / y;
        return y * half_alpha;
    }
    if (surrogate == 1) {
        float y = (x < 0.0f ? -x : x) * scale;
        y = y + 1.0f;
        y = y * y;
        return 1.0f / y;
    }
    return x < 0.0f ? half_alpha : -half_alpha;
}

/* One step of the membrane, as the eager loop of lowspike.snn.leaky computes it: U_0 = I_0;
 * IF: U_t = (U_{t-1} - theta S_{t-1}) + I_t; LIF: U_t = (beta U_{t-1} + I_t) - theta S_{t-1}
 * (the multiplications by 1 skipped, so the rounding is the eager path's). */
static inline float membrane_step(int64_t t, float previous, float drive, float spike, float beta, float threshold) {
    if (t == 0) return drive;
    float reset = threshold == 1.0f ? spike : spike * threshold;
    if (beta == 1.0f) return (previous - reset) + drive;
    return (previous * beta + drive) - reset;
}

/* spikes[t * n + i]; membrane (may be NULL) likewise. */
void lowspike_integrate(const void *current, int bf16, int64_t steps, int64_t n, int64_t begin, int64_t end,
                        int is_static, float beta, float threshold, float *spikes, float *membrane) {
    for (int64_t start = begin; start < end; start += BLOCK) {
        int64_t width = end - start < BLOCK ? end - start : BLOCK;
        float u[BLOCK] = {0}, s[BLOCK] = {0};  /* read only from t = 1 on */
        for (int64_t t = 0; t < steps; t++) {
            int64_t row = is_static ? 0 : t * n;
            for (int64_t j = 0; j < width; j++) {
                float v = membrane_step(t, u[j], current_at(current, bf16, row + start + j), s[j], beta, threshold);
                u[j] = v;
                s[j] = v > threshold ? 1.0f : 0.0f;
                spikes[t * n + start + j] = s[j];
                if (membrane) membrane[t * n + start + j] = v;
            }
        }
    }
}

/* grad: [steps * n] (or [n] for a static current) in the current's dtype. */
void lowspike_backprop(const float *grad_spikes, const void *current, int bf16, int64_t steps, int64_t n,
                       int64_t begin, int64_t end, int is_static, float beta, float threshold, int surrogate,
                       float scale, float half_alpha, void *grad) {
    float *u = malloc(sizeof(float) * (size_t)(steps * BLOCK));
    for (int64_t start = begin; start < end; start += BLOCK) {
        int64_t width = end - start < BLOCK ? end - start : BLOCK;
        float s[BLOCK] = {0}, carry[BLOCK], total[BLOCK];
        for (int64_t t = 0; t < steps; t++) {
            int64_t row = is_static ? 0 : t * n;
            for (int64_t j = 0; j < width; j++) {
                float previous = t == 0 ? 0.0f : u[(t - 1) * BLOCK + j];
                float v = membrane_step(t, previous, current_at(current, bf16, row + start + j), s[j], beta, threshold);
                u[t * BLOCK + j] = v;
                s[j] = v > threshold ? 1.0f : 0.0f;
            }
        }
        for (int64_t t = steps - 1; t >= 0; t--) {
            for (int64_t j = 0; j < width; j++) {
                float step = derivative(surrogate, u[t * BLOCK + j] - threshold, scale, half_alpha)
                             * grad_spikes[t * n + start + j];
                if (t < steps - 1) step = beta == 1.0f ? step + carry[j] : step + carry[j] * beta;
                carry[j] = step;
                if (is_static) {
                    total[j] = t == steps - 1 ? step : total[j] + step;
                } else if (bf16) {
                    ((uint16_t *)grad)[t * n + start + j] = float_to_bf16(step);
                } else {
                    ((float *)grad)[t * n + start + j] = step;
                }
            }
        }
        if (is_static) {
            for (int64_t j = 0; j < width; j++) {
                if (bf16) ((uint16_t *)grad)[start + j] = float_to_bf16(total[j]);
                else ((float *)grad)[start + j] = total[j];
            }
        }
    }
    free(u);
}
