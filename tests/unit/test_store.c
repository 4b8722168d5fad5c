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
    unsigned flags = 0;
    CHECK_EQ_INT(mdb_env_get_flags(store_env(st), &flags), 0);
    CHECK((flags & (MDB_WRITEMAP | MDB_NOSYNC | MDB_NOMETASYNC | MDB_MAPASYNC)) == 0);
    CHECK(flags & MDB_NOTLS);
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
    /* A short file too. */
    f = fopen(path, "wb");
    REQUIRE(f);
    fputs("short", f);
    fclose(f);
    CHECK_EQ_INT(store_open(dir, NULL, &st), ENGRAM_ECORRUPT);
    CHECK(st == NULL && store_last_error()[0] != '\0');
    /* A regular file where the directory should be. */
    CHECK_EQ_INT(store_open(path, NULL, &st), -ENOTDIR);
    CHECK(strstr(store_last_error(), "cannot create data directory") != NULL);
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

/* ---- batches: a failing op, re-entrance ---------------------------------- */

typedef struct fail_arg {
    put_arg_t put;
    int fail;      /* put, then return this */
    int status;
    int hold;      /* holds the writer until gate_open */
} fail_arg_t;

static int writer_held, gate_open;

static int put_then_fail_cb(MDB_txn *txn, void *p)
{
    fail_arg_t *a = p;
    if (a->hold) {
        __atomic_store_n(&writer_held, 1, __ATOMIC_SEQ_CST);
        while (!__atomic_load_n(&gate_open, __ATOMIC_SEQ_CST)) usleep(1000);
    }
    int rc = put_cb(txn, &a->put);
    return rc ? rc : a->fail;
}

static void *fail_thread(void *p)
{
    fail_arg_t *a = p;
    a->status = store_write(a->put.st, put_then_fail_cb, a);
    return NULL;
}

TEST(failing_op_isolated)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    store_t *st = open_default(dir);
    REQUIRE(st);
    store_info_t before, after;
    REQUIRE(store_get_info(st, &before) == 0);
    /* A slow op holds the writer while ten ops queue up: they form one batch. */
    pthread_t slow;
    fail_arg_t sa = {{DB_CHUNKS, 999, "s", 1, st}, 0, -1, 1};
    REQUIRE(pthread_create(&slow, NULL, fail_thread, &sa) == 0);
    while (!__atomic_load_n(&writer_held, __ATOMIC_SEQ_CST)) usleep(1000);
    pthread_t th[10];
    fail_arg_t args[10];
    static const int fails[3] = {ENGRAM_EINVAL, MDB_KEYEXIST, -EPERM};
    for (int i = 0; i < 10; i++) {
        args[i] = (fail_arg_t){{DB_CHUNKS, (uint64_t)i, "val", 3, st}, i % 2 ? fails[i % 3] : 0, -1, 0};
        REQUIRE(pthread_create(&th[i], NULL, fail_thread, &args[i]) == 0);
    }
    usleep(300 * 1000); /* let them all queue up */
    __atomic_store_n(&gate_open, 1, __ATOMIC_SEQ_CST);
    pthread_join(slow, NULL);
    for (int i = 0; i < 10; i++) pthread_join(th[i], NULL);
    CHECK_EQ_INT(sa.status, 0);
    for (int i = 0; i < 10; i++) {
        int want = i % 2 ? fails[i % 3] : 0;
        if (want == MDB_KEYEXIST) want = ENGRAM_EEXIST; /* MDB codes come back mapped */
        CHECK_EQ_INT(args[i].status, want);
        CHECK_EQ_INT(get_u64(st, (uint64_t)i, "val", 3), i % 2 ? ENGRAM_ENOTFOUND : 0);
    }
    REQUIRE(store_get_info(st, &after) == 0);
    CHECK_EQ_INT(after.batched_ops - before.batched_ops, 11);
    CHECK_EQ_INT(after.commits - before.commits, 2);
    store_close(st);
    test_rmdir(dir);
}

typedef struct reenter_arg {
    store_t *st;
    int inner;
} reenter_arg_t;

static int noop_cb(MDB_txn *txn, void *p) { (void)txn; (void)p; return 0; }

static int reenter_cb(MDB_txn *txn, void *p)
{
    reenter_arg_t *a = p;
    (void)txn;
    a->inner = store_write(a->st, noop_cb, NULL);
    return 0;
}

TEST(write_refusals)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    store_t *st = open_default(dir);
    REQUIRE(st);
    reenter_arg_t a = {st, 1};
    CHECK_EQ_INT(store_write(st, reenter_cb, &a), 0);
    CHECK_EQ_INT(a.inner, ENGRAM_EINVAL);
    CHECK_EQ_INT(store_write(st, NULL, NULL), ENGRAM_EINVAL);
    CHECK_EQ_INT(store_write(NULL, noop_cb, NULL), ENGRAM_EINVAL);
    /* Holding a read transaction while writing could deadlock a growth. */
    MDB_txn *txn, *txn2;
    REQUIRE(store_read_begin(st, &txn) == 0);
    CHECK_EQ_INT(store_write(st, noop_cb, NULL), ENGRAM_EINVAL);
    REQUIRE(store_read_begin(st, &txn2) == 0); /* nested reads are fine */
    store_read_end(st, txn2);
    CHECK_EQ_INT(store_write(st, noop_cb, NULL), ENGRAM_EINVAL);
    store_read_end(st, txn);
    CHECK_EQ_INT(store_write(st, noop_cb, NULL), 0);
    CHECK_EQ_INT(store_read_begin(st, NULL), ENGRAM_EINVAL);
    store_close(st);
    test_rmdir(dir);
}

/* ---- map growth ---------------------------------------------------------- */

#define GROW_VAL (32 * 1024)
#define GROW_KEYS 640 /* 20 MiB */
#define GROW_WRITERS 4

static void grow_fill(unsigned char *v, uint64_t k)
{
    uint64_t x = k * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t i = 0; i < GROW_VAL; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        v[i] = (unsigned char)x;
    }
}

typedef struct grow_arg {
    store_t *st;
    int t;
    int failures;
    int *stop;
    long reads;
} grow_arg_t;

static void *grow_writer(void *p)
{
    grow_arg_t *a = p;
    unsigned char *v = malloc(GROW_VAL);
    for (uint64_t k = (uint64_t)a->t; k < GROW_KEYS; k += GROW_WRITERS) {
        grow_fill(v, k);
        if (put_u64(a->st, k, v, GROW_VAL) != 0) a->failures++;
    }
    free(v);
    return NULL;
}

/* Reads whatever is there, checking each value found is whole. */
static void *grow_reader(void *p)
{
    grow_arg_t *a = p;
    unsigned char *v = malloc(GROW_VAL);
    uint64_t k = (uint64_t)a->t;
    while (!__atomic_load_n(a->stop, __ATOMIC_SEQ_CST)) {
        k = (k * 7 + 3) % GROW_KEYS;
        MDB_txn *txn;
        if (store_read_begin(a->st, &txn) != 0) { a->failures++; continue; }
        store_key_t key;
        skey_init(&key);
        skey_u64(&key, k);
        MDB_val kv = skey_val(&key), val;
        int rc = mdb_get(txn, store_dbi(a->st, DB_CHUNKS), &kv, &val);
        if (rc == 0) {
            grow_fill(v, k);
            if (val.mv_size != GROW_VAL || memcmp(val.mv_data, v, GROW_VAL) != 0) a->failures++;
        } else if (rc != MDB_NOTFOUND) {
            a->failures++;
        }
        store_read_end(a->st, txn);
        a->reads++;
    }
    free(v);
    return NULL;
}

TEST(map_growth_with_readers)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    store_options_t o = {0};
    o.initial_map_bytes = 1 << 20;
    store_t *st = NULL;
    REQUIRE(store_open(dir, &o, &st) == 0);
    int stop = 0;
    pthread_t w[GROW_WRITERS], r[2];
    grow_arg_t wa[GROW_WRITERS], ra[2];
    for (int i = 0; i < 2; i++) {
        ra[i] = (grow_arg_t){st, i, 0, &stop, 0};
        REQUIRE(pthread_create(&r[i], NULL, grow_reader, &ra[i]) == 0);
    }
    for (int i = 0; i < GROW_WRITERS; i++) {
        wa[i] = (grow_arg_t){st, i, 0, &stop, 0};
        REQUIRE(pthread_create(&w[i], NULL, grow_writer, &wa[i]) == 0);
    }
    for (int i = 0; i < GROW_WRITERS; i++) pthread_join(w[i], NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 2; i++) pthread_join(r[i], NULL);
    for (int i = 0; i < GROW_WRITERS; i++) CHECK_EQ_INT(wa[i].failures, 0);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(ra[i].failures, 0);
        CHECK(ra[i].reads > 0);
    }
    store_info_t info;
    REQUIRE(store_get_info(st, &info) == 0);
    CHECK(info.map_grows > 0);
    CHECK(info.map_bytes >= ((size_t)20 << 20));
    fprintf(stderr, "  map %zu bytes after %llu grows, %llu commits\n", info.map_bytes,
            (unsigned long long)info.map_grows, (unsigned long long)info.commits);
    store_close(st);

    /* Reopen with the small initial size: the map starts at the file size. */
    REQUIRE(store_open(dir, &o, &st) == 0);
    unsigned char *v = malloc(GROW_VAL);
    int missing = 0;
    for (uint64_t k = 0; k < GROW_KEYS; k++) {
        grow_fill(v, k);
        if (get_u64(st, k, v, GROW_VAL) != 0) missing++;
    }
    CHECK_EQ_INT(missing, 0);
    free(v);
    REQUIRE(store_get_info(st, &info) == 0);
    CHECK(info.map_bytes >= info.file_bytes);
    store_close(st);
    test_rmdir(dir);
}

TEST(map_full_at_cap)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    store_options_t o = {0};
    o.initial_map_bytes = 1 << 20;
    o.max_map_bytes = 2 << 20;
    store_t *st = NULL;
    REQUIRE(store_open(dir, &o, &st) == 0);
    unsigned char *v = malloc(GROW_VAL);
    int rc = 0;
    uint64_t k;
    for (k = 0; k < 200 && rc == 0; k++) {
        grow_fill(v, k);
        rc = put_u64(st, k, v, GROW_VAL);
    }
    CHECK_EQ_INT(rc, ENGRAM_EFULL);
    CHECK(k > 20 && k < 200);
    /* What was committed before is intact. */
    grow_fill(v, 0);
    CHECK_EQ_INT(get_u64(st, 0, v, GROW_VAL), 0);
    grow_fill(v, k - 2);
    CHECK_EQ_INT(get_u64(st, k - 2, v, GROW_VAL), 0);
    CHECK_EQ_INT(get_u64(st, k - 1, v, GROW_VAL), ENGRAM_ENOTFOUND);
    store_info_t info;
    REQUIRE(store_get_info(st, &info) == 0);
    CHECK_EQ_INT(info.map_bytes, 2 << 20);
    free(v);
    store_close(st);
    test_rmdir(dir);
}

/* ---- backup -------------------------------------------------------------- */

TEST(backup_opens_with_plain_lmdb)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    char sub[300], bak[300];
    subpath(sub, sizeof sub, dir, "data");
    subpath(bak, sizeof bak, dir, "backup.mdb");
    store_t *st = open_default(sub);
    REQUIRE(st);
    for (uint64_t k = 0; k < 100; k++) CHECK_EQ_INT(put_u64(st, k, "payload", 7), 0);
    CHECK_EQ_INT(store_backup(st, bak), 0);
    CHECK_EQ_INT(store_backup(st, ""), ENGRAM_EINVAL);
    char bad[400];
    snprintf(bad, sizeof bad, "%s/no/such/dir/b.mdb", dir);
    CHECK_EQ_INT(store_backup(st, bad), -ENOENT);
    store_close(st);

    struct stat sb;
    REQUIRE(stat(bak, &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0600);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    REQUIRE(mdb_env_create(&env) == 0);
    mdb_env_set_maxdbs(env, 64);
    REQUIRE(mdb_env_open(env, bak, MDB_NOSUBDIR, 0600) == 0);
    REQUIRE(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0);
    CHECK_EQ_INT(mdb_dbi_open(txn, "chunks", 0, &dbi), 0);
    MDB_stat ms;
    CHECK_EQ_INT(mdb_stat(txn, dbi, &ms), 0);
    CHECK_EQ_INT(ms.ms_entries, 100);
    unsigned char kb[8];
    be64_put(kb, 57);
    MDB_val k = {8, kb}, v;
    CHECK_EQ_INT(mdb_get(txn, dbi, &k, &v), 0);
    CHECK(v.mv_size == 7 && memcmp(v.mv_data, "payload", 7) == 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);

    /* And the backup is itself an engram store once put in a directory. */
    char restored[300], dst[330];
    subpath(restored, sizeof restored, dir, "restored");
    REQUIRE(mkdir(restored, 0700) == 0);
    snprintf(dst, sizeof dst, "%s/data.mdb", restored);
    REQUIRE(rename(bak, dst) == 0);
    st = open_default(restored);
    REQUIRE(st);
    CHECK_EQ_INT(get_u64(st, 57, "payload", 7), 0);
    store_close(st);
    test_rmdir(dir);
}

/* ---- codec --------------------------------------------------------------- */

TEST(compress_round_trip)
{
    buf_t text = BUF_INIT, z = BUF_INIT, back = BUF_INIT;
    for (int i = 0; i < 5000; i++) buf_printf(&text, "line %d of some repetitive text\n", i);
    REQUIRE(text.err == 0);
    buf_puts(&z, "prefix");
    CHECK_EQ_INT(store_compress(text.data, text.len, &z), 0);
    CHECK(z.len > 6 && z.len < text.len / 4);
    buf_puts(&back, "keep:");
    CHECK_EQ_INT(store_decompress(z.data + 6, z.len - 6, text.len, &back), 0);
    CHECK(back.len == text.len + 5 && memcmp(back.data + 5, text.data, text.len) == 0);
    CHECK(memcmp(back.data, "keep:", 5) == 0);
    /* max_out below the size is refused. */
    buf_reset(&back);
    CHECK_EQ_INT(store_decompress(z.data + 6, z.len - 6, text.len - 1, &back), ENGRAM_ECORRUPT);
    /* Empty input round-trips. */
    buf_reset(&z);
    buf_reset(&back);
    CHECK_EQ_INT(store_compress(NULL, 0, &z), 0);
    CHECK(z.len > 0);
    CHECK_EQ_INT(store_decompress(z.data, z.len, 0, &back), 0);
    CHECK_EQ_INT(back.len, 0);
    buf_free(&text);
    buf_free(&z);
    buf_free(&back);
}

TEST(decompress_corrupt_frames)
{
    unsigned long long seed = test_seed();
    buf_t text = BUF_INIT, z = BUF_INIT, out = BUF_INIT;
    for (int i = 0; i < 300; i++) buf_printf(&text, "chunk %d: the quick brown fox %d\n", i, i * 7);
    REQUIRE(store_compress(text.data, text.len, &z) == 0);
    size_t max = text.len;
    /* Every truncation. */
    for (size_t n = 0; n < z.len; n++) {
        buf_reset(&out);
        CHECK_EQ_INT(store_decompress(z.data, n, max, &out), ENGRAM_ECORRUPT);
    }
    /* Trailing garbage and a second frame. */
    unsigned char *copy = malloc(z.len * 2);
    memcpy(copy, z.data, z.len);
    memcpy(copy + z.len, z.data, z.len);
    buf_reset(&out);
    CHECK_EQ_INT(store_decompress(copy, z.len * 2, max * 2, &out), ENGRAM_ECORRUPT);
    copy[z.len] = 'x';
    buf_reset(&out);
    CHECK_EQ_INT(store_decompress(copy, z.len + 1, max * 2, &out), ENGRAM_ECORRUPT);
    /* Flipped bytes: either refused or (if the flip hits something zstd does
     * not check) decoded to the declared size - never a crash. */
    uint64_t x = seed | 1;
    int refused = 0;
    for (int round = 0; round < 2000; round++) {
        memcpy(copy, z.data, z.len);
        int flips = 1 + round % 3;
        for (int f = 0; f < flips; f++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            copy[x % z.len] ^= (unsigned char)(1u << (x >> 40) % 8);
        }
        buf_reset(&out);
        int rc = store_decompress(copy, z.len, max, &out);
        if (rc) {
            CHECK_EQ_INT(rc, ENGRAM_ECORRUPT);
            CHECK_EQ_INT(out.len, 0);
            refused++;
        } else {
            CHECK(out.len <= max);
        }
    }
    CHECK(refused > 1000);
    /* A frame declaring a huge size is refused before any allocation. */
    buf_t big = BUF_INIT;
    unsigned char *zeros = calloc(1, 8 << 20);
    REQUIRE(store_compress(zeros, 8 << 20, &big) == 0);
    buf_reset(&out);
    CHECK_EQ_INT(store_decompress(big.data, big.len, 1 << 20, &out), ENGRAM_ECORRUPT);
    CHECK(out.cap < (1 << 20));
    /* Not zstd at all. */
    buf_reset(&out);
    CHECK_EQ_INT(store_decompress("plain text", 10, max, &out), ENGRAM_ECORRUPT);
    CHECK_EQ_INT(store_decompress(NULL, 5, max, &out), ENGRAM_EINVAL);
    free(zeros);
    free(copy);
    buf_free(&big);
    buf_free(&text);
    buf_free(&z);
    buf_free(&out);
}

/* ---- keys and statuses --------------------------------------------------- */

static int cmp_mem(const store_key_t *a, const store_key_t *b)
{
    size_t n = EG_MIN(a->len, b->len);
    int c = memcmp(a->b, b->b, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

TEST(skey_order_and_overflow)
{
    static const uint64_t vals[] = {0, 1, 255, 256, 65535, 65536, 1ULL << 32, (1ULL << 32) + 1,
                                    1ULL << 56, UINT64_MAX - 1, UINT64_MAX};
    for (size_t i = 0; i + 1 < EG_ARRAY_LEN(vals); i++) {
        store_key_t a, b;
        skey_init(&a);
        skey_init(&b);
        skey_u64(&a, 7);
        skey_u64(&a, vals[i]);
        skey_u64(&b, 7);
        skey_u64(&b, vals[i + 1]);
        CHECK(cmp_mem(&a, &b) < 0);
        /* The workspace prefix dominates. */
        store_key_t c;
        skey_init(&c);
        skey_u64(&c, 8);
        skey_u64(&c, vals[i]);
        CHECK(cmp_mem(&b, &c) < 0);
    }
    store_key_t k;
    skey_init(&k);
    skey_u32(&k, 0x01020304);
    skey_u8(&k, 0xAB);
    skey_bytes(&k, "xy", 2);
    CHECK_EQ_INT(k.len, 7);
    CHECK(memcmp(k.b, "\x01\x02\x03\x04\xAB" "xy", 7) == 0);
    MDB_val v = skey_val(&k);
    CHECK(v.mv_size == 7 && v.mv_data == k.b);
    CHECK_EQ_INT(k.overflow, 0);

    /* Overflow: nothing past the limit is written and the flag sticks. */
    unsigned char big[600];
    memset(big, 'a', sizeof big);
    skey_init(&k);
    skey_bytes(&k, big, 500);
    skey_u64(&k, 1);
    CHECK_EQ_INT(k.len, 508);
    CHECK_EQ_INT(k.overflow, 0);
    skey_u32(&k, 1);
    CHECK_EQ_INT(k.overflow, 1);
    CHECK_EQ_INT(k.len, 508);
    skey_u8(&k, 1);
    CHECK_EQ_INT(k.len, 508);
    skey_init(&k);
    skey_bytes(&k, big, sizeof big);
    CHECK(k.overflow && k.len == 0);
}

TEST(status_mapping)
{
    CHECK_EQ_INT(store_status(MDB_SUCCESS), 0);
    CHECK_EQ_INT(store_status(MDB_NOTFOUND), ENGRAM_ENOTFOUND);
    CHECK_EQ_INT(store_status(MDB_MAP_FULL), ENGRAM_EFULL);
    CHECK_EQ_INT(store_status(MDB_CORRUPTED), ENGRAM_ECORRUPT);
    CHECK_EQ_INT(store_status(MDB_PAGE_NOTFOUND), ENGRAM_ECORRUPT);
    CHECK_EQ_INT(store_status(MDB_INVALID), ENGRAM_ECORRUPT);
    CHECK_EQ_INT(store_status(MDB_VERSION_MISMATCH), ENGRAM_EVERSION);
    CHECK_EQ_INT(store_status(MDB_KEYEXIST), ENGRAM_EEXIST);
    CHECK_EQ_INT(store_status(MDB_READERS_FULL), ENGRAM_EAGAIN);
    CHECK_EQ_INT(store_status(MDB_BAD_TXN), ENGRAM_EIO);
    CHECK_EQ_INT(store_status(MDB_PANIC), ENGRAM_EIO);
    CHECK_EQ_INT(store_status(EIO), -EIO);
    CHECK_EQ_INT(store_status(ENOSPC), -ENOSPC);
    CHECK_EQ_INT(store_status(ENGRAM_ENOMEM), ENGRAM_ENOMEM);
}

/* ---- allocation failure -------------------------------------------------- */

TEST(open_out_of_memory)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    int opened = 0;
    for (long n = 0; n < 20 && !opened; n++) {
        store_t *st = NULL;
        eg_alloc_fail_after(n);
        int rc = store_open(dir, NULL, &st);
        eg_alloc_fail_after(-1);
        if (rc == 0) {
            opened = 1;
            CHECK_EQ_INT(put_u64(st, 1, "x", 1), 0);
            store_close(st);
        } else {
            CHECK_EQ_INT(rc, ENGRAM_ENOMEM);
            CHECK(st == NULL);
        }
    }
    CHECK(opened);
    test_rmdir(dir);
}

/* ---- close drains the queue ---------------------------------------------- */

static void *open_gate_later(void *p)
{
    (void)p;
    usleep(200 * 1000);
    __atomic_store_n(&gate_open, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

TEST(close_drains_queue)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    store_t *st = open_default(dir);
    REQUIRE(st);
    pthread_t hold, th[6], opener;
    fail_arg_t ha = {{DB_CHUNKS, 999, "h", 1, st}, 0, -1, 1};
    REQUIRE(pthread_create(&hold, NULL, fail_thread, &ha) == 0);
    while (!__atomic_load_n(&writer_held, __ATOMIC_SEQ_CST)) usleep(1000);
    fail_arg_t args[6];
    for (int i = 0; i < 6; i++) {
        args[i] = (fail_arg_t){{DB_CHUNKS, (uint64_t)i, "q", 1, st}, 0, -1, 0};
        REQUIRE(pthread_create(&th[i], NULL, fail_thread, &args[i]) == 0);
    }
    usleep(300 * 1000); /* all queued behind the held op */
    REQUIRE(pthread_create(&opener, NULL, open_gate_later, NULL) == 0);
    store_close(st);  /* returns only after the queue was drained */
    pthread_join(opener, NULL);
    pthread_join(hold, NULL);
    for (int i = 0; i < 6; i++) pthread_join(th[i], NULL);
    CHECK_EQ_INT(ha.status, 0);
    for (int i = 0; i < 6; i++) CHECK_EQ_INT(args[i].status, 0);
    st = open_default(dir);
    REQUIRE(st);
    for (int i = 0; i < 6; i++) CHECK_EQ_INT(get_u64(st, (uint64_t)i, "q", 1), 0);
    CHECK_EQ_INT(get_u64(st, 999, "h", 1), 0);
    store_close(st);
    test_rmdir(dir);
}
