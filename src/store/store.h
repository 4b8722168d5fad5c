/*
 * store.h - the LMDB environment: named databases, meta record, readers, the
 * single writer with group commit, map growth.
 *
 * One environment (DIR/data.mdb) holds every named database listed in
 * store_db_t. At open the meta database's record (magic "ENGRAM\0\1", format
 * version STORE_FORMAT_VERSION) is checked: a different magic or version is
 * ENGRAM_EVERSION with a message from store_last_error(), never a rebuild.
 *
 * Readers: store_read_begin/store_read_end bracket a short read-only
 * transaction (MDB_NOTLS, so any thread may use it). Never hold one across
 * network I/O or a streamed answer: copy what you need out of it first.
 * Pointers from mdb_get/cursors are valid only until store_read_end.
 *
 * Writers: every write goes through store_write(), which hands a callback to
 * the one writer thread. The writer gathers the callbacks queued at that
 * moment into one transaction (group commit: one fsync per batch), running
 * each in its own nested transaction so a failing callback is rolled back
 * alone. store_write returns only after the batch committed durably (or
 * failed): a caller may answer 202 as soon as it returns 0.
 * On MDB_MAP_FULL the writer aborts the whole batch, waits until no read
 * transaction is open, doubles the map size and runs the batch again: a write
 * callback must therefore be re-runnable (only write through its txn, keep
 * its results in its arg and overwrite them on each run).
 * On any other commit failure (EIO, ENOSPC) every callback of the batch gets
 * that status and nothing of it is visible; the store stays consistent.
 *
 * Never MDB_WRITEMAP (a full disk would SIGBUS), never MDB_NOSYNC.
 */
#ifndef ENGRAM_STORE_H
#define ENGRAM_STORE_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define STORE_FORMAT_VERSION 1

/* A new database goes at the end, before DB__COUNT, with its name added to
 * db_names in store.c (a static assertion checks the count). */
typedef enum {
    DB_META = 0,      /* "magic", "version", "seq:<name>" counters, settings */
    DB_USERS,         /* user_id(8) -> user record */
    DB_USER_EMAIL,    /* lowercased email -> user_id(8) */
    DB_KEYS,          /* sha256(key)(32) -> key record */
    DB_USER_KEYS,     /* user_id(8) key_id(8) -> sha256(key)(32) */
    DB_SESSIONS,      /* sha256(token)(32) -> session record */
    DB_WORKSPACES,    /* ws(8) -> workspace record */
    DB_MEMBERS,       /* ws(8) user_id(8) -> role */
    DB_USER_WS,       /* user_id(8) ws(8) -> role */
    DB_UUIDS,         /* uuid(16) -> kind(1) ws(8) coll(8) id(8): public id -> internal */
    DB_COLLECTIONS,   /* ws(8) coll(8) -> collection record */
    DB_COLL_NAMES,    /* ws(8) name -> coll(8) */
    DB_DOCUMENTS,     /* ws(8) coll(8) doc(8) -> document record */
    DB_DOC_HASH,      /* ws(8) coll(8) sha256(32) -> doc(8) */
    DB_FILES,         /* ws(8) doc(8) -> original bytes (zstd frame) */
    DB_JOBS,          /* job(8) -> ws(8) coll(8) doc(8): the durable ingest queue */
    DB_CHUNKS,        /* ws(8) coll(8) chunk(8) -> chunk record (text zstd) */
    DB_DOC_CHUNKS,    /* ws(8) doc(8) index(4) -> chunk(8) */
    DB_BM25_TERMS,    /* ws(8) coll(8) term -> term stats (df, ...) */
    DB_BM25_POSTINGS, /* ws(8) coll(8) term 0x00 first_chunk(8) -> postings block */
    DB_BM25_DOCLEN,   /* ws(8) coll(8) chunk(8) -> length (u32) */
    DB_BM25_STATS,    /* ws(8) coll(8) -> collection totals */
    /* Reserved for the vector, embedding, chat, memory, graph and operations
     * modules; each module's header documents its layout. */
    DB_HNSW_META,     /* ws(8) coll(8) -> index meta (dim, metric, M, entry point) */
    DB_HNSW_NODES,    /* ws(8) coll(8) chunk(8) -> node (level, neighbour lists, vector) */
    DB_EMBED_CACHE,   /* sha256(model + text)(32) -> vector */
    DB_CHAT_SESSIONS, /* ws(8) session(8) -> session record */
    DB_CHAT_MESSAGES, /* ws(8) session(8) message(8) -> message record */
    DB_MEMORIES,      /* ws(8) memory(8) -> memory record */
    DB_GRAPH_ENTITIES,/* ws(8) coll(8) entity(8) -> entity record */
    DB_GRAPH_NAMES,   /* ws(8) coll(8) normalised name -> entity(8) */
    DB_GRAPH_EDGES,   /* ws(8) coll(8) src(8) dst(8) -> relation record */
    DB_GRAPH_MENTIONS,/* ws(8) coll(8) entity(8) chunk(8) -> count; and chunk->entity reverse */
    DB_QUOTAS,        /* ws(8) -> quota record; ws(8) day(4) -> request count */
    DB_IDEMPOTENCY,   /* ws(8) sha256(Idempotency-Key) -> doc(8) + time */
    DB__COUNT
} store_db_t;

typedef struct store store_t;

typedef struct store_options {
    size_t initial_map_bytes;  /* default 64 MiB; grows by doubling */
    size_t max_map_bytes;      /* default 1 TiB */
    int max_readers;           /* default 512 */
    int read_only;             /* tools (stat, verify) */
} store_options_t;

/* Opens (creating DIR and the environment if needed) and checks the meta
 * record. opt may be NULL for defaults; zero fields take their default. On
 * failure *out is NULL and store_last_error() explains. Statuses:
 *   ENGRAM_EVERSION  another format version, another magic, or an LMDB
 *                    environment that is not engram's (never rewritten)
 *   ENGRAM_ECORRUPT  DIR/data.mdb is not an LMDB file
 *   ENGRAM_EAGAIN    another engram process holds DIR/engram.lock
 *   -errno           the directory cannot be created or opened
 * Writable opens take an exclusive flock on DIR/engram.lock for the life of
 * the store; read_only opens take none, create nothing and may run beside a
 * server (tools). */
int store_open(const char *dir, const store_options_t *opt, store_t **out);
/* Stops the writer after the queued batches are committed, then closes.
 * Writes already queued complete normally (close waits for their callers
 * to return). Every read transaction must have ended, and no thread may
 * start using st once close has begun. */
void store_close(store_t *st);
/* A thread-local message about the last store_open failure. */
const char *store_last_error(void);

MDB_dbi store_dbi(const store_t *st, store_db_t db);
MDB_env *store_env(store_t *st);

/* Short read transaction. Thread-safe; nested reads in one thread are fine.
 * A map growth waits until every read transaction of the process has ended,
 * so a long read stalls all writes. Returns ENGRAM_EAGAIN when all reader
 * slots are taken. store_read_end(st, NULL) does nothing. */
int store_read_begin(store_t *st, MDB_txn **txn);
void store_read_end(store_t *st, MDB_txn *txn);

typedef int (*store_write_fn)(MDB_txn *txn, void *arg);
/* Runs fn(txn, arg) on the writer thread inside the next group commit and
 * waits for the commit. Returns fn's status if it failed (its changes are
 * rolled back, the rest of the batch is not affected), the commit's status
 * if the commit failed, else 0. Thread-safe.
 *
 * fn must neither commit nor abort txn (nested transactions under it are
 * fine) and must not call store_write. It runs on the writer thread: keep it
 * to LMDB work, no network or other slow I/O - the whole batch waits for it.
 * fn returns 0 or a status; a raw MDB code is mapped with store_status.
 * fn returning MDB_MAP_FULL or ENGRAM_EFULL means "the map is full": the
 * writer grows the map and reruns the whole batch (so never use ENGRAM_EFULL
 * for anything else inside a callback). When the map is at max_map_bytes
 * every op of the batch gets ENGRAM_EFULL. A commit that fails with EIO or
 * ENOSPC returns -EIO / -ENOSPC (nothing of the batch is visible). An op too
 * large for one LMDB transaction gets ENGRAM_ETOOBIG.
 *
 * Refused with ENGRAM_EINVAL (deadlocks): calling from inside a write
 * callback, and calling while this thread holds a read transaction of st
 * (a map growth would wait for that reader while it waits for the writer).
 * ENGRAM_EUNSUPPORTED on a read_only store, ENGRAM_ECLOSED while closing. */
int store_write(store_t *st, store_write_fn fn, void *arg);

/* Next value of a named u64 counter (starts at 1), stored in DB_META as
 * "seq:<name>" = u64 big-endian. Only inside a write callback (txn is the
 * callback's); rolled back with it. name: 1..200 bytes. */
int store_next_id(MDB_txn *txn, store_t *st, const char *name, uint64_t *out);

/* Map statistics for metrics/admin. */
typedef struct store_info {
    size_t map_bytes;
    size_t used_bytes;   /* last page number * page size */
    size_t file_bytes;
    uint64_t commits;    /* transactions committed */
    uint64_t batched_ops;/* callbacks committed */
    uint64_t map_grows;
} store_info_t;
int store_get_info(store_t *st, store_info_t *out);

/* Consistent compacting copy of the environment to path (a single LMDB file,
 * mode 0600: open it with MDB_NOSUBDIR, or rename it to DIR/data.mdb). Safe
 * while serving; written to "path.tmp", fsynced, renamed over path. A map
 * growth waits for the copy to finish. */
int store_backup(store_t *st, const char *path);

/* Maps an LMDB return code to our status space: MDB_NOTFOUND ENOTFOUND,
 * MDB_KEYEXIST EEXIST, MDB_MAP_FULL EFULL, MDB_READERS_FULL EAGAIN,
 * MDB_CORRUPTED / MDB_PAGE_NOTFOUND / MDB_INVALID ECORRUPT,
 * MDB_VERSION_MISMATCH EVERSION, other MDB codes EIO, a positive errno e -e;
 * a value already in our space (negative, not an MDB code) passes through. */
int store_status(int mdb_rc);

/* zstd codecs for stored text. store_compress appends a frame for src to
 * out. store_decompress appends the decoded bytes to out, refusing frames
 * whose declared or actual size exceeds max_out (ENGRAM_ECORRUPT). src must
 * be exactly one frame; anything malformed is ENGRAM_ECORRUPT and leaves
 * out->len unchanged. Both are thread-safe. */
int store_compress(const void *src, size_t len, buf_t *out);
int store_decompress(const void *src, size_t len, size_t max_out, buf_t *out);

/* Key builder: big-endian integers, at most 511 bytes (LMDB's key limit). An
 * append that does not fit sets overflow and writes nothing; check overflow
 * before using the key. */
typedef struct store_key {
    unsigned char b[512];
    size_t len;
    int overflow;
} store_key_t;
void skey_init(store_key_t *k);
void skey_u64(store_key_t *k, uint64_t v);
void skey_u32(store_key_t *k, uint32_t v);
void skey_u8(store_key_t *k, uint8_t v);
void skey_bytes(store_key_t *k, const void *p, size_t n);
static inline MDB_val skey_val(store_key_t *k) { MDB_val v = {k->len, k->b}; return v; }

#endif
