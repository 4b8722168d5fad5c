/*
 * distance.c - scalar, AVX2+FMA and AVX-512 distance kernels and the
 * run-time choice between them.
 *
 * The SIMD bodies carry __attribute__((target(...))) so only these functions
 * are compiled for the wider instruction sets; they are called only after
 * __builtin_cpu_supports() said the CPU has them. Each kernel runs a main
 * loop over whole vector registers with two independent accumulators (to
 * hide FMA latency), then a masked (AVX-512) or scalar (AVX2) tail, so any
 * length works. Loads are unaligned loads: stored vectors are only
 * guaranteed float alignment.
 */
#include "index/distance.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define DISTANCE_X86 1
#include <immintrin.h>
#endif

static float l2sq_scalar(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
        float d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
        s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3;
    }
    for (; i < n; i++) { float d = a[i] - b[i]; s0 += d * d; }
    return (s0 + s1) + (s2 + s3);
}

static float dot_scalar(const float *a, const float *b, size_t n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

#ifdef DISTANCE_X86
__attribute__((target("avx2,fma")))
static inline float hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma")))
static float l2sq_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    if (i + 8 <= n) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        i += 8;
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) { float d = a[i] - b[i]; s += d * d; }
    return s;
}

__attribute__((target("avx2,fma")))
static float dot_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    if (i + 8 <= n) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        i += 8;
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((target("avx512f")))
static float l2sq_avx512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    if (i + 16 <= n) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 d0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d0, d0, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f")))
static float dot_avx512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i + 16 <= n) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        i += 16;
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
#endif

static const distance_kernels_t k_scalar = {"scalar", l2sq_scalar, dot_scalar};
#ifdef DISTANCE_X86
static const distance_kernels_t k_avx2 = {"avx2", l2sq_avx2, dot_avx2};
static const distance_kernels_t k_avx512 = {"avx512", l2sq_avx512, dot_avx512};
#endif

const distance_kernels_t *distance_kernels_named(const char *name)
{
    if (!name) return NULL;
    if (strcmp(name, "scalar") == 0) return &k_scalar;
#ifdef DISTANCE_X86
    __builtin_cpu_init();
    if (strcmp(name, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &k_avx2 : NULL;
    if (strcmp(name, "avx512") == 0)
        return __builtin_cpu_supports("avx512f") ? &k_avx512 : NULL;
#endif
    return NULL;
}

static const distance_kernels_t *chosen = &k_scalar;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    /* Best first; ENGRAM_SIMD caps the list where it names an entry. */
    static const char *const order[] = {"avx512", "avx2", "scalar"};
    const char *cap = getenv("ENGRAM_SIMD");
    size_t start = 0;
    for (size_t i = 0; cap && i < sizeof order / sizeof order[0]; i++)
        if (strcmp(cap, order[i]) == 0) start = i;
    for (size_t i = start; i < sizeof order / sizeof order[0]; i++) {
        const distance_kernels_t *k = distance_kernels_named(order[i]);
        if (k) { chosen = k; return; }
    }
}

const distance_kernels_t *distance_kernels(void)
{
    pthread_once(&chosen_once, choose);
    return chosen;
}
