/*
 * distance.h - float vector distance kernels with run-time CPU dispatch.
 *
 * Three implementations of the same two kernels (squared Euclidean distance
 * and dot product): portable scalar C, AVX2+FMA and AVX-512F. The SIMD ones
 * are compiled with per-function target attributes, so the project build
 * needs no -march flag and runs on any x86-64 (or non-x86) machine;
 * distance_kernels() picks the best one the CPU supports, once, on first use
 * (thread-safe). Inputs need only float alignment; any length n >= 0 works.
 * Results of the SIMD kernels differ from the scalar ones only by float
 * rounding (different summation order).
 */
#ifndef ENGRAM_DISTANCE_H
#define ENGRAM_DISTANCE_H

#include <stddef.h>

typedef float (*distance_fn)(const float *a, const float *b, size_t n);

typedef struct distance_kernels {
    const char *name;    /* "scalar", "avx2", "avx512" */
    distance_fn l2sq;    /* sum (a[i] - b[i])^2 */
    distance_fn dot;     /* sum a[i] * b[i] */
} distance_kernels_t;

/* The fastest kernels this CPU supports. The environment variable
 * ENGRAM_SIMD=scalar|avx2|avx512 (read once) caps the choice, for
 * benchmarks and tests. Never NULL. */
const distance_kernels_t *distance_kernels(void);

/* The kernels called name, or NULL when unknown or not supported by this
 * CPU (tests compare every supported set with the scalar one). */
const distance_kernels_t *distance_kernels_named(const char *name);

#endif
