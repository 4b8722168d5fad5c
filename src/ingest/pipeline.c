/*
 * pipeline.c - the ingestion worker pool and its committer (see ingest.h).
 *
 * Workers take jobs, and extract, chunk, embed and find the entities of a
 * document outside any transaction; the prepared document (which owns
 * everything its chunks point into) goes on a bounded commit queue. One
 * committer thread takes whatever is queued - up to COMMIT_BATCH_DOCS
 * documents - and commits it in one write transaction (each document in a
 * nested one), so under load one fsync and one copy of the touched B-tree
 * pages serve many documents. Progress of documents in flight is kept in
 * memory (ingest_progress), not committed.
 *
 * Lock order: one mutex (mu) guards both queues; nobody holds it while
 * calling into the store. Shutdown: workers stop at the next stage boundary
 * (their job stays in the store), then the committer commits what was
 * already prepared and ends.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "catalog/catalog.h"
#include "index/tokenizer.h"
#include "ingest/chunk.h"
#include "ingest/detect.h"
#include "ingest/extract.h"
#include "ingest/ingest.h"
#include "model/extract_entities.h"
#include "model/registry.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/log.h"
#include "util/utf8.h"

/* A document ready to commit: everything its chunks point into. Owned by
 * the commit queue once handed over. */
typedef struct prepared {
    ingest_job_t job;
    extract_result_t ex;
    size_t *span_of;
    graph_chunk_t *graphs;
    float *vecs;
    uint32_t dim;
    char *bytes;
    buf_t text;
    chunk_span_t *spans;
    size_t n;
    chunk_in_t *chunks;
    uint64_t total_tokens;
    struct prepared *next;
} prepared_t;

#define COMMIT_QUEUE_MAX 64      /* prepared documents held in memory at most */
#define COMMIT_BATCH_DOCS 32     /* documents per write transaction at most */
#define COMMIT_BATCH_CHUNKS 4096 /* chunks per write transaction (unless one document has more) */

struct ingest {
    store_t *st;
    embed_registry_t *reg;
    extract_llm_config_t llm;  /* llm.url NULL: the built-in entity extractor */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ingest_job_t *q;
    size_t head, len, cap;
    size_t running;
    int stopping;
    int n_threads;
    int next_slot;
    pthread_t *threads;
    /* Prepared documents waiting for the committer (see committer()). */
    pthread_t committer;
    int has_committer;
    pthread_cond_t commit_cv, space_cv;
    struct prepared *commit_head, *commit_tail;
    size_t commit_len, committing;
    struct prepared *in_commit[COMMIT_BATCH_DOCS]; /* the batch being committed */
    int workers_gone, committer_gone;
    /* Progress of the documents being processed, one slot per worker: kept
     * in memory (a committed progress write would cost an fsync per step). */
    struct { uint64_t ws, doc; double progress; int busy; } *live;
};

static void live_set(ingest_t *in, int slot, const ingest_job_t *job, double progress, int busy)
{
    if (slot < 0) return;
    pthread_mutex_lock(&in->mu);
    in->live[slot].ws = job->ws;
    in->live[slot].doc = job->doc;
    in->live[slot].progress = progress;
    in->live[slot].busy = busy;
    pthread_mutex_unlock(&in->mu);
}

int ingest_progress(ingest_t *in, uint64_t ws, uint64_t doc, double *progress)
{
    int found = 0;
    if (!in) return 0;
    pthread_mutex_lock(&in->mu);
    for (int i = 0; i < in->n_threads && !found; i++) {
        if (in->live[i].busy && in->live[i].ws == ws && in->live[i].doc == doc) {
            *progress = in->live[i].progress;
            found = 1;
        }
    }
    /* Prepared and waiting to commit, or in the commit running now. */
    for (struct prepared *p = in->commit_head; p && !found; p = p->next)
        if (p->job.ws == ws && p->job.doc == doc) { *progress = 0.95; found = 1; }
    for (size_t i = 0; i < COMMIT_BATCH_DOCS && !found; i++)
        if (in->in_commit[i] && in->in_commit[i]->job.ws == ws && in->in_commit[i]->job.doc == doc) {
            *progress = 0.95;
            found = 1;
        }
    pthread_mutex_unlock(&in->mu);
    return found;
}

static int queue_push(ingest_t *in, const ingest_job_t *job)
{
    if (in->len == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 64;
        ingest_job_t *q = eg_malloc(cap * sizeof *q);
        if (!q) return ENGRAM_ENOMEM;
        for (size_t i = 0; i < in->len; i++) q[i] = in->q[(in->head + i) % in->cap];
        eg_free(in->q);
        in->q = q;
        in->cap = cap;
        in->head = 0;
    }
    in->q[(in->head + in->len) % in->cap] = *job;
    in->len++;
    return 0;
}

int ingest_submit(ingest_t *in, const ingest_job_t *job)
{
    pthread_mutex_lock(&in->mu);
    int rc = queue_push(in, job);
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

/* Byte offset -> code point offset, counted incrementally (offsets ascend
 * within a document, so each call continues from the last). */
typedef struct cp_counter {
    const char *text;
    size_t byte, cps;
} cp_counter_t;

static uint32_t cp_offset(cp_counter_t *c, size_t byte)
{
    if (byte < c->byte) { c->byte = 0; c->cps = 0; }
    for (; c->byte < byte; c->byte++)
        if (((unsigned char)c->text[c->byte] & 0xC0) != 0x80) c->cps++;
    return (uint32_t)c->cps;
}

static uint64_t count_words(const char *s, size_t n)
{
    uint64_t words = 0;
    int in_word = 0;
    for (size_t i = 0; i < n; i++) {
        int space = s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' ||
                    s[i] == '\v';
        if (!space && !in_word) words++;
        in_word = !space;
    }
    return words;
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

/* Chunks an extracted document page by page and section by section, so a
 * chunk never straddles two and its page and heading are exact. *page_of
 * and *heading_of get each chunk's span (NULL heading when none). */
static int chunk_spans(const extract_result_t *ex, const coll_config_t *cfg, chunk_span_t **out,
                       size_t *n_out, size_t **span_of)
{
    chunk_span_t *all = NULL;
    size_t n = 0, cap = 0;
    size_t *owner = NULL;
    int rc = 0;
    for (size_t s = 0; s < ex->n_spans && !rc; s++) {
        const extract_span_t *sp = &ex->spans[s];
        chunk_span_t *part = NULL;
        size_t m = 0;
        rc = chunk_text(ex->text + sp->start, sp->end - sp->start, cfg->chunk_size,
                        cfg->chunk_overlap, 0, &part, &m);
        if (rc) break;
        if (n + m > cap) {
            size_t nc = (n + m) * 2 + 16;
            chunk_span_t *na = eg_realloc(all, nc * sizeof *na);
            size_t *no = na ? eg_realloc(owner, nc * sizeof *no) : NULL;
            if (na) all = na;
            if (no) owner = no;
            if (!na || !no) { chunk_spans_free(part, m); rc = ENGRAM_ENOMEM; break; }
            cap = nc;
        }
        for (size_t i = 0; i < m; i++) {
            all[n] = part[i];
            all[n].start += sp->start;
            all[n].end += sp->start;
            owner[n++] = s;
        }
        eg_free(part); /* the spans moved into all; their headings are NULL */
    }
    if (rc) {
        chunk_spans_free(all, n);
        eg_free(owner);
        return rc;
    }
    *out = all;
    *n_out = n;
    *span_of = owner;
    return 0;
}

static int stopping(ingest_t *in)
{
    pthread_mutex_lock(&in->mu);
    int s = in->stopping;
    pthread_mutex_unlock(&in->mu);
    return s;
}

static void prepared_free(prepared_t *p)
{
    if (!p) return;
    eg_free(p->span_of);
    extract_result_free(&p->ex);
    extract_graph_free(p->graphs, p->n);
    eg_free(p->vecs);
    eg_free(p->chunks);
    chunk_spans_free(p->spans, p->n);
    buf_free(&p->text);
    eg_free(p->bytes);
    eg_free(p);
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

/* Hands a prepared document to the committer; waits while its queue is full. */
static void commit_enqueue(ingest_t *in, prepared_t *p)
{
    pthread_mutex_lock(&in->mu);
    while (in->commit_len >= COMMIT_QUEUE_MAX && !in->committer_gone)
        pthread_cond_wait(&in->space_cv, &in->mu);
    if (in->committer_gone) {
        pthread_mutex_unlock(&in->mu);
        prepared_free(p); /* job stays in the store for the next start */
        return;
    }
    p->next = NULL;
    if (in->commit_tail) in->commit_tail->next = p; else in->commit_head = p;
    in->commit_tail = p;
    in->commit_len++;
    pthread_cond_signal(&in->commit_cv);
    pthread_mutex_unlock(&in->mu);
}

/* Extracts, chunks, embeds and finds the entities of one document, then
 * hands it to the committer. */
static void process(ingest_t *in, const ingest_job_t *job, int slot)
{
    char err[256] = "", ctype[128];
    size_t len = 0;
    coll_config_t cfg;
    prepared_t *p = eg_calloc(1, sizeof *p);
    if (!p) { finish_failed(in, job, ENGRAM_ENOMEM); return; }
    p->job = *job;
    int rc = catalog_job_load(in->st, job, &p->bytes, &len, ctype, &cfg);
    if (rc == ENGRAM_ENOTFOUND) {
        /* Deleted before it was processed: just drop the job. */
        catalog_doc_fail(in->st, job, "document deleted");
        goto done;
    }
    if (rc) {
        log_error("ingest: cannot load document %llu: %s", (unsigned long long)job->doc,
                  engram_strerror(rc));
        catalog_doc_fail(in->st, job, "the stored file could not be read");
        goto done;
    }
    live_set(in, slot, job, 0.1, 1);

    doc_type_t type = type_of_mime(ctype);
    int extracted = type != DOC_TEXT && type != DOC_MARKDOWN;
    if (extracted) {
        /* PDF, DOCX, HTML, images: text and its pages/sections from the extractor. */
        extract_limits_t lim;
        extract_limits_default(&lim);
        rc = extract_document(type, p->bytes, len, &lim, &p->ex, err, sizeof err);
        if (rc == ENGRAM_ENOMEM) goto fail;
        if (rc) {
            catalog_doc_fail(in->st, job, err[0] ? err : "the document could not be read");
            goto done;
        }
        buf_append(&p->text, p->ex.text, p->ex.len);
    } else {
        size_t bad = utf8_sanitize(p->bytes, len, &p->text);
        if (bad) log_debug("ingest: document %llu had %zu invalid UTF-8 sequences replaced",
                           (unsigned long long)job->doc, bad);
    }
    /* The original bytes are not needed past this point. */
    eg_free(p->bytes);
    p->bytes = NULL;
    if (p->text.err) { rc = p->text.err; goto fail; }
    if (stopping(in)) goto left;
    const char *text = p->text.data ? p->text.data : "";
    if (extracted)
        rc = chunk_spans(&p->ex, &cfg, &p->spans, &p->n, &p->span_of);
    else
        rc = chunk_text(text, p->text.len, cfg.chunk_size, cfg.chunk_overlap, type == DOC_MARKDOWN,
                        &p->spans, &p->n);
    if (rc) goto fail;
    if (p->n == 0) {
        catalog_doc_fail(in->st, job, "the document contains no text");
        goto done;
    }
    p->chunks = eg_calloc(p->n, sizeof *p->chunks);
    if (!p->chunks) { rc = ENGRAM_ENOMEM; goto fail; }
    cp_counter_t cc = {text, 0, 0};
    for (size_t i = 0; i < p->n; i++) {
        chunk_in_t *ch = &p->chunks[i];
        ch->text = text + p->spans[i].start;
        ch->len = p->spans[i].end - p->spans[i].start;
        ch->start = cp_offset(&cc, p->spans[i].start);
        ch->end = cp_offset(&cc, p->spans[i].end);
        ch->token_count = p->spans[i].token_count;
        ch->heading = p->spans[i].heading;
        if (p->span_of) {
            const extract_span_t *sp = &p->ex.spans[p->span_of[i]];
            ch->page = sp->page > 0 ? (uint32_t)sp->page : 0;
            ch->heading = sp->heading;
        }
    }
    if (stopping(in)) goto left;
    live_set(in, slot, job, 0.5, 1);
    rc = embed_chunks(in, &cfg, p->chunks, p->n, &p->vecs, &p->dim, err, sizeof err);
    if (rc == ENGRAM_ECANCELED) goto left;
    if (rc == ENGRAM_EUPSTREAM || rc == ENGRAM_EINVAL) {
        char msg[320];
        snprintf(msg, sizeof msg, "embedding failed: %s", err);
        catalog_doc_fail(in->st, job, msg);
        goto done;
    }
    if (rc) goto fail;
    if (stopping(in)) goto left;
    live_set(in, slot, job, 0.8, 1);
    if (cfg.graph && (rc = extract_graph(in, p->chunks, p->n, &p->graphs))) goto fail;
    if (stopping(in)) goto left;
    p->total_tokens = count_words(text, p->text.len);
    live_set(in, slot, job, 0.9, 1);
    commit_enqueue(in, p);
    return;
left:
    /* Shutting down: the job stays in the store and runs at the next start. */
    log_info("ingest: document %llu left for the next start", (unsigned long long)job->doc);
    goto done;
fail:
    finish_failed(in, job, rc);
done:
    prepared_free(p);
}

/* The committer: takes prepared documents off the queue, up to
 * COMMIT_BATCH_DOCS (or COMMIT_BATCH_CHUNKS chunks) at a time, and commits
 * them in one write transaction. Batches form by themselves while the
 * writer is busy, so a quiet server still commits each document at once. */
static void *committer(void *arg)
{
    ingest_t *in = arg;
    tokenizer_t *tok = NULL;
    doc_done_t *dd = eg_calloc(COMMIT_BATCH_DOCS, sizeof *dd);
    prepared_t *batch[COMMIT_BATCH_DOCS];
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
        size_t n = 0, chunks = 0;
        while (in->commit_head && n < COMMIT_BATCH_DOCS &&
               (n == 0 || chunks + in->commit_head->n <= COMMIT_BATCH_CHUNKS)) {
            prepared_t *p = in->commit_head;
            in->commit_head = p->next;
            if (!in->commit_head) in->commit_tail = NULL;
            in->commit_len--;
            chunks += p->n;
            batch[n++] = p;
        }
        in->committing += n;
        for (size_t i = 0; i < n; i++) in->in_commit[i] = batch[i];
        pthread_cond_broadcast(&in->space_cv);
        pthread_mutex_unlock(&in->mu);
        for (size_t i = 0; i < n; i++) {
            dd[i] = (doc_done_t){.job = batch[i]->job, .chunks = batch[i]->chunks,
                                 .n = batch[i]->n, .dim = batch[i]->dim,
                                 .total_tokens = batch[i]->total_tokens};
        }
        catalog_doc_complete_batch(in->st, tok, dd, n);
        pthread_mutex_lock(&in->mu);
        for (size_t i = 0; i < n; i++) in->in_commit[i] = NULL;
        pthread_mutex_unlock(&in->mu);
        for (size_t i = 0; i < n; i++) {
            if (dd[i].status) finish_failed(in, &batch[i]->job, dd[i].status);
            prepared_free(batch[i]);
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
    pthread_mutex_lock(&in->mu);
    int slot = in->next_slot++;
    for (;;) {
        while (!in->stopping && in->len == 0) pthread_cond_wait(&in->cv, &in->mu);
        if (in->stopping) break;
        ingest_job_t job = in->q[in->head];
        in->head = (in->head + 1) % in->cap;
        in->len--;
        in->running++;
        pthread_mutex_unlock(&in->mu);
        process(in, &job, slot);
        pthread_mutex_lock(&in->mu);
        in->live[slot].busy = 0;
        in->running--;
    }
    pthread_mutex_unlock(&in->mu);
    return NULL;
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
    pthread_cond_init(&in->commit_cv, NULL);
    pthread_cond_init(&in->space_cv, NULL);
    ingest_job_t *jobs = NULL;
    size_t n = 0;
    int rc = catalog_jobs_pending(st, &jobs, &n);
    if (rc) goto fail;
    for (size_t i = 0; i < n && !rc; i++) rc = queue_push(in, &jobs[i]);
    eg_free(jobs);
    if (rc) goto fail;
    if (n) log_info("ingest: resuming %zu unfinished document(s)", n);
    in->threads = eg_calloc((size_t)threads, sizeof *in->threads);
    in->live = eg_calloc((size_t)threads, sizeof *in->live);
    if (!in->threads || !in->live) { eg_free(in->threads); eg_free(in->live); rc = ENGRAM_ENOMEM; goto fail; }
    if (pthread_create(&in->committer, NULL, committer, in)) {
        eg_free(in->threads);
        eg_free(in->live);
        rc = ENGRAM_ENOMEM;
        goto fail;
    }
    in->has_committer = 1;
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&in->threads[i], NULL, worker, in)) { rc = ENGRAM_ENOMEM; break; }
        in->n_threads++;
    }
    if (rc) { ingest_stop(in); return rc; }
    *out = in;
    return 0;
fail:
    eg_free(in->q);
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->cv);
    pthread_cond_destroy(&in->commit_cv);
    pthread_cond_destroy(&in->space_cv);
    eg_free(in);
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
    eg_free(in->threads);
    eg_free(in->live);
    eg_free(in->q);
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->cv);
    pthread_cond_destroy(&in->commit_cv);
    pthread_cond_destroy(&in->space_cv);
    eg_free(in);
}
