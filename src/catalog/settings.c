/*
 * settings.c - index settings recorded in the meta database.
 *
 * The BM25 postings of a data directory only match queries tokenised the
 * same way, so the tokenizer's settings are written into DB_META the first
 * time a server opens the directory and compared at every later open: a
 * build with other defaults refuses the directory with a clear message
 * instead of silently finding nothing.
 */
#include <stdio.h>

#include "catalog/catalog.h"
#include "index/tokenizer.h"
#include "util/common.h"

#define SETTINGS_KEY "index:tokenizer"

static void signature(char *out, size_t n)
{
    tok_options_t o = TOK_OPTIONS_DEFAULT;
    snprintf(out, n, "tokenizer=1;nfkc-casefold-stripmark;stemmer=%s;stopwords=%s",
             o.stemmer && *o.stemmer ? o.stemmer : "none", o.stopwords ? "dropped" : "kept");
}

struct settings_args {
    store_t *st;
    char want[160];
    char found[160];
};

static int settings_cb(MDB_txn *txn, void *arg)
{
    struct settings_args *a = arg;
    MDB_val k = {sizeof SETTINGS_KEY - 1, (void *)SETTINGS_KEY}, v;
    int rc = mdb_get(txn, store_dbi(a->st, DB_META), &k, &v);
    a->found[0] = '\0';
    if (rc == MDB_NOTFOUND) {
        v.mv_size = strlen(a->want);
        v.mv_data = a->want;
        return store_status(mdb_put(txn, store_dbi(a->st, DB_META), &k, &v, 0));
    }
    if (rc) return store_status(rc);
    size_t n = v.mv_size < sizeof a->found - 1 ? v.mv_size : sizeof a->found - 1;
    memcpy(a->found, v.mv_data, n);
    a->found[n] = '\0';
    return strcmp(a->found, a->want) ? ENGRAM_EVERSION : 0;
}

int catalog_check_settings(store_t *st, char *err, size_t errsz)
{
    struct settings_args a = {.st = st};
    signature(a.want, sizeof a.want);
    int rc = store_write(st, settings_cb, &a);
    if (rc == ENGRAM_EVERSION)
        snprintf(err, errsz,
                 "this data directory was indexed with \"%s\" but this engram tokenizes with \"%s\"; "
                 "use the engram version that created it",
                 a.found, a.want);
    else if (rc)
        snprintf(err, errsz, "cannot record index settings: %s", engram_strerror(rc));
    return rc;
}
