/*
 * signurl.h - signed, expiring links to a document's original file.
 *
 * A link is /api/v1/files/{document uuid}?exp=E&sig=S where E is the expiry
 * (Unix seconds) and S the lowercase hex HMAC-SHA-256, under the server's
 * secret, of "engram-file-v1\n" + uuid + "\n" + E. The secret is 32 random
 * bytes made once per data directory and kept in DB_META under the key
 * "url_secret" (so links survive restarts and move with a backup; deleting
 * that key - or restoring another directory - revokes every link).
 * Verification recomputes the MAC and compares it in constant time; a
 * malformed, tampered or expired link is refused the same way.
 */
#ifndef ENGRAM_SIGNURL_H
#define ENGRAM_SIGNURL_H

#include <stdint.h>

#include "store/store.h"

#define SIGNURL_SECRET_LEN 32
#define SIGNURL_MAX_EXPIRES 604800

/* Reads the secret, creating it on first use (a store write). */
int signurl_secret(store_t *st, unsigned char secret[SIGNURL_SECRET_LEN]);

/* The signature of (doc_uuid, exp) as 64 hex characters + NUL. */
void signurl_sign(const unsigned char secret[SIGNURL_SECRET_LEN], const char *doc_uuid, int64_t exp,
                  char sig[65]);

/* 0 when sig is the signature of (doc_uuid, exp_text) and exp_text (decimal
 * Unix seconds) is not before now_s; else -EACCES. Never reads beyond the
 * strings given. */
int signurl_verify(const unsigned char secret[SIGNURL_SECRET_LEN], const char *doc_uuid,
                   const char *exp_text, const char *sig, int64_t now_s);

#endif
