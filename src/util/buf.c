/*
 * buf.c - growable byte buffer (see buf.h). Capacity doubles; one spare byte
 * is always kept for the terminating NUL.
 */
#include "util/buf.h"

#include <stdio.h>
#include <string.h>

#include "util/common.h"

int buf_reserve(buf_t *b, size_t extra)
{
    if (b->err) return b->err;
    if (extra > ((size_t)-1) / 2 - b->len) { b->err = ENGRAM_ENOMEM; return b->err; }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *p = eg_realloc(b->data, cap);
    if (!p) { b->err = ENGRAM_ENOMEM; return b->err; }
    b->data = p;
    b->cap = cap;
    return 0;
}

void buf_append(buf_t *b, const void *p, size_t n)
{
    if (buf_reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_puts(buf_t *b, const char *s) { buf_append(b, s, strlen(s)); }

void buf_putc(buf_t *b, char c) { buf_append(b, &c, 1); }

void buf_vprintf(buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    if (n < 0) { va_end(ap2); return; }
    if ((size_t)n < sizeof tmp) {
        buf_append(b, tmp, (size_t)n);
    } else if (!buf_reserve(b, (size_t)n)) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

void buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

const char *buf_cstr(buf_t *b)
{
    if (!b->data) return "";
    return b->data;
}

void buf_reset(buf_t *b)
{
    b->len = 0;
    b->err = 0;
    if (b->data) b->data[0] = '\0';
}

void buf_free(buf_t *b)
{
    eg_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->err = 0;
}

char *buf_detach(buf_t *b, size_t *len_out)
{
    char *p = b->data;
    if (len_out) *len_out = b->len;
    if (!p) p = eg_strdup("");
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
