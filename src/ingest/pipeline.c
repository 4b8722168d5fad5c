/*
 * pipeline.c - the ingestion worker pool (see ingest.h).
 *
 * Lock order: only the queue mutex exists here; workers never hold it while
 * calling into the store.
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
    pthread_t *threads;
};

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
    size_t n = in->len + in->running;
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

static void process(ingest_t *in, tokenizer_t *tok, const ingest_job_t *job)
{
    extract_result_t ex = {0};
    size_t *span_of = NULL;
    graph_chunk_t *graphs = NULL;
    float *vecs = NULL;
    uint32_t dim = 0;
    char err[256] = "";
    char *bytes = NULL, ctype[128];
    size_t len = 0;
    coll_config_t cfg;
    buf_t text = BUF_INIT;
    chunk_span_t *spans = NULL;
    size_t n = 0;
    chunk_in_t *chunks = NULL;
    int rc = catalog_job_load(in->st, job, &bytes, &len, ctype, &cfg);
    if (rc == ENGRAM_ENOTFOUND) {
        /* Deleted before it was processed: just drop the job. */
        catalog_doc_fail(in->st, job, "document deleted");
        return;
    }
    if (rc) {
        log_error("ingest: cannot load document %llu: %s", (unsigned long long)job->doc,
                  engram_strerror(rc));
        catalog_doc_fail(in->st, job, "the stored file could not be read");
        return;
    }
    catalog_doc_progress(in->st, job, "processing", 0.1);

    doc_type_t type = type_of_mime(ctype);
    int extracted = type != DOC_TEXT && type != DOC_MARKDOWN;
    if (extracted) {
        /* PDF, DOCX, HTML, images: text and its pages/sections from the extractor. */
        extract_limits_t lim;
        extract_limits_default(&lim);
        rc = extract_document(type, bytes, len, &lim, &ex, err, sizeof err);
        if (rc == ENGRAM_ENOMEM) goto fail;
        if (rc) {
            catalog_doc_fail(in->st, job, err[0] ? err : "the document could not be read");
            goto done;
        }
        buf_append(&text, ex.text, ex.len);
    } else {
        size_t bad = utf8_sanitize(bytes, len, &text);
        if (bad) log_debug("ingest: document %llu had %zu invalid UTF-8 sequences replaced",
                           (unsigned long long)job->doc, bad);
    }
    if (text.err) { rc = text.err; goto fail; }
    if (stopping(in)) goto left;
    int markdown = type == DOC_MARKDOWN;
    if (extracted)
        rc = chunk_spans(&ex, &cfg, &spans, &n, &span_of);
    else
        rc = chunk_text(text.data ? text.data : "", text.len, cfg.chunk_size, cfg.chunk_overlap,
                        markdown, &spans, &n);
    if (rc) goto fail;
    if (n == 0) {
        catalog_doc_fail(in->st, job, "the document contains no text");
        goto done;
    }
    chunks = eg_calloc(n, sizeof *chunks);
    if (!chunks) { rc = ENGRAM_ENOMEM; goto fail; }
    cp_counter_t cc = {text.data, 0, 0};
    for (size_t i = 0; i < n; i++) {
        chunks[i].text = text.data + spans[i].start;
        chunks[i].len = spans[i].end - spans[i].start;
        chunks[i].start = cp_offset(&cc, spans[i].start);
        chunks[i].end = cp_offset(&cc, spans[i].end);
        chunks[i].token_count = spans[i].token_count;
        chunks[i].heading = spans[i].heading;
    }
    for (size_t i = 0; span_of && i < n; i++) {
        chunks[i].page = ex.spans[span_of[i]].page > 0 ? (uint32_t)ex.spans[span_of[i]].page : 0;
        chunks[i].heading = ex.spans[span_of[i]].heading;
    }
    if (stopping(in)) goto left;
    catalog_doc_progress(in->st, job, "processing", 0.5);
    rc = embed_chunks(in, &cfg, chunks, n, &vecs, &dim, err, sizeof err);
    if (rc == ENGRAM_ECANCELED) goto left;
    if (rc == ENGRAM_EUPSTREAM || rc == ENGRAM_EINVAL) {
        char msg[320];
        snprintf(msg, sizeof msg, "embedding failed: %s", err);
        catalog_doc_fail(in->st, job, msg);
        goto done;
    }
    if (rc) goto fail;
    if (stopping(in)) goto left;
    if (cfg.graph && (rc = extract_graph(in, chunks, n, &graphs))) goto fail;
    if (stopping(in)) goto left;
    rc = catalog_doc_complete(in->st, tok, job, chunks, n, dim, count_words(text.data, text.len));
    if (rc) goto fail;
    goto done;
left:
    /* Shutting down: the job stays in the store and runs at the next start. */
    log_info("ingest: document %llu left for the next start", (unsigned long long)job->doc);
    goto done;
fail:
    log_error("ingest: document %llu failed: %s", (unsigned long long)job->doc, engram_strerror(rc));
    if (rc == ENGRAM_EFULL || rc == -ENOSPC || rc == -EIO || rc == ENGRAM_EIO) {
        /* The disk may have room again later: the job stays, and the
         * document is processed again at the next start. */
        log_warn("ingest: document %llu left queued until the next start (storage failed)",
                 (unsigned long long)job->doc);
        goto done;
    }
    if (rc == ENGRAM_ENOMEM)
        catalog_doc_fail(in->st, job, "the server ran out of memory processing this document");
    else
        catalog_doc_fail(in->st, job, "processing failed; see the server log for the request");
done:
    eg_free(span_of);
    extract_result_free(&ex);
    extract_graph_free(graphs, n);
    eg_free(vecs);
    eg_free(chunks);
    chunk_spans_free(spans, n);
    buf_free(&text);
    eg_free(bytes);
}

static void *worker(void *arg)
{
    ingest_t *in = arg;
    tokenizer_t *tok = NULL;
    if (tokenizer_new(&tok)) {
        log_error("ingest: cannot create a tokenizer");
        return NULL;
    }
    pthread_mutex_lock(&in->mu);
    for (;;) {
        while (!in->stopping && in->len == 0) pthread_cond_wait(&in->cv, &in->mu);
        if (in->stopping) break;
        ingest_job_t job = in->q[in->head];
        in->head = (in->head + 1) % in->cap;
        in->len--;
        in->running++;
        pthread_mutex_unlock(&in->mu);
        process(in, tok, &job);
        pthread_mutex_lock(&in->mu);
        in->running--;
    }
    pthread_mutex_unlock(&in->mu);
    tokenizer_free(tok);
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
    ingest_job_t *jobs = NULL;
    size_t n = 0;
    int rc = catalog_jobs_pending(st, &jobs, &n);
    if (rc) goto fail;
    for (size_t i = 0; i < n && !rc; i++) rc = queue_push(in, &jobs[i]);
    eg_free(jobs);
    if (rc) goto fail;
    if (n) log_info("ingest: resuming %zu unfinished document(s)", n);
    in->threads = eg_calloc((size_t)threads, sizeof *in->threads);
    if (!in->threads) { rc = ENGRAM_ENOMEM; goto fail; }
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
    eg_free(in->threads);
    eg_free(in->q);
    pthread_mutex_destroy(&in->mu);
    pthread_cond_destroy(&in->cv);
    eg_free(in);
}
