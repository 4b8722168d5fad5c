/*
 * lmdb_facts.c - durability facts measured on LMDB alone, on a small
 * filesystem made for the purpose (tests/robust/lmdb_facts.sh mounts an
 * 8 MiB tmpfs and runs each mode in its own process).
 *
 *   lmdb_facts writemap DIR   MDB_WRITEMAP, 64 MiB map, write 256 KiB
 *                             transactions until something gives; the
 *                             parent reports how the child ended (a signal
 *                             - SIGBUS - or an error code).
 *   lmdb_facts plain DIR      no MDB_WRITEMAP (engram's setting): write
 *                             until a commit fails; report the error, then
 *                             in the SAME environment try another write
 *                             (is the environment still usable?), free the
 *                             filler file DIR/../filler and try again; then
 *                             close, reopen and check that every committed
 *                             transaction is there and nothing else.
 *
 * Output: one line of JSON per mode, for the reliability report.
 */
#include <errno.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define VAL (64 * 1024)
#define PER_TXN 4

static unsigned char val[VAL];

static int open_env(const char *dir, unsigned flags, MDB_env **env, MDB_dbi *dbi)
{
    int rc = mdb_env_create(env);
    if (!rc) rc = mdb_env_set_mapsize(*env, (size_t)64 << 20);
    if (!rc) rc = mdb_env_open(*env, dir, flags, 0600);
    if (rc) return rc;
    MDB_txn *txn;
    rc = mdb_txn_begin(*env, NULL, flags & MDB_RDONLY, &txn);
    if (!rc) rc = mdb_dbi_open(txn, NULL, 0, dbi);
    if (!rc) rc = mdb_txn_commit(txn);
    return rc;
}

/* One transaction of PER_TXN values keyed (n, i); 0 or the failing code. */
static int write_txn(MDB_env *env, MDB_dbi dbi, unsigned n, const char **where)
{
    MDB_txn *txn;
    *where = "begin";
    int rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc) return rc;
    for (unsigned i = 0; i < PER_TXN; i++) {
        unsigned k[2] = {n, i};
        memset(val, (int)(n & 0xFF), sizeof val);
        MDB_val kv = {sizeof k, k}, v = {sizeof val, val};
        *where = "put";
        rc = mdb_put(txn, dbi, &kv, &v, 0);
        if (rc) { mdb_txn_abort(txn); return rc; }
    }
    *where = "commit";
    return mdb_txn_commit(txn);
}

static int mode_writemap(const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        MDB_env *env;
        MDB_dbi dbi;
        int rc = open_env(dir, MDB_WRITEMAP, &env, &dbi);
        if (rc) _exit(100);
        const char *where;
        for (unsigned n = 0; n < 100000; n++) {
            rc = write_txn(env, dbi, n, &where);
            if (rc) {
                printf("{\"mode\":\"writemap\",\"child_error\":\"%s\",\"at\":\"%s\",\"txns\":%u}\n",
                       mdb_strerror(rc), where, n);
                fflush(stdout);
                _exit(0);
            }
        }
        _exit(101);
    }
    int status;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status))
        printf("{\"mode\":\"writemap\",\"killed_by_signal\":%d,\"signal_name\":\"%s\"}\n",
               WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (WEXITSTATUS(status) != 0)
        printf("{\"mode\":\"writemap\",\"exit\":%d}\n", WEXITSTATUS(status));
    return 0;
}

static int mode_plain(const char *dir)
{
    MDB_env *env;
    MDB_dbi dbi;
    int rc = open_env(dir, 0, &env, &dbi);
    if (rc) { printf("{\"mode\":\"plain\",\"open\":\"%s\"}\n", mdb_strerror(rc)); return 1; }
    unsigned committed = 0;
    const char *where = "";
    for (;;) {
        rc = write_txn(env, dbi, committed, &where);
        if (rc) break;
        committed++;
    }
    char first_err[128], first_where[16];
    snprintf(first_err, sizeof first_err, "%s", mdb_strerror(rc));
    snprintf(first_where, sizeof first_where, "%s", where);
    int first_rc = rc;
    /* same environment, no restart: does it still work? */
    const char *w2 = "";
    int again = write_txn(env, dbi, committed, &w2);
    /* free some space and try once more, still without a restart */
    char filler[4096];
    snprintf(filler, sizeof filler, "%s/../filler", dir);
    int freed = unlink(filler) == 0;
    const char *w3 = "";
    int after_free = write_txn(env, dbi, committed + (again == 0), &w3);
    unsigned extra = (again == 0) + (after_free == 0);
    mdb_env_close(env);

    /* restart: every committed transaction, nothing else */
    rc = open_env(dir, MDB_RDONLY, &env, &dbi);
    unsigned found = 0, bad = 0;
    if (!rc) {
        MDB_txn *txn;
        MDB_cursor *cur;
        MDB_val k, v;
        mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
        mdb_cursor_open(txn, dbi, &cur);
        for (int r = mdb_cursor_get(cur, &k, &v, MDB_FIRST); r == 0; r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            unsigned kk[2];
            memcpy(kk, k.mv_data, sizeof kk);
            const unsigned char *p = v.mv_data;
            if (v.mv_size != VAL || p[0] != (kk[0] & 0xFF) || p[VAL - 1] != (kk[0] & 0xFF)) bad++;
            found++;
        }
        mdb_cursor_close(cur);
        mdb_txn_abort(txn);
        mdb_env_close(env);
    }
    printf("{\"mode\":\"plain\",\"committed_txns\":%u,\"first_error\":\"%s\",\"errno\":%d,\"at\":\"%s\","
           "\"same_env_retry\":\"%s\",\"same_env_retry_at\":\"%s\",\"freed_space\":%d,"
           "\"same_env_after_free\":\"%s\",\"reopen\":\"%s\",\"values_found\":%u,"
           "\"values_expected\":%u,\"values_damaged\":%u}\n",
           committed, first_err, first_rc > 0 ? first_rc : 0, first_where,
           again ? mdb_strerror(again) : "ok", w2, freed,
           after_free ? mdb_strerror(after_free) : "ok", rc ? mdb_strerror(rc) : "ok", found,
           (committed + extra) * PER_TXN, bad);
    return !(rc == 0 && found == (committed + extra) * PER_TXN && bad == 0);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: lmdb_facts writemap|plain DIR\n");
        return 2;
    }
    mkdir(argv[2], 0700);
    if (!strcmp(argv[1], "writemap")) return mode_writemap(argv[2]);
    if (!strcmp(argv[1], "plain")) return mode_plain(argv[2]);
    return 2;
}
