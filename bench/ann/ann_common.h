/*
 * ann_common.h - the ANN benchmark's data files, shared by the data tool and
 * the drivers (C and C++).
 *
 * A matrix file is u32 rows, u32 cols (host order) then rows * cols floats
 * (base.bin, query.bin); gt.bin is u32 rows, u32 k then rows * k u32 row
 * indexes of the exact nearest neighbours (L2), nearest first. Header-only:
 * the C++ driver includes it too.
 */
#ifndef ANN_COMMON_H
#define ANN_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU seconds of the process (all threads): on a machine shared with other
 * work, wall time measures the neighbours; CPU time measures the code. Both
 * drivers time the same way. ann_wall() is for the restart latency. */
static inline double ann_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline double ann_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reads a matrix of 4-byte cells; NULL (message printed) on failure. */
static inline void *ann_read(const char *dir, const char *name, uint32_t *rows, uint32_t *cols)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    uint32_t h[2];
    void *p = NULL;
    if (!f || fread(h, 4, 2, f) != 2) goto fail;
    p = malloc((size_t)h[0] * h[1] * 4 + 4);
    if (!p || fread(p, 4, (size_t)h[0] * h[1], f) != (size_t)h[0] * h[1]) goto fail;
    fclose(f);
    *rows = h[0];
    *cols = h[1];
    return p;
fail:
    fprintf(stderr, "cannot read %s\n", path);
    if (f) fclose(f);
    free(p);
    return NULL;
}

/* recall@k of got (n ids, row indexes) against the first k of gt row. */
static inline size_t ann_hits(const uint32_t *gt_row, size_t k, const uint64_t *got, size_t n)
{
    size_t h = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < k; j++)
            if (got[i] == gt_row[j]) { h++; break; }
    return h;
}

static const int ann_efs[] = {10, 20, 40, 80, 160};
#define ANN_K 10
#define ANN_M 16
#define ANN_EFC 200

#endif
