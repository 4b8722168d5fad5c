/*
 * test_store.c - the LMDB store: open/close and the meta record, refusal of
 * foreign or locked directories, readers, the group-committing writer, map
 * growth under concurrent readers, next_id, backup, the zstd codec and the
 * key builder.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "util/common.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------- */

typedef struct put_arg {
    store_db_t db;
    uint64_t k;
    const void *val;
    size_t len;
    store_t *st;
} put_arg_t;

static int put_cb(MDB_txn *txn, void *p)
{
    put_arg_t *a = p;
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, a->k);
    MDB_val key = skey_val(&k), val = {a->len, (void *)a->val};
    return store_status(mdb_put(txn, store_dbi(a->st, a->db), &key, &val, 0));
}

static int put_u64(store_t *st, uint64_t k, const void *val, size_t len)
{
    put_arg_t a = {DB_CHUNKS, k, val, len, st};
    return store_write(st, put_cb, &a);
}

/* 0 when key k holds exactly val. */
static int get_u64(store_t *st, uint64_t k, const void *val, size_t len)
{
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    store_key_t key;
    skey_init(&key);
    skey_u64(&key, k);
    MDB_val kv = skey_val(&key), v;
    rc = store_status(mdb_get(txn, store_dbi(st, DB_CHUNKS), &kv, &v));
    if (rc == 0 && (v.mv_size != len || memcmp(v.mv_data, val, len) != 0)) rc = ENGRAM_ECORRUPT;
    store_read_end(st, txn);
    return rc;
}

static store_t *open_default(const char *dir)
{
    store_t *st = NULL;
    int rc = store_open(dir, NULL, &st);
    if (rc) fprintf(stderr, "  store_open: %s (%s)\n", engram_strerror(rc), store_last_error());
    return st;
}

static void subpath(char *out, size_t n, const char *dir, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

/* ---- open, meta, locking ------------------------------------------------- */

TEST(open_reopen_keeps_data)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    char sub[300];
    subpath(sub, sizeof sub, dir, "a/b/data");
    store_t *st = open_default(sub);
    REQUIRE(st);
    struct stat sb;
    CHECK(stat(sub, &sb) == 0 && (sb.st_mode & 0777) == 0700);
    CHECK_EQ_INT(put_u64(st, 42, "hello", 5), 0);
    CHECK_EQ_INT(get_u64(st, 42, "hello", 5), 0);
    CHECK_EQ_INT(get_u64(st, 43, "hello", 5), ENGRAM_ENOTFOUND);
    store_close(st);

    st = open_default(sub);
    REQUIRE(st);
    CHECK_EQ_INT(get_u64(st, 42, "hello", 5), 0);
    /* The meta record is there. */
    MDB_txn *txn;
    REQUIRE(store_read_begin(st, &txn) == 0);
    MDB_val k = {7, "version"}, v;
    CHECK_EQ_INT(mdb_get(txn, store_dbi(st, DB_META), &k, &v), 0);
    CHECK(v.mv_size == 4 && be32_get(v.mv_data) == STORE_FORMAT_VERSION);
    k.mv_size = 5;
    k.mv_data = "magic";
    CHECK_EQ_INT(mdb_get(txn, store_dbi(st, DB_META), &k, &v), 0);
    CHECK(v.mv_size == 8 && memcmp(v.mv_data, "ENGRAM\0\1", 8) == 0);
    store_read_end(st, txn);
    store_close(st);
    test_rmdir(dir);
}

/* Writes the meta database of a fresh environment with raw LMDB. */
static void raw_env_put(const char *dir, const char *db, const char *key, const void *val,
                        size_t len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    REQUIRE(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 4);
    REQUIRE(mdb_env_open(env, dir, 0, 0600) == 0);
    REQUIRE(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    REQUIRE(mdb_dbi_open(txn, db, MDB_CREATE, &dbi) == 0);
    MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)val};
    REQUIRE(mdb_put(txn, dbi, &k, &v, 0) == 0);
    REQUIRE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
}

TEST(version_mismatch_refused)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    unsigned char ver[4];
    be32_put(ver, 7);
    raw_env_put(dir, "meta", "magic", "ENGRAM\0\1", 8);
    raw_env_put(dir, "meta", "version", ver, 4);
    store_t *st = (store_t *)1;
    CHECK_EQ_INT(store_open(dir, NULL, &st), ENGRAM_EVERSION);
    CHECK(st == NULL);
    CHECK(strstr(store_last_error(), "format version 7") != NULL);
    CHECK(strstr(store_last_error(), "reads version 1") != NULL);
    /* Refused, not rewritten: still version 7, and the lock was released. */
    CHECK_EQ_INT(store_open(dir, NULL, &st), ENGRAM_EVERSION);
    test_rmdir(dir);
}

TEST(foreign_env_refused)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    raw_env_put(dir, "other", "x", "y", 1);
    store_t *st = NULL;
    CHECK_EQ_INT(store_open(dir, NULL, &st), ENGRAM_EVERSION);
    CHECK(strstr(store_last_error(), "not engram") != NULL);
    test_rmdir(dir);

    dir = test_tmpdir();
    REQUIRE(dir);
    raw_env_put(dir, "meta", "magic", "SOMEONE!", 8);
    CHECK_EQ_INT(store_open(dir, NULL, &st), ENGRAM_EVERSION);
    CHECK(strstr(store_last_error(), "magic") != NULL);
    test_rmdir(dir);
}

TEST(not_lmdb_refused)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    char path[300];
    subpath(path, sizeof path, dir, "data.mdb");
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    for (int i = 0; i < 20000; i++) fputs("this is not lmdb ", f);
    fclose(f);
    store_t *st = NULL;
    int rc = store_open(dir, NULL, &st);
    CHECK_EQ_INT(rc, ENGRAM_ECORRUPT);
    CHECK(st == NULL);
    CHECK(strstr(store_last_error(), "not an LMDB") != NULL);
    test_rmdir(dir);
}

TEST(second_open_refused)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    store_t *st = open_default(dir);
    REQUIRE(st);
    store_t *st2 = NULL;
    CHECK(store_open(dir, NULL, &st2) != 0);
    CHECK(st2 == NULL);
    CHECK(strstr(store_last_error(), "in use by another engram process") != NULL);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    CHECK(strstr(store_last_error(), pid) != NULL);
    /* The first is still fine. */
    CHECK_EQ_INT(put_u64(st, 1, "x", 1), 0);
    store_close(st);
    st = open_default(dir);
    CHECK(st != NULL);
    store_close(st);
    test_rmdir(dir);
}

TEST(read_only_open)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    store_options_t o = {0};
    o.read_only = 1;
    store_t *ro = NULL;
    CHECK(store_open(dir, &o, &ro) != 0); /* empty: nothing to read */
    store_t *st = open_default(dir);
    REQUIRE(st);
    CHECK_EQ_INT(put_u64(st, 5, "five", 4), 0);
    /* A tool may look while the server runs. */
    CHECK_EQ_INT(store_open(dir, &o, &ro), 0);
    if (ro) {
        CHECK_EQ_INT(get_u64(ro, 5, "five", 4), 0);
        CHECK_EQ_INT(put_u64(ro, 6, "six", 3), ENGRAM_EUNSUPPORTED);
        store_close(ro);
    }
    store_close(st);
    test_rmdir(dir);
}

/* ---- writer -------------------------------------------------------------- */

#define GC_THREADS 8
#define GC_OPS 200

typedef struct gc_arg {
    store_t *st;
    int t;
    int failures;
} gc_arg_t;

static void *gc_thread(void *p)
{
    gc_arg_t *a = p;
    for (int i = 0; i < GC_OPS; i++) {
        uint64_t k = (uint64_t)a->t * 100000 + (uint64_t)i;
        char val[32];
        int n = snprintf(val, sizeof val, "v%d.%d", a->t, i);
        if (put_u64(a->st, k, val, (size_t)n) != 0) a->failures++;
    }
    return NULL;
}

TEST(group_commit)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    store_t *st = open_default(dir);
    REQUIRE(st);
    pthread_t th[GC_THREADS];
    gc_arg_t args[GC_THREADS];
    for (int t = 0; t < GC_THREADS; t++) {
        args[t] = (gc_arg_t){st, t, 0};
        REQUIRE(pthread_create(&th[t], NULL, gc_thread, &args[t]) == 0);
    }
    for (int t = 0; t < GC_THREADS; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < GC_THREADS; t++) CHECK_EQ_INT(args[t].failures, 0);
    int missing = 0;
    for (int t = 0; t < GC_THREADS; t++) {
        for (int i = 0; i < GC_OPS; i++) {
            char val[32];
            int n = snprintf(val, sizeof val, "v%d.%d", t, i);
            if (get_u64(st, (uint64_t)t * 100000 + (uint64_t)i, val, (size_t)n) != 0) missing++;
        }
    }
    CHECK_EQ_INT(missing, 0);
    store_info_t info;
    REQUIRE(store_get_info(st, &info) == 0);
    CHECK_EQ_INT(info.batched_ops, GC_THREADS * GC_OPS);
    CHECK(info.commits < info.batched_ops);
    fprintf(stderr, "  %llu ops in %llu commits\n", (unsigned long long)info.batched_ops,
            (unsigned long long)info.commits);
    CHECK(info.map_bytes >= ((size_t)64 << 20));
    CHECK(info.used_bytes > 0 && info.file_bytes > 0);
    store_close(st);
    test_rmdir(dir);
}

/* ---- next_id ------------------------------------------------------------- */

typedef struct id_arg {
    store_t *st;
    const char *name;
    uint64_t ids[3];
} id_arg_t;

static int id_cb(MDB_txn *txn, void *p)
{
    id_arg_t *a = p;
    for (int i = 0; i < 3; i++) {
        int rc = store_next_id(txn, a->st, a->name, &a->ids[i]);
        if (rc) return rc;
    }
    return 0;
}

TEST(next_id_monotonic_across_reopen)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    store_t *st = open_default(dir);
    REQUIRE(st);
    id_arg_t a = {st, "doc", {0}};
    CHECK_EQ_INT(store_write(st, id_cb, &a), 0);
    CHECK(a.ids[0] == 1 && a.ids[1] == 2 && a.ids[2] == 3);
    id_arg_t b = {st, "ws", {0}};
    CHECK_EQ_INT(store_write(st, id_cb, &b), 0);
    CHECK(b.ids[0] == 1 && b.ids[2] == 3);
    store_close(st);
    st = open_default(dir);
    REQUIRE(st);
    a.st = st;
    CHECK_EQ_INT(store_write(st, id_cb, &a), 0);
    CHECK(a.ids[0] == 4 && a.ids[1] == 5 && a.ids[2] == 6);
    uint64_t x;
    CHECK_EQ_INT(store_next_id(NULL, st, "doc", &x), ENGRAM_EINVAL);
    store_close(st);
    test_rmdir(dir);
}
