/*
 * hash.c - SHA-256, HMAC-SHA-256, constant-time compare and CSPRNG bytes
 * (hash.h) over libsodium.
 *
 * libsodium's crypto_auth_hmacsha256_* accepts keys of any length (longer
 * ones are hashed first, as RFC 2104 says), so HMAC is a plain
 * init/update/final sequence. sodium_init() runs once under pthread_once
 * before first use.
 */
#include "util/hash.h"

#include <pthread.h>
#include <sodium.h>

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;

static void sodium_setup(void)
{
    /* Fails only when no entropy source can be opened at all; randombytes
     * then still goes through getrandom(2) on Linux, so carry on. */
    if (sodium_init() < 0) return;
}

void hash_sha256(const void *p, size_t n, unsigned char out[32])
{
    pthread_once(&sodium_once, sodium_setup); /* picks the fastest implementation */
    crypto_hash_sha256(out, (const unsigned char *)p, (unsigned long long)n);
}

void hash_hex(const unsigned char *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int hash_equal_ct(const void *a, const void *b, size_t n)
{
    return sodium_memcmp(a, b, n) == 0;
}

void hash_random(void *p, size_t n)
{
    pthread_once(&sodium_once, sodium_setup);
    randombytes_buf(p, n);
}

void hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[32])
{
    crypto_auth_hmacsha256_state st;
    pthread_once(&sodium_once, sodium_setup);
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, klen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, (unsigned long long)mlen);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}
