/*
 * test_catalog.c - the catalog's own invariants that the HTTP suites cannot
 * reach directly: index settings recorded and enforced, chunk value
 * decoding of corrupt records.
 */
#include "test.h"

#include "catalog/catalog.h"
#include "store/store.h"
#include "util/common.h"

static int put_meta(MDB_txn *txn, void *arg)
{
    store_t *st = arg;
    MDB_val k = {15, "index:tokenizer"}, v = {12, "stemmer=none"};
    return store_status(mdb_put(txn, store_dbi(st, DB_META), &k, &v, 0));
}

TEST(settings_recorded_then_enforced)
{
    char *dir = test_tmpdir();
    REQUIRE(dir != NULL);
    store_t *st = NULL;
    char err[512];
    REQUIRE(store_open(dir, NULL, &st) == 0);
    CHECK_EQ_INT(catalog_check_settings(st, err, sizeof err), 0);
    CHECK_EQ_INT(catalog_check_settings(st, err, sizeof err), 0); /* same build: fine again */
    REQUIRE(store_write(st, put_meta, st) == 0);
    CHECK_EQ_INT(catalog_check_settings(st, err, sizeof err), ENGRAM_EVERSION);
    CHECK(strstr(err, "stemmer=none") != NULL);
    store_close(st);
    test_rmdir(dir);
}

TEST(chunk_decode_rejects_corruption)
{
    unsigned char v[80];
    memset(v, 0, sizeof v);
    v[0] = 1;
    v[20] = 5;  /* end = 5 */
    v[42] = 0;  /* no heading */
    memcpy(v + 43, "\x28\xb5\x2f\xfd", 4);
    chunk_rec_t cr;
    CHECK_EQ_INT(catalog_chunk_decode(v, 47, &cr), 0);
    CHECK_EQ_INT(catalog_chunk_decode(v, 46, &cr), ENGRAM_ECORRUPT);   /* truncated */
    v[0] = 3;
    CHECK_EQ_INT(catalog_chunk_decode(v, 47, &cr), ENGRAM_ECORRUPT);   /* unknown version */
    v[0] = 1;
    v[41] = 0xff;                                                      /* heading past the end */
    CHECK_EQ_INT(catalog_chunk_decode(v, 47, &cr), ENGRAM_ECORRUPT);
    v[41] = 0;
    v[16] = 9;                                                         /* start > end */
    CHECK_EQ_INT(catalog_chunk_decode(v, 47, &cr), ENGRAM_ECORRUPT);
    for (size_t n = 0; n < 47; n++) CHECK_EQ_INT(catalog_chunk_decode(v, n, &cr), ENGRAM_ECORRUPT);
}

TEST(chunk_decode_version_2_has_a_page)
{
    unsigned char v[80];
    memset(v, 0, sizeof v);
    v[0] = 2;
    v[20] = 5;                       /* end = 5 */
    be32_put(v + 41, 7);             /* page 7 */
    v[46] = 3;                       /* heading "Abc" */
    memcpy(v + 47, "Abc", 3);
    memcpy(v + 50, "\x28\xb5\x2f\xfd", 4);
    chunk_rec_t cr;
    REQUIRE(catalog_chunk_decode(v, 54, &cr) == 0);
    CHECK_EQ_INT(cr.page, 7);
    CHECK_EQ_INT(cr.heading_len, 3);
    CHECK(memcmp(cr.heading, "Abc", 3) == 0);
    CHECK_EQ_INT(cr.ztext_len, 4);
    for (size_t n = 0; n < 54; n++) CHECK_EQ_INT(catalog_chunk_decode(v, n, &cr), ENGRAM_ECORRUPT);
}
