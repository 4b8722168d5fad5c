/*
 * buf.h - a growable byte buffer with a sticky error.
 *
 * Appends never fail loudly: on allocation failure the buffer sets err to
 * ENGRAM_ENOMEM and ignores later appends, so a long sequence of appends is
 * checked once at the end (buf.err). data is always NUL-terminated when
 * len > 0 or after buf_cstr(). The buffer owns data; buf_free() releases it,
 * buf_detach() hands it to the caller (free with eg_free).
 */
#ifndef ENGRAM_BUF_H
#define ENGRAM_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data;
    size_t len;
    size_t cap;
    int err;
} buf_t;

#define BUF_INIT {NULL, 0, 0, 0}

int buf_reserve(buf_t *b, size_t extra);
void buf_append(buf_t *b, const void *p, size_t n);
void buf_puts(buf_t *b, const char *s);
void buf_putc(buf_t *b, char c);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(buf_t *b, const char *fmt, va_list ap);
/* NUL-terminated view; "" for an empty buffer. Valid until the next append. */
const char *buf_cstr(buf_t *b);
void buf_reset(buf_t *b); /* len = 0, err = 0, keeps memory */
void buf_free(buf_t *b);
char *buf_detach(buf_t *b, size_t *len_out);

#endif
