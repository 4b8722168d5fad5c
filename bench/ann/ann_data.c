/*
 * ann_data.c - prepares an ANN benchmark data set and its exact ground
 * truth, and times the exact scan (the floor every index must beat).
 *
 *   ann_data mnist IDX_FILE OUTDIR       first 9,000 images base, last 1,000 queries
 *   ann_data clustered N DIM OUTDIR      N base + 1,000 query points from a
 *                                        seeded mixture of 1,000 Gaussians
 *
 * Writes OUTDIR/base.bin, query.bin, gt.bin (ann_common.h) and prints one
 * line "exact QPS" for the brute-force scan (one thread, the project's
 * run-time-dispatched L2 kernel, k = 10).
 */
#include <math.h>

#include "ann_common.h"
#include "index/distance.h"

static uint64_t rng = 42;
static uint64_t rnd(void)
{
    uint64_t x = rng += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
static float gauss(void)
{
    double u = ((rnd() >> 11) + 0.5) / 9007199254740992.0, w = ((rnd() >> 11) + 0.5) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * w));
}

static int write_mat(const char *dir, const char *name, const void *p, uint32_t rows, uint32_t cols)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    uint32_t h[2] = {rows, cols};
    int ok = f && fwrite(h, 4, 2, f) == 2 && fwrite(p, 4, (size_t)rows * cols, f) == (size_t)rows * cols;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok) fprintf(stderr, "cannot write %s\n", path);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    uint32_t nb, nq = 1000, dim;
    float *base, *query;
    const char *out;
    if (argc == 4 && strcmp(argv[1], "mnist") == 0) {
        FILE *f = fopen(argv[2], "rb");
        unsigned char h[16];
        if (!f || fread(h, 1, 16, f) != 16) { fprintf(stderr, "cannot read %s\n", argv[2]); return 1; }
        uint32_t n = (uint32_t)h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7];
        dim = ((uint32_t)h[11] | (uint32_t)h[10] << 8) * ((uint32_t)h[15] | (uint32_t)h[14] << 8);
        if (n != 10000 || dim != 784) { fprintf(stderr, "unexpected MNIST shape\n"); return 1; }
        unsigned char *px = malloc((size_t)n * dim);
        if (fread(px, 1, (size_t)n * dim, f) != (size_t)n * dim) { fprintf(stderr, "short MNIST\n"); return 1; }
        fclose(f);
        nb = 9000;
        base = malloc((size_t)n * dim * sizeof *base);
        for (size_t i = 0; i < (size_t)n * dim; i++) base[i] = px[i];
        query = base + (size_t)nb * dim;
        free(px);
        out = argv[3];
    } else if (argc == 5 && strcmp(argv[1], "clustered") == 0) {
        nb = (uint32_t)atol(argv[2]);
        dim = (uint32_t)atol(argv[3]);
        out = argv[4];
        const uint32_t nc = 1000;
        float *cent = malloc((size_t)nc * dim * sizeof *cent);
        for (size_t i = 0; i < (size_t)nc * dim; i++) cent[i] = gauss();
        base = malloc(((size_t)nb + nq) * dim * sizeof *base);
        for (size_t i = 0; i < (size_t)nb + nq; i++) {
            const float *c = cent + (rnd() % nc) * dim;
            for (size_t j = 0; j < dim; j++) base[i * dim + j] = c[j] + 0.35f * gauss();
        }
        query = base + (size_t)nb * dim;
        free(cent);
    } else {
        fprintf(stderr, "usage: ann_data mnist IDX OUTDIR | ann_data clustered N DIM OUTDIR\n");
        return 2;
    }
    const distance_kernels_t *k = distance_kernels();
    uint32_t *gt = malloc((size_t)nq * ANN_K * sizeof *gt);
    double t0 = ann_now();
    for (uint32_t q = 0; q < nq; q++) {
        float bd[ANN_K];
        uint32_t bi[ANN_K];
        size_t n = 0;
        for (uint32_t i = 0; i < nb; i++) {
            float d = k->l2sq(query + (size_t)q * dim, base + (size_t)i * dim, dim);
            if (n == ANN_K && d >= bd[ANN_K - 1]) continue;
            size_t j = n < ANN_K ? n++ : ANN_K - 1;
            while (j > 0 && bd[j - 1] > d) { bd[j] = bd[j - 1]; bi[j] = bi[j - 1]; j--; }
            bd[j] = d;
            bi[j] = i;
        }
        memcpy(gt + (size_t)q * ANN_K, bi, sizeof bi);
    }
    double t = ann_now() - t0;
    if (write_mat(out, "base.bin", base, nb, dim) || write_mat(out, "query.bin", query, nq, dim) ||
        write_mat(out, "gt.bin", gt, nq, ANN_K))
        return 1;
    printf("exact\t-\t1.000\t%.0f\t%s\n", nq / t, k->name);
    return 0;
}
