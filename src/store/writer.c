/*
 * writer.c - the single writer thread and its group commit.
 *
 * store_write() puts an op (callback, argument, status, done flag; on the
 * caller's stack) at the tail of a queue and sleeps on done_cv. The writer
 * thread takes up to WRITER_BATCH_MAX ops off the head, runs them in one
 * write transaction - each in a nested transaction of its own, so a failing
 * callback is rolled back alone - commits once (one fsync for the batch),
 * then marks every op done and wakes the callers. A caller therefore returns
 * only after its data is durable.
 *
 * Failures:
 *  - callback returns non-zero: its nested transaction is aborted, the op's
 *    status is that value (MDB codes mapped with store_status), the other ops
 *    go on. If the batch commit then fails too, the failed op keeps its own
 *    status.
 *  - MDB_MAP_FULL (from a callback - either MDB_MAP_FULL or ENGRAM_EFULL - or
 *    from a commit): the whole transaction is aborted, the map doubled
 *    (capped at max_map_bytes) once every read transaction of the process has
 *    ended (store_gate_resize), and the whole batch runs again. Callbacks are
 *    re-runnable by contract (store.h). At the cap, every op of the batch
 *    gets ENGRAM_EFULL.
 *  - MDB_TXN_FULL (too many dirty pages for one transaction): the batch is
 *    split in halves, each run and committed on its own; a single op that
 *    still does not fit gets the status.
 *  - the commit fails otherwise: every op that had succeeded gets
 *    store_status(rc), so EIO and ENOSPC come back as -EIO / -ENOSPC. Without
 *    MDB_WRITEMAP nothing of the batch is visible and the file stays at the
 *    previous commit.
 *
 * store_close() sets stopping; the writer empties the queue before it exits,
 * and close waits until every caller of a drained op has left store_write
 * (inflight). A store_write that starts while closing gets ENGRAM_ECLOSED.
 */
#include <errno.h>
#include <signal.h>

#include "store/store_internal.h"
#include "util/common.h"

#define WRITER_BATCH_MAX 256

/* Our status for a callback's return value. */
static int op_status(int r)
{
    if (r >= MDB_KEYEXIST && r <= MDB_LAST_ERRCODE) return store_status(r);
    return r;
}

static int is_map_full(int r) { return r == MDB_MAP_FULL || r == ENGRAM_EFULL; }

static void set_all(store_op_t **ops, int n, int status)
{
    for (int i = 0; i < n; i++) ops[i]->status = status;
}

/* Doubles the map. Returns 0, or ENGRAM_EFULL at the cap. */
static int grow_map(store_t *st)
{
    MDB_envinfo ei;
    int rc = mdb_env_info(st->env, &ei);
    if (rc) return store_status(rc);
    size_t cur = ei.me_mapsize;
    if (cur >= st->max_map) return ENGRAM_EFULL;
    size_t next = cur > st->max_map / 2 ? st->max_map : cur * 2;
    int status = store_gate_resize(st, next);
    if (status) return status;
    pthread_mutex_lock(&st->mu);
    st->map_grows++;
    pthread_mutex_unlock(&st->mu);
    return 0;
}

enum { RUN_DONE, RUN_MAP_FULL, RUN_TXN_FULL };

/* Runs ops in txn, each in a child transaction. Sets each op's status. */
static int run_ops(store_t *st, MDB_txn *txn, store_op_t **ops, int n)
{
    (void)st;
    for (int i = 0; i < n; i++) {
        MDB_txn *child = NULL;
        int rc = mdb_txn_begin(st->env, txn, 0, &child);
        if (rc == MDB_MAP_FULL) return RUN_MAP_FULL;
        if (rc == MDB_TXN_FULL) return RUN_TXN_FULL;
        if (rc) { ops[i]->status = store_status(rc); continue; }
        int r = ops[i]->fn(child, ops[i]->arg);
        if (r == 0) {
            rc = mdb_txn_commit(child);
            if (rc == MDB_MAP_FULL) return RUN_MAP_FULL;
            if (rc == MDB_TXN_FULL) return RUN_TXN_FULL;
            ops[i]->status = store_status(rc);
            continue;
        }
        mdb_txn_abort(child);
        if (is_map_full(r)) return RUN_MAP_FULL;
        if (r == MDB_TXN_FULL) return RUN_TXN_FULL;
        ops[i]->status = op_status(r);
    }
    return RUN_DONE;
}

/* Runs a batch to completion: every op gets its final status. */
static void run_batch(store_t *st, store_op_t **ops, int n)
{
    for (;;) {
        set_all(ops, n, 0);
        MDB_txn *txn = NULL;
        int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
        if (rc) { set_all(ops, n, store_status(rc)); return; }
        int run = run_ops(st, txn, ops, n);
        if (run == RUN_DONE) {
            rc = mdb_txn_commit(txn);
            if (rc == 0) {
                pthread_mutex_lock(&st->mu);
                st->commits++;
                st->batched_ops += (uint64_t)n;
                pthread_mutex_unlock(&st->mu);
                return;
            }
            if (rc == MDB_MAP_FULL) {
                run = RUN_MAP_FULL;
            } else if (rc == MDB_TXN_FULL) {
                run = RUN_TXN_FULL;
            } else {
                int status = store_status(rc);
                for (int i = 0; i < n; i++)
                    if (ops[i]->status == 0) ops[i]->status = status;
                return;
            }
        } else {
            mdb_txn_abort(txn);
        }
        if (run == RUN_TXN_FULL) {
            if (n == 1) { ops[0]->status = ENGRAM_ETOOBIG; return; }
            run_batch(st, ops, n / 2);
            run_batch(st, ops + n / 2, n - n / 2);
            return;
        }
        int status = grow_map(st);
        if (status) { set_all(ops, n, status); return; }
    }
}

static void *writer_main(void *p)
{
    store_t *st = p;
    store_op_t *batch[WRITER_BATCH_MAX];
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (!st->head && !st->stopping) pthread_cond_wait(&st->work_cv, &st->mu);
        if (!st->head) break; /* stopping and drained */
        int n = 0;
        while (st->head && n < WRITER_BATCH_MAX) {
            batch[n++] = st->head;
            st->head = st->head->next;
        }
        if (!st->head) st->tail = NULL;
        pthread_mutex_unlock(&st->mu);

        run_batch(st, batch, n);

        pthread_mutex_lock(&st->mu);
        for (int i = 0; i < n; i++) batch[i]->done = 1;
        pthread_cond_broadcast(&st->done_cv);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* The writer starts with every signal blocked, so process signals go to the
 * threads that expect them and never interrupt a commit. */
int store_writer_start(store_t *st)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&st->writer, NULL, writer_main, st);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) return -rc;
    pthread_setname_np(st->writer, "engram-writer");
    st->writer_started = 1;
    return 0;
}

void store_writer_stop(store_t *st)
{
    if (!st->writer_started) return;
    pthread_mutex_lock(&st->mu);
    st->stopping = 1;
    pthread_cond_signal(&st->work_cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->writer, NULL);
    /* Callers woken by the last batch may not have left store_write yet;
     * st must outlive them. */
    pthread_mutex_lock(&st->mu);
    while (st->inflight > 0) pthread_cond_wait(&st->done_cv, &st->mu);
    pthread_mutex_unlock(&st->mu);
    st->writer_started = 0;
}

int store_write(store_t *st, store_write_fn fn, void *arg)
{
    if (!st || !fn) return ENGRAM_EINVAL;
    if (st->read_only) return ENGRAM_EUNSUPPORTED;
    /* A callback calling store_write would wait for its own batch. */
    if (st->writer_started && pthread_equal(pthread_self(), st->writer)) return ENGRAM_EINVAL;
    /* Holding a read transaction here would deadlock a map growth, which
     * waits for every reader of the process while we wait for the writer. */
    if (store_thread_reads(st) > 0) return ENGRAM_EINVAL;

    store_op_t op = {fn, arg, 0, 0, NULL};
    pthread_mutex_lock(&st->mu);
    if (st->stopping || !st->writer_started) {
        pthread_mutex_unlock(&st->mu);
        return ENGRAM_ECLOSED;
    }
    if (st->tail) st->tail->next = &op;
    else st->head = &op;
    st->tail = &op;
    st->inflight++;
    pthread_cond_signal(&st->work_cv);
    while (!op.done) pthread_cond_wait(&st->done_cv, &st->mu);
    if (--st->inflight == 0 && st->stopping) pthread_cond_broadcast(&st->done_cv);
    pthread_mutex_unlock(&st->mu);
    return op.status;
}
