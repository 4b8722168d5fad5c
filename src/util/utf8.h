/*
 * utf8.h - strict UTF-8 validation, repair and sniffing.
 *
 * "Strict" means RFC 3629: no overlong forms, no UTF-16 surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF, no stray continuation bytes.
 * All functions are pure (no state) and thread-safe.
 */
#ifndef ENGRAM_UTF8_H
#define ENGRAM_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Decodes one code point at s[0..n). Returns its byte length (1..4) and sets
 * *cp; or, for an ill-formed sequence, a negative count -k (k = 1..3) of bytes
 * making up the maximal ill-formed subpart (the bytes a decoder should replace
 * with one U+FFFD, per the Unicode standard); 0 when n == 0. cp may be NULL. */
int utf8_decode(const char *s, size_t n, uint32_t *cp);

/* Encodes cp (must be <= 0x10FFFF and not a surrogate) into out; returns the
 * byte count 1..4, or 0 for an invalid code point. */
int utf8_encode(uint32_t cp, char out[4]);

/* 1 when s[0..n) is entirely valid UTF-8, else 0. */
int utf8_valid(const char *s, size_t n);

/* Appends s[0..n) to out with each ill-formed subpart replaced by U+FFFD.
 * Returns the number of replacements made. Allocation failure is reported
 * through out->err (see buf.h). */
size_t utf8_sanitize(const char *s, size_t n, buf_t *out);

/* 1 when s[0..n) does not look like text: it contains a NUL byte, or more
 * than 10% of its bytes are either control bytes (0x01..0x1F other than
 * \t \n \r \f, and 0x7F) or bytes of ill-formed UTF-8. Latin-1 prose has a
 * few percent of high bytes and passes; executables, images and archives
 * fail. Empty input is text. */
int utf8_looks_binary(const char *s, size_t n);

/* The largest length <= max (and <= n) that does not cut a code point of s
 * in two. For ill-formed input it never moves back more than 3 bytes. */
size_t utf8_truncate(const char *s, size_t n, size_t max);

#endif
