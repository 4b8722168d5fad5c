/*
 * uuid.h - random (version 4) UUIDs.
 *
 * Bytes come from libsodium's CSPRNG (through hash_random, which calls
 * sodium_init() once under pthread_once), so every function here is
 * thread-safe and needs no set-up by the caller.
 */
#ifndef ENGRAM_UUID_H
#define ENGRAM_UUID_H

#define UUID_STR_LEN 36 /* without the NUL */

/* Fills out with a fresh v4 UUID (RFC 4122 variant bits set). */
void uuid_new(unsigned char out[16]);
/* Writes the canonical lowercase 8-4-4-4-12 form plus a NUL. */
void uuid_format(const unsigned char u[16], char out[37]);
/* Parses the canonical 36-character form (hex digits in any case, hyphens at
 * 8, 13, 18, 23, nothing before or after: s must be NUL-terminated right
 * after it). Returns 0, or ENGRAM_EINVAL (out untouched). Any version is
 * accepted. */
int uuid_parse(const char *s, unsigned char out[16]);

#endif
