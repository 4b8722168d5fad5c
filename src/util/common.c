/*
 * common.c - status names and the allocation wrapper.
 *
 * The failure-injection counter is a single atomic: when armed, each
 * allocation decrements it and the one that takes it to zero (and every
 * later one) fails, which lets tests walk a write path through every
 * allocation in turn.
 */
#include "util/common.h"

#include <stdatomic.h>
#include <stdlib.h>

static _Atomic long fail_after = -1;

static int alloc_should_fail(void)
{
    long n = atomic_load_explicit(&fail_after, memory_order_relaxed);
    if (n < 0) return 0;
    if (n == 0) return 1;
    return atomic_fetch_sub(&fail_after, 1) <= 1;
}

void eg_alloc_fail_after(long n) { atomic_store(&fail_after, n); }

void *eg_malloc(size_t n)
{
    if (alloc_should_fail()) return NULL;
    return malloc(n ? n : 1);
}

void *eg_calloc(size_t n, size_t size)
{
    if (alloc_should_fail()) return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *eg_realloc(void *p, size_t n)
{
    if (alloc_should_fail()) return NULL;
    return realloc(p, n ? n : 1);
}

void eg_free(void *p) { free(p); }

char *eg_strndup(const char *s, size_t n)
{
    if (!s) return NULL;
    char *d = eg_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *eg_strdup(const char *s) { return s ? eg_strndup(s, strlen(s)) : NULL; }

int eg_grow(void **arr, size_t *cap, size_t len, size_t elem)
{
    if (len < *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    if (ncap > ((size_t)-1) / elem) return ENGRAM_ENOMEM;
    void *p = eg_realloc(*arr, ncap * elem);
    if (!p) return ENGRAM_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

const char *engram_strerror(int status)
{
    switch (status) {
    case ENGRAM_OK: return "ok";
    case ENGRAM_ENOMEM: return "out of memory";
    case ENGRAM_EIO: return "I/O error";
    case ENGRAM_ECORRUPT: return "stored data is corrupt";
    case ENGRAM_EINVAL: return "invalid argument";
    case ENGRAM_ENOTFOUND: return "not found";
    case ENGRAM_EFULL: return "storage full";
    case ENGRAM_EAGAIN: return "try again";
    case ENGRAM_EEXIST: return "already exists";
    case ENGRAM_ETOOBIG: return "too large";
    case ENGRAM_EVERSION: return "data format version mismatch";
    case ENGRAM_EUNSUPPORTED: return "not supported";
    case ENGRAM_ECANCELED: return "canceled";
    case ENGRAM_ECLOSED: return "connection closed";
    case ENGRAM_ETIMEOUT: return "timed out";
    case ENGRAM_EUPSTREAM: return "upstream service failed";
    default: break;
    }
    if (status < 0 && status > -4096) return strerror(-status);
    return "unknown error";
}
