/*
 * store.c - the LMDB environment: open/close, the meta record, named
 * databases, read transactions, backup and statistics.
 *
 * Open does, in order: mkdir -p DIR (0700); an exclusive flock on
 * DIR/engram.lock (one engram process per directory; the holder's pid is
 * written into the file for the error message); mdb_env_open with MDB_NOTLS
 * and never MDB_WRITEMAP / MDB_NOSYNC / MDB_NOMETASYNC / MDB_MAPASYNC (with
 * a plain file write a full disk makes the commit fail with EIO or ENOSPC
 * and the database stays at the previous commit; a writable map would
 * SIGBUS); mdb_reader_check to drop reader slots of dead processes; then
 * one write transaction that checks or creates the meta record and opens
 * every named database. A data directory written by something else (no
 * meta record but other data, another magic, another version) is refused
 * with ENGRAM_EVERSION, never rebuilt.
 *
 * The map size starts at max(initial_map_bytes, the file size) and doubles
 * on MDB_MAP_FULL (writer.c). mdb_env_set_mapsize needs that no transaction
 * of this process is open, so every read transaction passes the "reader
 * gate" (a count of open readers under gate_mu): a resize waits until the
 * count is 0 and holds new readers back meanwhile. A thread that already
 * holds a read transaction of the same store is let through (tracked in a
 * small thread-local table) so nested reads cannot deadlock against a
 * waiting resize. The other deadlock - holding a read transaction while
 * calling store_write, whose batch may need a resize - is refused with
 * ENGRAM_EINVAL by store_write.
 *
 * Read-only opens (tools) take no lock file, create nothing and share the
 * directory with a running server; MDB_MAP_RESIZED from a growth in the
 * other process is handled by adopting the new size and retrying.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "util/common.h"

#define STORE_MAGIC "ENGRAM\0\1"
#define STORE_MAGIC_LEN 8
#define STORE_SPARE_DBS 8
#define STORE_MAP_ALIGN ((size_t)1 << 16)

static const char *const db_names[] = {
    [DB_META] = "meta",
    [DB_USERS] = "users",
    [DB_USER_EMAIL] = "user_email",
    [DB_KEYS] = "keys",
    [DB_USER_KEYS] = "user_keys",
    [DB_SESSIONS] = "sessions",
    [DB_WORKSPACES] = "workspaces",
    [DB_MEMBERS] = "members",
    [DB_USER_WS] = "user_ws",
    [DB_UUIDS] = "uuids",
    [DB_COLLECTIONS] = "collections",
    [DB_COLL_NAMES] = "coll_names",
    [DB_DOCUMENTS] = "documents",
    [DB_DOC_HASH] = "doc_hash",
    [DB_FILES] = "files",
    [DB_JOBS] = "jobs",
    [DB_CHUNKS] = "chunks",
    [DB_DOC_CHUNKS] = "doc_chunks",
    [DB_BM25_TERMS] = "bm25_terms",
    [DB_BM25_POSTINGS] = "bm25_postings",
    [DB_BM25_DOCLEN] = "bm25_doclen",
    [DB_BM25_STATS] = "bm25_stats",
    [DB_HNSW_META] = "hnsw_meta",
    [DB_HNSW_NODES] = "hnsw_nodes",
    [DB_EMBED_CACHE] = "embed_cache",
    [DB_CHAT_SESSIONS] = "chat_sessions",
    [DB_CHAT_MESSAGES] = "chat_messages",
    [DB_MEMORIES] = "memories",
    [DB_GRAPH_ENTITIES] = "graph_entities",
    [DB_GRAPH_NAMES] = "graph_names",
    [DB_GRAPH_EDGES] = "graph_edges",
    [DB_GRAPH_MENTIONS] = "graph_mentions",
    [DB_QUOTAS] = "quotas",
    [DB_IDEMPOTENCY] = "idempotency",
};
_Static_assert(EG_ARRAY_LEN(db_names) == DB__COUNT, "every store_db_t needs a name");

/* ---- last error ---------------------------------------------------------- */

static _Thread_local char last_error[512];

const char *store_last_error(void) { return last_error; }

static int set_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int set_error(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

/* ---- reader gate --------------------------------------------------------- */

/* Read transactions the calling thread holds, per store. A thread touching
 * more stores at once than slots simply is not tracked for the extra ones
 * (only the nested-read shortcut is lost). */
#define READ_SLOTS 8
static _Thread_local struct { const store_t *st; int depth; } thread_reads[READ_SLOTS];

int store_thread_reads(const store_t *st)
{
    for (int i = 0; i < READ_SLOTS; i++)
        if (thread_reads[i].st == st) return thread_reads[i].depth;
    return 0;
}

static void thread_reads_add(const store_t *st, int delta)
{
    int free_slot = -1;
    for (int i = 0; i < READ_SLOTS; i++) {
        if (thread_reads[i].st == st) {
            thread_reads[i].depth += delta;
            if (thread_reads[i].depth <= 0) { thread_reads[i].st = NULL; thread_reads[i].depth = 0; }
            return;
        }
        if (!thread_reads[i].st && free_slot < 0) free_slot = i;
    }
    if (delta > 0 && free_slot >= 0) {
        thread_reads[free_slot].st = st;
        thread_reads[free_slot].depth = delta;
    }
}

void store_gate_enter(store_t *st)
{
    int nested = store_thread_reads(st) > 0;
    pthread_mutex_lock(&st->gate_mu);
    while (st->growing && !nested) pthread_cond_wait(&st->gate_cv, &st->gate_mu);
    st->readers++;
    pthread_mutex_unlock(&st->gate_mu);
    thread_reads_add(st, 1);
}

void store_gate_leave(store_t *st)
{
    thread_reads_add(st, -1);
    pthread_mutex_lock(&st->gate_mu);
    if (--st->readers == 0 && st->growing) pthread_cond_broadcast(&st->gate_cv);
    pthread_mutex_unlock(&st->gate_mu);
}

int store_gate_resize(store_t *st, size_t size)
{
    pthread_mutex_lock(&st->gate_mu);
    /* Only one resizer at a time: wait for a concurrent one to finish. */
    while (st->growing) pthread_cond_wait(&st->gate_cv, &st->gate_mu);
    st->growing = 1;
    while (st->readers > 0) pthread_cond_wait(&st->gate_cv, &st->gate_mu);
    int rc = mdb_env_set_mapsize(st->env, size);
    st->growing = 0;
    pthread_cond_broadcast(&st->gate_cv);
    pthread_mutex_unlock(&st->gate_mu);
    return store_status(rc);
}

/* ---- open / close -------------------------------------------------------- */

static int mkdir_p(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path) return ENGRAM_EINVAL;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) return -errno;
        path[i] = c;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0) return -errno;
    if (!S_ISDIR(sb.st_mode)) return -ENOTDIR;
    return 0;
}

static int take_dir_lock(store_t *st)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/engram.lock", st->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        return set_error(-e, "cannot open %s: %s", path, strerror(e));
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        if (n > 0) pid[n] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return set_error(ENGRAM_EAGAIN,
                             "data directory %s is in use by another engram process (pid %s)",
                             st->dir, pid[0] ? pid : "unknown");
        return set_error(-e, "cannot lock %s: %s", path, strerror(e));
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* Only the message of a later refusal would suffer. */
    }
    st->lock_fd = fd;
    return 0;
}

static size_t round_up(size_t v, size_t align) { return (v + align - 1) / align * align; }

static size_t initial_map_size(const store_t *st, size_t initial)
{
    char path[4200];
    struct stat sb;
    size_t map = round_up(initial, STORE_MAP_ALIGN);
    snprintf(path, sizeof path, "%s/data.mdb", st->dir);
    if (stat(path, &sb) != 0 || sb.st_size <= 0) return map;
    size_t fsize = (size_t)sb.st_size;
    while (map < fsize && map <= st->max_map / 2) map *= 2;
    if (map < fsize) map = round_up(fsize, STORE_MAP_ALIGN);
    return map;
}

/* An environment with no meta database: new if its main database is empty,
 * else someone else's. */
static int check_foreign(store_t *st, MDB_txn *txn)
{
    MDB_dbi main_dbi;
    MDB_stat ms;
    int rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (rc == 0) rc = mdb_stat(txn, main_dbi, &ms);
    if (rc) return set_error(store_status(rc), "cannot read %s/data.mdb: %s", st->dir, mdb_strerror(rc));
    if (ms.ms_entries > 0)
        return set_error(ENGRAM_EVERSION,
                         "data directory %s holds an LMDB environment that is not engram's "
                         "(no meta record); refusing to touch it", st->dir);
    return 0;
}

static int check_meta(store_t *st, MDB_txn *txn, MDB_dbi meta)
{
    MDB_val k = {5, "magic"}, v;
    int rc = mdb_get(txn, meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return set_error(ENGRAM_EVERSION,
                         "data directory %s has a meta database without an engram magic; "
                         "refusing to touch it", st->dir);
    if (rc) return set_error(store_status(rc), "cannot read the meta record: %s", mdb_strerror(rc));
    if (v.mv_size != STORE_MAGIC_LEN || memcmp(v.mv_data, STORE_MAGIC, STORE_MAGIC_LEN) != 0)
        return set_error(ENGRAM_EVERSION,
                         "data directory %s is not an engram store (wrong magic)", st->dir);
    k.mv_size = 7;
    k.mv_data = "version";
    rc = mdb_get(txn, meta, &k, &v);
    if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != 4))
        return set_error(ENGRAM_ECORRUPT, "data directory %s: meta record has no valid version",
                         st->dir);
    if (rc) return set_error(store_status(rc), "cannot read the meta record: %s", mdb_strerror(rc));
    uint32_t ver = be32_get(v.mv_data);
    if (ver != STORE_FORMAT_VERSION)
        return set_error(ENGRAM_EVERSION,
                         "data directory %s holds format version %u; this engram reads version %d",
                         st->dir, (unsigned)ver, STORE_FORMAT_VERSION);
    return 0;
}

static int write_meta(store_t *st, MDB_txn *txn, MDB_dbi meta)
{
    unsigned char ver[4];
    be32_put(ver, STORE_FORMAT_VERSION);
    MDB_val k = {5, "magic"}, v = {STORE_MAGIC_LEN, STORE_MAGIC};
    int rc = mdb_put(txn, meta, &k, &v, 0);
    if (rc == 0) {
        k.mv_size = 7;
        k.mv_data = "version";
        v.mv_size = 4;
        v.mv_data = ver;
        rc = mdb_put(txn, meta, &k, &v, 0);
    }
    if (rc) return set_error(store_status(rc), "cannot write the meta record in %s: %s", st->dir,
                             mdb_strerror(rc));
    return 0;
}

/* Checks or creates the meta record and opens every named database, in one
 * transaction (read-only for read-only opens). */
static int open_databases(store_t *st)
{
    MDB_txn *txn = NULL;
    unsigned create = st->read_only ? 0 : MDB_CREATE;
    int rc = mdb_txn_begin(st->env, NULL, st->read_only ? MDB_RDONLY : 0, &txn);
    if (rc) return set_error(store_status(rc), "cannot begin a transaction in %s: %s", st->dir,
                             mdb_strerror(rc));
    int status;
    rc = mdb_dbi_open(txn, db_names[DB_META], 0, &st->dbi[DB_META]);
    if (rc == MDB_NOTFOUND) {
        if ((status = check_foreign(st, txn))) goto fail;
        if (st->read_only) {
            status = set_error(ENGRAM_ENOTFOUND, "%s is not an engram data directory (empty)",
                               st->dir);
            goto fail;
        }
        rc = mdb_dbi_open(txn, db_names[DB_META], MDB_CREATE, &st->dbi[DB_META]);
        if (rc == 0 && (status = write_meta(st, txn, st->dbi[DB_META]))) goto fail;
    } else if (rc == MDB_INCOMPATIBLE) {
        status = set_error(ENGRAM_EVERSION, "data directory %s is not an engram store "
                           "(\"meta\" is not a database)", st->dir);
        goto fail;
    } else if (rc == 0) {
        if ((status = check_meta(st, txn, st->dbi[DB_META]))) goto fail;
    }
    if (rc) {
        status = set_error(store_status(rc), "cannot open the meta database: %s", mdb_strerror(rc));
        goto fail;
    }
    for (int i = 1; i < DB__COUNT; i++) {
        rc = mdb_dbi_open(txn, db_names[i], create, &st->dbi[i]);
        if (rc) {
            status = set_error(store_status(rc), "cannot open database \"%s\" in %s: %s",
                               db_names[i], st->dir, mdb_strerror(rc));
            goto fail;
        }
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc) {
        status = set_error(store_status(rc), "cannot commit the initial transaction in %s: %s",
                           st->dir, mdb_strerror(rc));
        goto fail;
    }
    return 0;
fail:
    if (txn) mdb_txn_abort(txn);
    return status;
}

static int open_env(store_t *st, const store_options_t *o)
{
    int rc = mdb_env_create(&st->env);
    if (rc) return set_error(store_status(rc), "mdb_env_create: %s", mdb_strerror(rc));
    rc = mdb_env_set_maxdbs(st->env, DB__COUNT + STORE_SPARE_DBS);
    if (rc == 0) rc = mdb_env_set_maxreaders(st->env, (unsigned)o->max_readers);
    if (rc == 0) rc = mdb_env_set_mapsize(st->env, initial_map_size(st, o->initial_map_bytes));
    if (rc) return set_error(store_status(rc), "cannot configure the environment: %s",
                             mdb_strerror(rc));
    /* Deliberately not MDB_WRITEMAP, MDB_NOSYNC, MDB_NOMETASYNC, MDB_MAPASYNC. */
    unsigned flags = MDB_NOTLS | (st->read_only ? MDB_RDONLY : 0);
    rc = mdb_env_open(st->env, st->dir, flags, 0600);
    if (rc == MDB_INVALID)
        return set_error(ENGRAM_ECORRUPT, "%s/data.mdb is not an LMDB environment (damaged, or "
                         "another kind of file)", st->dir);
    if (rc == MDB_VERSION_MISMATCH)
        return set_error(ENGRAM_EVERSION, "%s/data.mdb was written by an incompatible LMDB "
                         "version", st->dir);
    if (rc) return set_error(store_status(rc), "cannot open the environment in %s: %s", st->dir,
                             mdb_strerror(rc));
    int dead = 0;
    mdb_reader_check(st->env, &dead);
    return 0;
}

int store_open(const char *dir, const store_options_t *opt, store_t **out)
{
    last_error[0] = '\0';
    if (!out) return ENGRAM_EINVAL;
    *out = NULL;
    if (!dir || !dir[0] || strlen(dir) > 4000)
        return set_error(ENGRAM_EINVAL, "store_open: invalid data directory");

    store_options_t o = {0};
    if (opt) o = *opt;
    if (!o.initial_map_bytes) o.initial_map_bytes = (size_t)64 << 20;
    if (!o.max_map_bytes) o.max_map_bytes = sizeof(size_t) > 4 ? (size_t)1 << 40 : (size_t)1 << 31;
    if (o.max_readers <= 0) o.max_readers = 512;
    if (o.initial_map_bytes > o.max_map_bytes)
        return set_error(ENGRAM_EINVAL, "store_open: initial map size above the maximum");

    store_t *st = eg_calloc(1, sizeof *st);
    if (!st) return set_error(ENGRAM_ENOMEM, "out of memory");
    st->lock_fd = -1;
    st->read_only = o.read_only != 0;
    st->max_map = o.max_map_bytes;
    pthread_mutex_init(&st->gate_mu, NULL);
    pthread_cond_init(&st->gate_cv, NULL);
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->work_cv, NULL);
    pthread_cond_init(&st->done_cv, NULL);

    int status;
    st->dir = eg_strdup(dir);
    if (!st->dir) { status = set_error(ENGRAM_ENOMEM, "out of memory"); goto fail; }
    if (!st->read_only) {
        if ((status = mkdir_p(dir))) {
            set_error(status, "cannot create data directory %s: %s", dir, engram_strerror(status));
            goto fail;
        }
        if ((status = take_dir_lock(st))) goto fail;
    }
    if ((status = open_env(st, &o))) goto fail;
    if ((status = open_databases(st))) goto fail;
    if (!st->read_only && (status = store_writer_start(st))) {
        set_error(status, "cannot start the writer thread: %s", engram_strerror(status));
        goto fail;
    }
    *out = st;
    return 0;
fail:
    store_close(st);
    return status;
}

void store_close(store_t *st)
{
    if (!st) return;
    store_writer_stop(st);
    if (st->env) mdb_env_close(st->env);
    if (st->lock_fd >= 0) close(st->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&st->gate_mu);
    pthread_cond_destroy(&st->gate_cv);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->work_cv);
    pthread_cond_destroy(&st->done_cv);
    eg_free(st->dir);
    eg_free(st);
}

MDB_dbi store_dbi(const store_t *st, store_db_t db)
{
    if (!st || (int)db < 0 || db >= DB__COUNT) return 0;
    return st->dbi[db];
}

MDB_env *store_env(store_t *st) { return st ? st->env : NULL; }

/* ---- readers ------------------------------------------------------------- */

int store_read_begin(store_t *st, MDB_txn **txn)
{
    if (!txn) return ENGRAM_EINVAL;
    *txn = NULL;
    if (!st) return ENGRAM_EINVAL;
    for (int attempt = 0;; attempt++) {
        store_gate_enter(st);
        int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn);
        if (rc == 0) return 0;
        store_gate_leave(st);
        *txn = NULL;
        if (rc == MDB_READERS_FULL) {
            /* Slots of crashed processes (tools) may be what fills the table. */
            int dead = 0;
            if (attempt == 0 && mdb_reader_check(st->env, &dead) == 0 && dead > 0) continue;
            return ENGRAM_EAGAIN;
        }
        /* Another process grew the map: adopt its size (read-only opens). */
        if (rc == MDB_MAP_RESIZED && attempt < 3 && store_thread_reads(st) == 0) {
            int status = store_gate_resize(st, 0);
            if (status) return status;
            continue;
        }
        return store_status(rc);
    }
}

void store_read_end(store_t *st, MDB_txn *txn)
{
    if (!st || !txn) return;
    mdb_txn_abort(txn);
    store_gate_leave(st);
}

/* ---- counters, info, backup ---------------------------------------------- */

int store_next_id(MDB_txn *txn, store_t *st, const char *name, uint64_t *out)
{
    if (!txn || !st || !name || !out) return ENGRAM_EINVAL;
    *out = 0;
    size_t n = strlen(name);
    if (n == 0 || n > 200) return ENGRAM_EINVAL;
    char key[208];
    memcpy(key, "seq:", 4);
    memcpy(key + 4, name, n);
    MDB_val k = {n + 4, key}, v;
    uint64_t next = 1;
    int rc = mdb_get(txn, st->dbi[DB_META], &k, &v);
    if (rc == 0) {
        if (v.mv_size != 8) return ENGRAM_ECORRUPT;
        next = be64_get(v.mv_data) + 1;
        if (next == 0) return ENGRAM_ETOOBIG;
    } else if (rc != MDB_NOTFOUND) {
        return store_status(rc);
    }
    unsigned char val[8];
    be64_put(val, next);
    v.mv_size = 8;
    v.mv_data = val;
    rc = mdb_put(txn, st->dbi[DB_META], &k, &v, 0);
    if (rc) return store_status(rc);
    *out = next;
    return 0;
}

int store_get_info(store_t *st, store_info_t *out)
{
    if (!st || !out) return ENGRAM_EINVAL;
    memset(out, 0, sizeof *out);
    MDB_envinfo ei;
    MDB_stat ms;
    int rc = mdb_env_info(st->env, &ei);
    if (rc == 0) rc = mdb_env_stat(st->env, &ms);
    if (rc) return store_status(rc);
    out->map_bytes = ei.me_mapsize;
    out->used_bytes = (size_t)(ei.me_last_pgno + 1) * ms.ms_psize;
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/data.mdb", st->dir);
    if (stat(path, &sb) == 0) out->file_bytes = (size_t)sb.st_size;
    pthread_mutex_lock(&st->mu);
    out->commits = st->commits;
    out->batched_ops = st->batched_ops;
    out->map_grows = st->map_grows;
    pthread_mutex_unlock(&st->mu);
    return 0;
}

/* Makes a rename in path's directory durable; best effort. */
static void sync_parent_dir(const char *path)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

/* Copies into PATH.tmp, syncs it, then renames over path, so a crash never
 * leaves a half-written file under the final name. The copy runs its own read
 * transaction, counted in the reader gate: a map growth waits for it. */
int store_backup(store_t *st, const char *path)
{
    if (!st || !path || !path[0] || strlen(path) > 4000) return ENGRAM_EINVAL;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    int status = 0;
    store_gate_enter(st);
    int rc = mdb_env_copyfd2(st->env, fd, MDB_CP_COMPACT);
    store_gate_leave(st);
    if (rc) { status = store_status(rc); goto fail; }
    if (fsync(fd) != 0) { status = -errno; goto fail; }
    if (close(fd) != 0) { fd = -1; status = -errno; goto fail; }
    fd = -1;
    if (rename(tmp, path) != 0) { status = -errno; goto fail; }
    sync_parent_dir(path);
    return 0;
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    return status;
}
