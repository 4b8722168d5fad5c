/*
 * hash.h - hashing, MACs, constant-time comparison and random bytes, as thin
 * wrappers over libsodium.
 *
 * libsodium is initialised once, lazily (pthread_once), by the functions
 * that need it; all functions are thread-safe and cannot fail.
 */
#ifndef ENGRAM_HASH_H
#define ENGRAM_HASH_H

#include <stddef.h>

#define HASH_SHA256_LEN 32

/* SHA-256 of p[0..n). */
void hash_sha256(const void *p, size_t n, unsigned char out[32]);
/* Lowercase hex of p[0..n) into out, which has room for 2n+1 bytes (NUL
 * terminated). */
void hash_hex(const unsigned char *p, size_t n, char *out);
/* 1 when a[0..n) == b[0..n), else 0, in time independent of the contents. */
int hash_equal_ct(const void *a, const void *b, size_t n);
/* n bytes from the CSPRNG. */
void hash_random(void *p, size_t n);
/* HMAC-SHA-256 of msg under key (any key length). */
void hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[32]);

#endif
