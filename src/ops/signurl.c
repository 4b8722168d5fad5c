/*
 * signurl.c - the secret and the MAC of signed file links (see signurl.h).
 */
#include "ops/signurl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/common.h"
#include "util/hash.h"

#define SECRET_KEY "url_secret"

struct secret_args {
    store_t *st;
    unsigned char fresh[SIGNURL_SECRET_LEN]; /* used when none is stored */
    unsigned char out[SIGNURL_SECRET_LEN];
};

static int secret_cb(MDB_txn *txn, void *arg)
{
    struct secret_args *a = arg;
    MDB_val k = {sizeof SECRET_KEY - 1, SECRET_KEY}, v;
    int rc = mdb_get(txn, store_dbi(a->st, DB_META), &k, &v);
    if (rc == 0) {
        if (v.mv_size != SIGNURL_SECRET_LEN) return ENGRAM_ECORRUPT;
        memcpy(a->out, v.mv_data, SIGNURL_SECRET_LEN);
        return 0;
    }
    if (rc != MDB_NOTFOUND) return store_status(rc);
    v.mv_size = SIGNURL_SECRET_LEN;
    v.mv_data = a->fresh;
    rc = mdb_put(txn, store_dbi(a->st, DB_META), &k, &v, 0);
    if (rc) return store_status(rc);
    memcpy(a->out, a->fresh, SIGNURL_SECRET_LEN);
    return 0;
}

int signurl_secret(store_t *st, unsigned char secret[SIGNURL_SECRET_LEN])
{
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    MDB_val k = {sizeof SECRET_KEY - 1, SECRET_KEY}, v;
    int r = mdb_get(txn, store_dbi(st, DB_META), &k, &v);
    if (r == 0 && v.mv_size == SIGNURL_SECRET_LEN) memcpy(secret, v.mv_data, SIGNURL_SECRET_LEN);
    store_read_end(st, txn);
    if (r == 0) return v.mv_size == SIGNURL_SECRET_LEN ? 0 : ENGRAM_ECORRUPT;
    if (r != MDB_NOTFOUND) return store_status(r);
    struct secret_args a = {.st = st};
    hash_random(a.fresh, sizeof a.fresh);
    rc = store_write(st, secret_cb, &a);
    if (!rc) memcpy(secret, a.out, SIGNURL_SECRET_LEN);
    memset(&a, 0, sizeof a);
    return rc;
}

static void mac(const unsigned char secret[SIGNURL_SECRET_LEN], const char *doc_uuid,
                const char *exp_text, unsigned char out[32])
{
    char msg[256];
    int n = snprintf(msg, sizeof msg, "engram-file-v1\n%.64s\n%.24s", doc_uuid, exp_text);
    hmac_sha256(secret, SIGNURL_SECRET_LEN, msg, (size_t)n, out);
}

void signurl_sign(const unsigned char secret[SIGNURL_SECRET_LEN], const char *doc_uuid, int64_t exp,
                  char sig[65])
{
    char e[24];
    snprintf(e, sizeof e, "%lld", (long long)exp);
    unsigned char m[32];
    mac(secret, doc_uuid, e, m);
    hash_hex(m, 32, sig);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int signurl_verify(const unsigned char secret[SIGNURL_SECRET_LEN], const char *doc_uuid,
                   const char *exp_text, const char *sig, int64_t now_s)
{
    if (!doc_uuid || !exp_text || !sig || strlen(doc_uuid) > 64) return -EACCES;
    /* The expiry must be the canonical decimal we signed: no sign, no
     * leading zeros, at most 18 digits. */
    size_t el = strlen(exp_text);
    if (el == 0 || el > 18 || (exp_text[0] == '0' && el > 1)) return -EACCES;
    int64_t exp = 0;
    for (size_t i = 0; i < el; i++) {
        if (exp_text[i] < '0' || exp_text[i] > '9') return -EACCES;
        exp = exp * 10 + (exp_text[i] - '0');
    }
    if (strlen(sig) != 64) return -EACCES;
    unsigned char given[32], want[32];
    for (int i = 0; i < 32; i++) {
        int hi = hexval(sig[2 * i]), lo = hexval(sig[2 * i + 1]);
        if (hi < 0 || lo < 0) return -EACCES;
        given[i] = (unsigned char)(hi << 4 | lo);
    }
    mac(secret, doc_uuid, exp_text, want);
    int ok = hash_equal_ct(given, want, 32);
    if (!ok || exp < now_s) return -EACCES;
    return 0;
}
