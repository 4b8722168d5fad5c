/*
 * pipeline.c - the ingestion worker pool and its committer (see ingest.h).
 *
 * Workers take jobs and turn a document into parts: up to PART_CHUNKS
 * chunks (or PART_BYTES of text) read from its source (source.h: plain text
 * streamed from the stored file, other formats extracted), embedded and
 * with their entities found, all outside any transaction. A part goes on a
 * bounded commit queue; one committer thread takes up to COMMIT_BATCH_DOCS
 * parts (COMMIT_BATCH_CHUNKS chunks) and commits them in one write
 * transaction (each part in a nested one), so under load one fsync serves
 * many small documents, and a large document costs the memory of two parts
 * (one committing, the next being made), never its size.
 *
 * Gathering: the committer waits for a full batch until COMMIT_GATHER_MS
 * after its previous commit began. The cost of a commit is mostly the
 * B-tree pages it rewrites (postings, terms, graph, vectors), and a batch of
 * many documents shares most of them: on SciFact, batches of about 60
 * documents instead of 4 cut the writer's CPU by a quarter and the time to
 * searchable by a third. A lone document commits at once (the previous
 * commit is long past); only documents arriving while others commit wait,
 * 50 ms at most.
 *
 * A document of one part commits as before: chunks, indexes and
 * `completed` at once. A larger one commits part by part, in order: the
 * document stays `processing` with chunk_count = the chunks committed (they
 * are searchable), and its job stays until the last part sets `completed`.
 * A restart resumes it from that count (the source yields the same chunks
 * again; those already committed are skipped). A document that fails after
 * some parts committed has them rolled back (catalog_doc_rollback) before it
 * is marked failed, so a failed document never has chunks.
 *
 * Fairness: the queue is a FIFO per workspace, served round-robin between
 * the workspaces that have jobs waiting. A worker that finished a part of a
 * document with more to come puts it back at the front of its workspace's
 * queue (at most MAX_SUSPENDED such documents wait at once) when another
 * workspace has jobs waiting, so a huge document is interleaved with other
 * workspaces' documents part by part instead of holding a worker for its
 * whole length.
 *
 * Lock order: one mutex (mu) guards the queues, the documents in flight
 * and their part state; nobody holds it while calling into the store.
 * Shutdown: workers stop at the next part boundary (the job stays; what
 * was committed is resumed at the next start), then the committer commits
 * what was already prepared and ends.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "catalog/catalog.h"
#include "index/bm25.h"
#include "index/tokenizer.h"
#include "ingest/detect.h"
#include "ingest/ingest.h"
#include "ingest/source.h"
#include "model/extract_entities.h"
#include "model/registry.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/log.h"

#define PART_CHUNKS 1024          /* chunks per part at most */
#define PART_BYTES (4u << 20)     /* bytes of chunk text per part at most */
#define COMMIT_QUEUE_MAX 128      /* parts waiting for the committer at most */
#define COMMIT_QUEUE_CHUNKS 4096  /* ... and their chunks (unless the queue is empty) */
#define COMMIT_BATCH_DOCS 64      /* parts per write transaction at most */
#define COMMIT_GATHER_MS 50       /* wait for a fuller batch at most, while parts are coming */
#define COMMIT_BATCH_CHUNKS 2048  /* chunks per write transaction (unless one part has more) */
#define MAX_SUSPENDED 4           /* documents put back between parts, waiting at once */
#define ROLLBACK_CHUNKS 2048      /* chunks removed per transaction when failing a document */

/* A document in flight: from its first part until its last one committed
 * (or it failed, or was left for the next start). Owned by the worker
 * processing it, or by the queue while it waits between parts, then by the
 * committer once its last part is queued. */
typedef struct doc_stream {
    ingest_job_t job;
    coll_config_t cfg;
    doc_source_t *src;
    uint32_t next;        /* index of the next chunk the source yields */
    uint32_t skip;        /* chunks committed by an earlier run: skipped */
    uint32_t sent;        /* chunks handed to the committer (skip included) */
    int eof;              /* the source has no more chunks */
    /* Guarded by mu: */
    uint32_t committed;   /* chunks committed */
    int part_out;         /* a part is with the committer */
    int part_rc;          /* status of the last part committed */
    int gone;             /* the document was deleted meanwhile */
    double progress;
    struct doc_stream *prev_live, *next_live;
} doc_stream_t;

/* Chunks ready to commit; owns everything they point into. */
typedef struct part {
    doc_stream_t *s;
    uint32_t first;       /* document index of chunks[0] */
    int more;             /* parts follow */
    size_t n, cap;
    chunk_in_t *chunks;
    size_t *text_off;     /* chunk texts and headings, as offsets into arena */
    size_t *head_off;     /* (size_t)-1: no heading */
    buf_t arena;
    graph_chunk_t *graphs;
    bm25_terms_t *terms;  /* each chunk's BM25 terms, made by the worker */
    float *vecs;
    uint32_t dim;
    uint64_t total_tokens;
    struct part *next;
} part_t;

/* The job queue: a FIFO per workspace, in a round-robin ring. */
typedef struct qent {
    ingest_job_t job;
    doc_stream_t *s;      /* a document put back between parts, or NULL */
    struct qent *next;
} qent_t;

typedef struct wsq {
    uint64_t ws;
    qent_t *head, *tail;
    size_t n;
    struct wsq *next;
} wsq_t;

struct ingest {
    store_t *st;
    embed_registry_t *reg;
    extract_llm_config_t llm;  /* llm.url NULL: the built-in entity extractor */
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* jobs queued, or stopping */
    pthread_cond_t part_cv;    /* a part committed */
    wsq_t *ring, *ring_tail;   /* workspaces with jobs waiting, next served first */
    size_t len;                /* jobs waiting */
    size_t suspended;          /* of them, documents put back between parts */
    size_t running;
    int stopping;
    struct timespec last_commit; /* when the committer last began a commit */
    int n_threads;
    pthread_t *threads;
    /* Parts waiting for the committer (see committer()). */
    pthread_t committer;
    int has_committer;
    pthread_cond_t commit_cv, space_cv;
    part_t *commit_head, *commit_tail;
    size_t commit_len, commit_chunks, committing;
    int workers_gone, committer_gone;
    doc_stream_t *live;        /* documents in flight (their progress) */
};

/* ---- the queue (under mu) -------------------------------------------------- */

static wsq_t *ring_find(ingest_t *in, uint64_t ws)
{
    for (wsq_t *q = in->ring; q; q = q->next)
        if (q->ws == ws) return q;
    return NULL;
}

static int queue_push(ingest_t *in, const ingest_job_t *job, doc_stream_t *s, int front)
{
    qent_t *e = eg_calloc(1, sizeof *e);
    if (!e) return ENGRAM_ENOMEM;
    e->job = *job;
    e->s = s;
    wsq_t *q = ring_find(in, job->ws);
    if (!q) {
        if (!(q = eg_calloc(1, sizeof *q))) { eg_free(e); return ENGRAM_ENOMEM; }
        q->ws = job->ws;
        if (in->ring_tail) in->ring_tail->next = q; else in->ring = q;
        in->ring_tail = q;
    }
    if (front) {
        e->next = q->head;
        q->head = e;
        if (!q->tail) q->tail = e;
        /* A document put back between parts: the workspace was just served,
         * the others go first. */
        if (q != in->ring_tail) {
            wsq_t **pp = &in->ring;
            while (*pp != q) pp = &(*pp)->next;
            *pp = q->next;
            q->next = NULL;
            in->ring_tail->next = q;
            in->ring_tail = q;
        }
    } else {
        if (q->tail) q->tail->next = e; else q->head = e;
        q->tail = e;
    }
    q->n++;
    in->len++;
    if (s) in->suspended++;
    return 0;
}

/* The head job of the workspace served next; that workspace goes to the
 * back of the ring. */
static qent_t *queue_pop(ingest_t *in)
{
    wsq_t *q = in->ring;
    if (!q) return NULL;
    qent_t *e = q->head;
    q->head = e->next;
    if (!q->head) q->tail = NULL;
    q->n--;
    in->len--;
    if (e->s) in->suspended--;
    in->ring = q->next;
    if (!in->ring) in->ring_tail = NULL;
    q->next = NULL;
    if (q->n) {
        if (in->ring_tail) in->ring_tail->next = q; else in->ring = q;
        in->ring_tail = q;
    } else {
        eg_free(q);
    }
    return e;
}

/* Jobs of other workspaces waiting. */
static size_t others_waiting(ingest_t *in, uint64_t ws)
{
    wsq_t *q = ring_find(in, ws);
    return in->len - (q ? q->n : 0);
}

int ingest_submit(ingest_t *in, const ingest_job_t *job)
{
    pthread_mutex_lock(&in->mu);
    int rc = queue_push(in, job, NULL, 0);
    if (!rc) pthread_cond_signal(&in->cv);
    pthread_mutex_unlock(&in->mu);
    return rc;
}

size_t ingest_queue_depth(ingest_t *in)
{
    pthread_mutex_lock(&in->mu);
    size_t n = in->len + in->running + in->commit_len + in->committing;
    pthread_mutex_unlock(&in->mu);
    return n;
}

int ingest_progress(ingest_t *in, uint64_t ws, uint64_t doc, double *progress)
{
    int found = 0;
    if (!in) return 0;
    pthread_mutex_lock(&in->mu);
    for (doc_stream_t *s = in->live; s && !found; s = s->next_live) {
        if (s->job.ws == ws && s->job.doc == doc) {
            *progress = s->progress;
            found = 1;
        }
    }
    pthread_mutex_unlock(&in->mu);
    return found;
}

static int stopping(ingest_t *in)
{
    pthread_mutex_lock(&in->mu);
    int s = in->stopping;
    pthread_mutex_unlock(&in->mu);
    return s;
}

#define EMBED_BATCH 64

/* Embeds every chunk with the collection's embedder; *vecs holds n * dim. */
static int embed_chunks(ingest_t *in, const coll_config_t *cfg, chunk_in_t *chunks, size_t n,
                        float **vecs, uint32_t *dim, char *err, size_t errsz)
{
    *vecs = NULL;
    *dim = 0;
    if (!in->reg) return 0;
    int rc = registry_check(in->reg, cfg->embedder, cfg->embedder_id, err, errsz);
    if (rc) return rc;
    embedder_t *e = registry_get(in->reg, cfg->embedder);
    if ((rc = embedder_resolve_dim(e, err, errsz))) return rc;
    uint32_t d = embedder_dim(e);
    float *v = eg_malloc(n * (size_t)d * sizeof *v);
    const char **texts = eg_malloc(EMBED_BATCH * sizeof *texts);
    size_t *lens = eg_malloc(EMBED_BATCH * sizeof *lens);
    if (!v || !texts || !lens) { rc = ENGRAM_ENOMEM; goto done; }
    for (size_t i = 0; i < n && !rc; i += EMBED_BATCH) {
        size_t m = n - i < EMBED_BATCH ? n - i : EMBED_BATCH;
        for (size_t j = 0; j < m; j++) {
            texts[j] = chunks[i + j].text;
            lens[j] = chunks[i + j].len;
        }
        rc = embedder_embed(e, in->st, texts, lens, m, v + i * d, err, errsz);
    }
    for (size_t i = 0; !rc && i < n; i++) chunks[i].vec = v + i * d;
done:
    eg_free(texts);
    eg_free(lens);
    if (rc) { eg_free(v); return rc; }
    *vecs = v;
    *dim = d;
    return 0;
}

/* The knowledge graph's entities and relations of every chunk, computed
 * here in the worker so the writer only stores them. */
static int extract_graph(ingest_t *in, chunk_in_t *chunks, size_t n, graph_chunk_t **out)
{
    const char **texts = eg_malloc((n + 1) * sizeof *texts);
    size_t *lens = eg_malloc((n + 1) * sizeof *lens);
    int rc = ENGRAM_ENOMEM;
    if (texts && lens) {
        for (size_t i = 0; i < n; i++) {
            texts[i] = chunks[i].text;
            lens[i] = chunks[i].len;
        }
        rc = in->llm.url ? extract_entities_llm(&in->llm, texts, lens, n, out, NULL)
                         : extract_entities(texts, lens, n, out);
        for (size_t i = 0; !rc && i < n; i++) chunks[i].graph = &(*out)[i];
    }
    eg_free(texts);
    eg_free(lens);
    return rc;
}

/* The document type of a stored MIME type (the upload detected it). */
static doc_type_t type_of_mime(const char *mime)
{
    for (int t = DOC_TEXT; t <= DOC_BINARY; t++)
        if (!strcmp(detect_mime((doc_type_t)t), mime)) return (doc_type_t)t;
    return DOC_BINARY;
}

/* What a failed document becomes: storage failures leave the job for the
 * next start (the disk may have room again); anything else fails it with a
 * message a user can act on. */
static void finish_failed(ingest_t *in, const ingest_job_t *job, int rc)
{
    log_error("ingest: document %llu failed: %s", (unsigned long long)job->doc, engram_strerror(rc));
    if (rc == ENGRAM_EFULL || rc == -ENOSPC || rc == -EIO || rc == ENGRAM_EIO) {
        /* Keeps the job: the next start tries again (if even this write
         * fails, the document stays pending with its job, same outcome). */
        catalog_doc_fail_retry(in->st, job,
                               "storage was full or failing: free disk space; the document is "
                               "processed again when the server next starts");
        return;
    }
    if (rc == ENGRAM_ENOMEM)
        catalog_doc_fail(in->st, job, "the server ran out of memory processing this document");
    else
        catalog_doc_fail(in->st, job, "processing failed; see the server log for the request");
}

/* ---- documents in flight ------------------------------------------------------ */

static void set_progress(ingest_t *in, doc_stream_t *s, double p)
{
    pthread_mutex_lock(&in->mu);
    s->progress = p;
    pthread_mutex_unlock(&in->mu);
}

/* Frees a document in flight; no part of it may be with the committer. */
static void stream_free(ingest_t *in, doc_stream_t *s)
{
    if (!s) return;
    pthread_mutex_lock(&in->mu);
    if (s->prev_live) s->prev_live->next_live = s->next_live; else if (in->live == s) in->live = s->next_live;
    if (s->next_live) s->next_live->prev_live = s->prev_live;
    pthread_mutex_unlock(&in->mu);
    doc_source_free(s->src);
    eg_free(s);
}

/* Under mu: waits for a full batch until COMMIT_GATHER_MS after the last
 * commit began (see the top of the file). */
static void gather(ingest_t *in)
{
    struct timespec until = in->last_commit;
    until.tv_nsec += COMMIT_GATHER_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (in->commit_len < COMMIT_BATCH_DOCS && in->commit_chunks < COMMIT_BATCH_CHUNKS &&
           !in->workers_gone && !in->stopping &&
           pthread_cond_timedwait(&in->commit_cv, &in->mu, &until) == 0) {
    }
    clock_gettime(CLOCK_MONOTONIC, &in->last_commit);
}

/* Waits until the document's part in the committer's hands (if any) is
 * committed; returns its status, and *gone. */
static int stream_wait(ingest_t *in, doc_stream_t *s, int *gone)
{
    pthread_mutex_lock(&in->mu);
    while (s->part_out) pthread_cond_wait(&in->part_cv, &in->mu);
    int rc = s->part_rc;
    *gone = s->gone;
    pthread_mutex_unlock(&in->mu);
    return rc;
}

/* Takes back the chunks earlier parts committed, so a failed document has
 * none. 0 when there are none left; otherwise the document stays
 * `processing` with its job and the next start tries it again. */
static int roll_back(ingest_t *in, const ingest_job_t *job, tokenizer_t *tok)
{
    tokenizer_t *own = NULL;
    int rc = tok ? 0 : tokenizer_new(&own);
    uint32_t left = 1;
    while (!rc && left) rc = catalog_doc_rollback(in->st, tok ? tok : own, job, ROLLBACK_CHUNKS, &left);
    tokenizer_free(own);
    if (rc && rc != ENGRAM_ENOTFOUND)
        log_error("ingest: document %llu: cannot take back its committed chunks (%s); it is "
                  "processed again at the next start", (unsigned long long)job->doc,
                  engram_strerror(rc));
    return rc == ENGRAM_ENOTFOUND ? 0 : rc;
}

/* Ends a document that cannot complete: rc and, for the uploader, msg
 * (NULL: from rc). Its committed chunks are taken back first. Frees s. */
static void stream_fail(ingest_t *in, doc_stream_t *s, int rc, const char *msg)
{
    int gone = 0;
    stream_wait(in, s, &gone);
    pthread_mutex_lock(&in->mu);
    uint32_t committed = s->committed;
    pthread_mutex_unlock(&in->mu);
    if (!gone && (committed == 0 || roll_back(in, &s->job, NULL) == 0)) {
        if (msg) catalog_doc_fail(in->st, &s->job, msg);
        else finish_failed(in, &s->job, rc);
    }
    stream_free(in, s);
}

/* Shutting down: the job stays in the store and runs at the next start,
 * from the chunks committed so far. */
static void stream_leave(ingest_t *in, doc_stream_t *s)
{
    int gone;
    stream_wait(in, s, &gone);
    log_info("ingest: document %llu left for the next start", (unsigned long long)s->job.doc);
    stream_free(in, s);
}

/* Starts a document; NULL when it ended right away (deleted, unreadable). */
static doc_stream_t *stream_open(ingest_t *in, const ingest_job_t *job)
{
    char err[256] = "", ctype[128];
    size_t zlen = 0;
    doc_stream_t *s = eg_calloc(1, sizeof *s);
    if (!s) { finish_failed(in, job, ENGRAM_ENOMEM); return NULL; }
    s->job = *job;
    int rc = catalog_job_info(in->st, job, ctype, &s->cfg, &s->skip, &zlen);
    if (rc == ENGRAM_ENOTFOUND) {
        /* Deleted before it was processed: just drop the job. */
        catalog_doc_fail(in->st, job, "document deleted");
        eg_free(s);
        return NULL;
    }
    if (rc) {
        log_error("ingest: cannot load document %llu: %s", (unsigned long long)job->doc,
                  engram_strerror(rc));
        catalog_doc_fail(in->st, job, "the stored file could not be read");
        eg_free(s);
        return NULL;
    }
    s->sent = s->committed = s->skip;
    s->progress = 0.05;
    pthread_mutex_lock(&in->mu);
    s->next_live = in->live;
    if (in->live) in->live->prev_live = s;
    in->live = s;
    pthread_mutex_unlock(&in->mu);
    if (s->skip)
        log_info("ingest: document %llu resumes after its %u committed chunks",
                 (unsigned long long)job->doc, s->skip);
    rc = doc_source_open(in->st, job, type_of_mime(ctype), &s->cfg, zlen, &s->src, err, sizeof err);
    /* An extractor's ENGRAM_ENOTFOUND (no text at all) comes with a message. */
    if (rc == ENGRAM_ENOTFOUND && !err[0]) {
        catalog_doc_fail(in->st, job, "document deleted");
        stream_free(in, s);
        return NULL;
    }
    if (rc) {
        if (rc == ENGRAM_ENOMEM) stream_fail(in, s, rc, NULL);
        else if (err[0]) stream_fail(in, s, rc, err);
        else if (rc == ENGRAM_EFULL || rc == -EIO || rc == ENGRAM_EIO) stream_fail(in, s, rc, NULL);
        else stream_fail(in, s, rc, "the document could not be read");
        return NULL;
    }
    return s;
}

static void part_free(part_t *p)
{
    if (!p) return;
    extract_graph_free(p->graphs, p->n);
    for (size_t i = 0; p->terms && i < p->n; i++) bm25_terms_free(&p->terms[i]);
    eg_free(p->terms);
    eg_free(p->vecs);
    eg_free(p->chunks);
    eg_free(p->text_off);
    eg_free(p->head_off);
    buf_free(&p->arena);
    eg_free(p);
}

/* Copies a chunk from the source into the part. */
static int part_add(part_t *p, const src_chunk_t *c)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        chunk_in_t *ch = eg_realloc(p->chunks, cap * sizeof *ch);
        if (ch) p->chunks = ch;
        size_t *to = ch ? eg_realloc(p->text_off, cap * sizeof *to) : NULL;
        if (to) p->text_off = to;
        size_t *ho = to ? eg_realloc(p->head_off, cap * sizeof *ho) : NULL;
        if (ho) p->head_off = ho;
        if (!ho) return ENGRAM_ENOMEM;
        p->cap = cap;
    }
    chunk_in_t *ch = &p->chunks[p->n];
    memset(ch, 0, sizeof *ch);
    ch->len = c->len;
    ch->start = c->start;
    ch->end = c->end;
    ch->token_count = c->token_count;
    ch->page = c->page;
    p->text_off[p->n] = p->arena.len;
    buf_append(&p->arena, c->text, c->len);
    buf_putc(&p->arena, '\0');
    p->head_off[p->n] = (size_t)-1;
    if (c->heading) {
        p->head_off[p->n] = p->arena.len;
        buf_puts(&p->arena, c->heading);
        buf_putc(&p->arena, '\0');
    }
    p->n++;
    return p->arena.err;
}

/* Tokenises the part's chunks for BM25 here, so the single writer only
 * merges postings. */
static int part_terms(part_t *p, tokenizer_t *tok)
{
    p->terms = eg_calloc(p->n, sizeof *p->terms);
    if (!p->terms) return ENGRAM_ENOMEM;
    for (size_t i = 0; i < p->n; i++) {
        int rc = bm25_terms_build(&p->terms[i], tok, p->chunks[i].text, p->chunks[i].len);
        if (rc) return rc;
        p->chunks[i].terms = &p->terms[i];
    }
    return 0;
}

/* Reads, embeds, finds the entities of and tokenises the document's next
 * part. On ENGRAM_ECANCELED (shutting down) nothing is kept; on another
 * error err may hold a message for the uploader. */
static int part_build(ingest_t *in, tokenizer_t *tok, doc_stream_t *s, part_t **out, char *err,
                      size_t errsz)
{
    *out = NULL;
    part_t *p = eg_calloc(1, sizeof *p);
    if (!p) return ENGRAM_ENOMEM;
    p->s = s;
    p->first = s->sent;
    int rc = 0;
    src_chunk_t c;
    while (p->n < PART_CHUNKS && p->arena.len < PART_BYTES) {
        rc = doc_source_next(s->src, &c);
        if (rc < 0) goto fail;
        if (rc == 0) { s->eof = 1; break; }
        rc = 0;
        if (s->next++ < s->skip) continue; /* committed by an earlier run */
        if ((rc = part_add(p, &c))) goto fail;
        if ((p->n & 255) == 0 && stopping(in)) { rc = ENGRAM_ECANCELED; goto fail; }
    }
    for (size_t i = 0; i < p->n; i++) {
        p->chunks[i].text = p->arena.data + p->text_off[i];
        p->chunks[i].heading = p->head_off[i] == (size_t)-1 ? NULL : p->arena.data + p->head_off[i];
    }
    p->more = !s->eof;
    set_progress(in, s, 0.1 + 0.8 * doc_source_progress(s->src));
    if (stopping(in)) { rc = ENGRAM_ECANCELED; goto fail; }
    if (p->n) {
        rc = embed_chunks(in, &s->cfg, p->chunks, p->n, &p->vecs, &p->dim, err, errsz);
        if (rc) goto fail;
        if (stopping(in)) { rc = ENGRAM_ECANCELED; goto fail; }
        if (s->cfg.graph && (rc = extract_graph(in, p->chunks, p->n, &p->graphs))) goto fail;
        if ((rc = part_terms(p, tok))) goto fail;
    }
    if (!p->more) {
        p->total_tokens = doc_source_words(s->src);
        set_progress(in, s, 0.95);
    }
    s->sent = p->first + (uint32_t)p->n;
    *out = p;
    return 0;
fail:
    part_free(p);
    return rc;
}

/* Hands a part to the committer; waits while its queue is full. 0, or
 * ENGRAM_ECLOSED when the committer is gone (the part is dropped). */
static int commit_enqueue(ingest_t *in, part_t *p)
{
    pthread_mutex_lock(&in->mu);
    while ((in->commit_len >= COMMIT_QUEUE_MAX ||
            (in->commit_len && in->commit_chunks + p->n > COMMIT_QUEUE_CHUNKS)) &&
           !in->committer_gone)
        pthread_cond_wait(&in->space_cv, &in->mu);
    if (in->committer_gone) {
        pthread_mutex_unlock(&in->mu);
        part_free(p);
        return ENGRAM_ECLOSED;
    }
    p->next = NULL;
    if (in->commit_tail) in->commit_tail->next = p; else in->commit_head = p;
    in->commit_tail = p;
    in->commit_len++;
    in->commit_chunks += p->n;
    p->s->part_out = 1;
    pthread_cond_signal(&in->commit_cv);
    pthread_mutex_unlock(&in->mu);
    return 0;
}

/* Works on a document until its last part is queued, it fails, it is put
 * back in the queue for other workspaces' jobs, or the pool stops. */
static void process(ingest_t *in, tokenizer_t *tok, const ingest_job_t *job, doc_stream_t *s)
{
    if (!s && !(s = stream_open(in, job))) return;
    for (;;) {
        char err[256] = "";
        part_t *p = NULL;
        int rc = part_build(in, tok, s, &p, err, sizeof err);
        if (rc == ENGRAM_ECANCELED) { stream_leave(in, s); return; }
        if (rc == ENGRAM_EUPSTREAM || (rc == ENGRAM_EINVAL && err[0])) {
            char msg[320];
            snprintf(msg, sizeof msg, "embedding failed: %s", err);
            stream_fail(in, s, rc, msg);
            return;
        }
        if (rc) { stream_fail(in, s, rc, NULL); return; }
        /* Parts commit in order: the previous one first. */
        int gone = 0;
        rc = stream_wait(in, s, &gone);
        if (gone) { part_free(p); stream_free(in, s); return; }
        if (rc) { part_free(p); stream_fail(in, s, rc, NULL); return; }
        if (!p->more && p->first == 0 && p->n == 0) {
            part_free(p);
            stream_fail(in, s, 0, "the document contains no text");
            return;
        }
        int more = p->more;
        if (commit_enqueue(in, p)) { stream_leave(in, s); return; }
        if (!more) return; /* the committer ends the document */
        if (stopping(in)) { stream_leave(in, s); return; }
        pthread_mutex_lock(&in->mu);
        if (others_waiting(in, job->ws) && in->suspended < MAX_SUSPENDED &&
            queue_push(in, job, s, 1) == 0) {
            pthread_cond_signal(&in->cv);
            pthread_mutex_unlock(&in->mu);
            return;
        }
        pthread_mutex_unlock(&in->mu);
    }
}

/* The committer: takes parts off the queue, up to COMMIT_BATCH_DOCS (or
 * COMMIT_BATCH_CHUNKS chunks) at a time, gathered as the top of the file
 * says, and commits them in one write transaction. It ends a document whose
 * last part it committed (or that failed there). */
static void *committer(void *arg)
{
    ingest_t *in = arg;
    tokenizer_t *tok = NULL;
    doc_done_t *dd = eg_calloc(COMMIT_BATCH_DOCS, sizeof *dd);
    part_t *batch[COMMIT_BATCH_DOCS];
    if (tokenizer_new(&tok) || !dd) {
        log_error("ingest: cannot start the committer");
        pthread_mutex_lock(&in->mu);
        in->committer_gone = 1;
        pthread_cond_broadcast(&in->space_cv);
        pthread_mutex_unlock(&in->mu);
        tokenizer_free(tok);
        eg_free(dd);
        return NULL;
    }
    pthread_mutex_lock(&in->mu);
    for (;;) {
        while (!in->commit_head && !in->workers_gone) pthread_cond_wait(&in->commit_cv, &in->mu);
        if (!in->commit_head) break; /* workers gone and nothing left */
        gather(in);
        size_t n = 0, chunks = 0;
        while (in->commit_head && n < COMMIT_BATCH_DOCS &&
               (n == 0 || chunks + in->commit_head->n <= COMMIT_BATCH_CHUNKS)) {
            part_t *p = in->commit_head;
            in->commit_head = p->next;
            if (!in->commit_head) in->commit_tail = NULL;
            in->commit_len--;
            in->commit_chunks -= p->n;
            chunks += p->n;
            batch[n++] = p;
        }
        in->committing += n;
        pthread_cond_broadcast(&in->space_cv);
        pthread_mutex_unlock(&in->mu);
        for (size_t i = 0; i < n; i++) {
            part_t *p = batch[i];
            dd[i] = (doc_done_t){.job = p->s->job, .chunks = p->chunks, .n = p->n,
                                 .first = p->first, .more = p->more, .dim = p->dim,
                                 .total_tokens = p->total_tokens};
        }
        catalog_doc_complete_batch(in->st, tok, dd, n);
        for (size_t i = 0; i < n; i++) {
            part_t *p = batch[i];
            doc_stream_t *s = p->s;
            if (p->more) {
                pthread_mutex_lock(&in->mu);
                s->part_out = 0;
                s->part_rc = dd[i].status;
                s->gone = dd[i].gone;
                if (!dd[i].status && !dd[i].gone) s->committed = p->first + (uint32_t)p->n;
                pthread_cond_broadcast(&in->part_cv);
                pthread_mutex_unlock(&in->mu);
            } else {
                /* Its last part: the document ends here. */
                if (dd[i].status && (p->first == 0 || roll_back(in, &s->job, tok) == 0))
                    finish_failed(in, &s->job, dd[i].status);
                s->part_out = 0;
                stream_free(in, s);
            }
            part_free(p);
        }
        pthread_mutex_lock(&in->mu);
        in->committing -= n;
    }
    in->committer_gone = 1;
    pthread_cond_broadcast(&in->space_cv);
    pthread_mutex_unlock(&in->mu);
    tokenizer_free(tok);
    eg_free(dd);
    return NULL;
}

static void *worker(void *arg)
{
    ingest_t *in = arg;
    tokenizer_t *tok = NULL;
    if (tokenizer_new(&tok)) {
        log_error("ingest: cannot start a worker (tokenizer)");
        return NULL;
    }
    pthread_mutex_lock(&in->mu);
    for (;;) {
        while (!in->stopping && in->len == 0) pthread_cond_wait(&in->cv, &in->mu);
        if (in->stopping) break;
        qent_t *e = queue_pop(in);
        in->running++;
        pthread_mutex_unlock(&in->mu);
        process(in, tok, &e->job, e->s);
        eg_free(e);
        pthread_mutex_lock(&in->mu);
        in->running--;
    }
    pthread_mutex_unlock(&in->mu);
    tokenizer_free(tok);
    return NULL;
}

/* Frees the queue; documents put back between parts are left for the next
 * start (their committed parts stay, the job too). */
static void queue_free(ingest_t *in)
{
    qent_t *e;
    while ((e = queue_pop(in))) {
        if (e->s) stream_free(in, e->s);
        eg_free(e);
    }
}

static void ingest_destroy(ingest_t *in)
{
    queue_free(in);
    eg_free(in->threads);
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->cv);
    pthread_cond_destroy(&in->part_cv);
    pthread_cond_destroy(&in->commit_cv);
    pthread_cond_destroy(&in->space_cv);
    eg_free(in);
}

int ingest_start(store_t *st, embed_registry_t *reg, const extract_llm_config_t *llm, int threads,
                 ingest_t **out)
{
    *out = NULL;
    if (threads < 1) threads = 1;
    ingest_t *in = eg_calloc(1, sizeof *in);
    if (!in) return ENGRAM_ENOMEM;
    in->st = st;
    in->reg = reg;
    if (llm && llm->url && llm->url[0]) in->llm = *llm;
    pthread_mutex_init(&in->mu, NULL);
    pthread_cond_init(&in->cv, NULL);
    pthread_cond_init(&in->part_cv, NULL);
    pthread_condattr_t mono;
    pthread_condattr_init(&mono);
    pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
    pthread_cond_init(&in->commit_cv, &mono);
    pthread_condattr_destroy(&mono);
    pthread_cond_init(&in->space_cv, NULL);
    ingest_job_t *jobs = NULL;
    size_t n = 0;
    int rc = catalog_jobs_pending(st, &jobs, &n);
    if (rc) goto fail;
    for (size_t i = 0; i < n && !rc; i++) rc = queue_push(in, &jobs[i], NULL, 0);
    eg_free(jobs);
    if (rc) goto fail;
    if (n) log_info("ingest: resuming %zu unfinished document(s)", n);
    in->threads = eg_calloc((size_t)threads, sizeof *in->threads);
    if (!in->threads) { rc = ENGRAM_ENOMEM; goto fail; }
    if (pthread_create(&in->committer, NULL, committer, in)) { rc = ENGRAM_ENOMEM; goto fail; }
    in->has_committer = 1;
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&in->threads[i], NULL, worker, in)) { rc = ENGRAM_ENOMEM; break; }
        in->n_threads++;
    }
    if (rc) { ingest_stop(in); return rc; }
    *out = in;
    return 0;
fail:
    ingest_destroy(in);
    return rc;
}

void ingest_stop(ingest_t *in)
{
    if (!in) return;
    pthread_mutex_lock(&in->mu);
    in->stopping = 1;
    pthread_cond_broadcast(&in->cv);
    pthread_mutex_unlock(&in->mu);
    for (int i = 0; i < in->n_threads; i++) pthread_join(in->threads[i], NULL);
    /* The committer commits what the workers prepared, then ends. */
    pthread_mutex_lock(&in->mu);
    in->workers_gone = 1;
    pthread_cond_broadcast(&in->commit_cv);
    pthread_mutex_unlock(&in->mu);
    if (in->has_committer) pthread_join(in->committer, NULL);
    ingest_destroy(in);
}
