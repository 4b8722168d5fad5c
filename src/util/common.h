/*
 * common.h - the project's status space, allocation wrapper and small helpers.
 *
 * Every function of ours that can fail returns an int status: 0 is success,
 * negative values are either our own codes (ENGRAM_E*) or -errno passed
 * through unchanged. engram_strerror() names both. Nothing here includes any
 * other header of the project.
 *
 * All heap memory goes through eg_malloc()/eg_free() so tests can inject
 * allocation failures (eg_alloc_fail_after()).
 */
#ifndef ENGRAM_COMMON_H
#define ENGRAM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
    ENGRAM_OK = 0,
    ENGRAM_ENOMEM = -20001,  /* allocation failed */
    ENGRAM_EIO = -20002,     /* storage or I/O failure */
    ENGRAM_ECORRUPT = -20003,/* a stored record failed validation */
    ENGRAM_EINVAL = -20004,  /* bad argument or malformed input */
    ENGRAM_ENOTFOUND = -20005,
    ENGRAM_EFULL = -20006,   /* disk or map full and could not grow */
    ENGRAM_EAGAIN = -20007,  /* try again later */
    ENGRAM_EEXIST = -20008,  /* already exists / conflict */
    ENGRAM_ETOOBIG = -20009, /* over a size limit */
    ENGRAM_EVERSION = -20010,/* data format version mismatch */
    ENGRAM_EUNSUPPORTED = -20011,
    ENGRAM_ECANCELED = -20012,
    ENGRAM_ECLOSED = -20013, /* peer went away / object shut down */
    ENGRAM_ETIMEOUT = -20014,
    ENGRAM_EUPSTREAM = -20015,
};

/* A static string naming status (ours or -errno). Thread-safe. */
const char *engram_strerror(int status);

/* Allocation wrapper. Same contracts as malloc & co. eg_strdup(NULL) is NULL. */
void *eg_malloc(size_t n);
void *eg_calloc(size_t n, size_t size);
void *eg_realloc(void *p, size_t n);
void eg_free(void *p);
char *eg_strdup(const char *s);
char *eg_strndup(const char *s, size_t n);
/* Makes room in the array *arr of *cap items of elem bytes for item len
 * (one more after len items): doubles *cap when full (4 at first).
 * ENGRAM_ENOMEM, *arr untouched, when it cannot. */
int eg_grow(void **arr, size_t *cap, size_t len, size_t elem);
/* Tests only: make the n-th allocation from now (and all after it) fail;
 * n < 0 turns injection off. Not thread-safe against concurrent setters. */
void eg_alloc_fail_after(long n);

/* Big-endian integer codecs: keys sort numerically. */
static inline void be64_put(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) { p[i] = (unsigned char)v; v >>= 8; }
}
static inline uint64_t be64_get(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}
static inline void be32_put(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}
static inline uint32_t be32_get(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

#define EG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define EG_MIN(a, b) ((a) < (b) ? (a) : (b))
#define EG_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
