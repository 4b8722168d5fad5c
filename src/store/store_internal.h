/*
 * store_internal.h - what store.c and writer.c share; not for use outside
 * src/store/.
 *
 * Locks (never held at once; the order would be mu before gate_mu, but no
 * code path takes both):
 *   gate_mu  guards readers/growing: the "reader gate". Every read
 *            transaction of this process (store_read_begin, store_backup's
 *            copy) is counted in readers; map growth sets growing, waits until
 *            readers is 0, resizes, clears growing. LMDB requires that no
 *            transaction is active in the process during mdb_env_set_mapsize.
 *   mu       guards the writer queue, stopping and the counters.
 */
#ifndef ENGRAM_STORE_INTERNAL_H
#define ENGRAM_STORE_INTERNAL_H

#include <pthread.h>

#include "store/store.h"

/* One queued store_write call; lives on the caller's stack. */
typedef struct store_op {
    store_write_fn fn;
    void *arg;
    int status;
    int done;
    struct store_op *next;
} store_op_t;

struct store {
    MDB_env *env;
    MDB_dbi dbi[DB__COUNT];
    char *dir;
    int read_only;
    size_t max_map;
    int lock_fd;

    pthread_mutex_t gate_mu;
    pthread_cond_t gate_cv;
    long readers;
    int growing;

    pthread_mutex_t mu;
    pthread_cond_t work_cv;   /* writer waits for work or stopping */
    pthread_cond_t done_cv;   /* callers wait for their op's done flag */
    store_op_t *head, *tail;
    int stopping;
    long inflight;            /* callers inside store_write */
    int writer_started;
    pthread_t writer;
    uint64_t commits;
    uint64_t batched_ops;
    uint64_t map_grows;
};

/* Reader gate (store.c). enter blocks while a growth is pending, unless this
 * thread already holds a read transaction of st (nested reads must not
 * deadlock against a waiting growth). */
void store_gate_enter(store_t *st);
void store_gate_leave(store_t *st);
/* Waits until no read transaction is open, then mdb_env_set_mapsize(size);
 * size 0 adopts a size grown by another process. Returns a status. */
int store_gate_resize(store_t *st, size_t size);
/* Number of read transactions of st the calling thread holds. */
int store_thread_reads(const store_t *st);

/* Writer thread (writer.c). */
int store_writer_start(store_t *st);
void store_writer_stop(store_t *st);

#endif
