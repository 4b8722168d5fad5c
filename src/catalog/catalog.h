/*
 * catalog.h - collections, documents and chunks: the records, their
 * indexes, and the transactions that change them together.
 *
 * Every function takes the caller's workspace id and refuses anything that
 * belongs to another workspace with ENGRAM_ENOTFOUND, exactly as if it did
 * not exist. Public ids are UUIDs (store/idmap.h); records are JSON
 * (store/record.h) except chunks, which are binary (header + zstd text).
 *
 * A document upload commits the original bytes, the document (pending) and
 * its ingest job in one transaction; catalog_doc_complete later commits its
 * chunks, their BM25 postings and status=completed in another; a delete
 * removes the document, its chunks and postings in one. So a document is
 * never half visible - except a large one committed in parts (doc_done_t),
 * whose committed parts are searchable while it is `processing`.
 *
 * Out-parameters of type json_t** are owned by the caller (json_free).
 * Thread-safe.
 */
#ifndef ENGRAM_CATALOG_H
#define ENGRAM_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "index/tokenizer.h"
#include "store/store.h"
#include "util/json.h"

/* Records the index settings (tokenizer) in a new data directory, or checks
 * them against this build's in an existing one: ENGRAM_EVERSION with a
 * message in err on a mismatch. Call once after store_open. */
int catalog_check_settings(store_t *st, char *err, size_t errsz);

/* ---- collections ---- */

typedef struct coll_config {
    uint32_t chunk_size;     /* tokens, default 512 */
    uint32_t chunk_overlap;  /* default 128, < chunk_size */
    char embedder[32];       /* default "hash" */
    int graph;               /* default 1 */
    char embedder_id[96];    /* the embedder's identity at creation (embedder_id) */
} coll_config_t;

#define COLL_CONFIG_DEFAULT ((coll_config_t){512, 128, "hash", 1, ""})

/* name must be unique in ws (ENGRAM_EEXIST). description/metadata may be NULL. */
int catalog_coll_create(store_t *st, uint64_t ws, const char *user_uuid, const char *name,
                        const char *description, const json_t *metadata,
                        const coll_config_t *cfg, json_t **out);
/* *coll_id (may be NULL) gets the internal id. */
int catalog_coll_get(store_t *st, uint64_t ws, const char *coll_uuid, json_t **out,
                     uint64_t *coll_id);
/* The collection's config (for ingestion). */
int catalog_coll_config(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, coll_config_t *cfg);
/* A page of the workspace's collections in id order; *total = all of them. */
int catalog_coll_list(store_t *st, uint64_t ws, size_t limit, size_t offset, json_t **out,
                      size_t *total);
/* NULL arguments leave a field as it is. */
int catalog_coll_patch(store_t *st, uint64_t ws, const char *coll_uuid, const char *name,
                       const char *description, const json_t *metadata, json_t **out);
int catalog_coll_delete(store_t *st, tokenizer_t *tok, uint64_t ws, const char *coll_uuid);
/* Internal ids of all collections of ws (caller frees *ids with eg_free). */
int catalog_coll_ids(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t **ids, size_t *n);

/* ---- documents ---- */

typedef struct doc_upload {
    const char *coll_uuid;
    const char *user_uuid;
    const char *title;        /* NULL: from filename or first line */
    const char *filename;     /* NULL allowed */
    const char *content_type; /* sniffed: "text/plain" or "text/markdown" */
    const json_t *metadata;   /* object or NULL */
    const void *bytes;        /* the original bytes */
    size_t len;
    const char *idempotency_key; /* NULL, or a valid key (catalog/idempotency.h) */
} doc_upload_t;

/* Stores the upload. *created is 1 for a new document (and *job_id its
 * ingest job), 0 when the same bytes were already in the collection (the
 * existing document is returned). With an idempotency_key: a document
 * recorded under that key within its retention is returned (created 0)
 * whatever the bytes; otherwise the key is recorded for the document
 * returned, in the same transaction. */
int catalog_doc_create(store_t *st, uint64_t ws, const doc_upload_t *up, json_t **out,
                       int *created, uint64_t *job_id);
int catalog_doc_get(store_t *st, uint64_t ws, const char *doc_uuid, json_t **out);
/* coll_uuid / status may be NULL (all). */
int catalog_doc_list(store_t *st, uint64_t ws, const char *coll_uuid, const char *status,
                     size_t limit, size_t offset, json_t **out, size_t *total);
int catalog_doc_patch(store_t *st, uint64_t ws, const char *doc_uuid, const char *title,
                      const json_t *metadata, json_t **out);
/* Removes the document, its file, chunks and postings in one transaction. */
int catalog_doc_delete(store_t *st, tokenizer_t *tok, uint64_t ws, const char *doc_uuid);
/* A page of the document's chunks in order: [{"id","document_id","chunk_index",
 * "content","token_count","metadata"}]. */
int catalog_doc_chunks(store_t *st, uint64_t ws, const char *doc_uuid, size_t limit,
                       size_t offset, json_t **out, size_t *total);

/* ---- ingest jobs ---- */

typedef struct ingest_job {
    uint64_t job_id, ws, coll, doc;
} ingest_job_t;

/* All unfinished jobs in id order (caller frees *jobs with eg_free). */
int catalog_jobs_pending(store_t *st, ingest_job_t **jobs, size_t *n);
/* The job's document bytes (decompressed, caller frees) and metadata needed
 * to process it. ENGRAM_ENOTFOUND if the document is gone. */
int catalog_job_load(store_t *st, const ingest_job_t *job, char **bytes, size_t *len,
                     char content_type[128], coll_config_t *cfg);
/* What processing needs to know before reading the file: its stored MIME
 * type, the collection's config, the chunks committed by earlier parts
 * (*committed, 0 for a document not started) and the stored file's size
 * (*zlen, compressed). ENGRAM_ENOTFOUND if the document is gone. */
int catalog_job_info(store_t *st, const ingest_job_t *job, char content_type[128],
                     coll_config_t *cfg, uint32_t *committed, size_t *zlen);
/* Copies up to cap bytes of the stored (zstd) file from offset off into
 * dst, in a short read transaction of its own, so a large file is read
 * piece by piece without holding it or a transaction: *got bytes copied
 * (0 at the end). ENGRAM_ENOTFOUND if the document is gone. */
int catalog_job_file_read(store_t *st, const ingest_job_t *job, size_t off, void *dst, size_t cap,
                          size_t *got);
/* Marks the document processing (progress 0..1). */
int catalog_doc_progress(store_t *st, const ingest_job_t *job, const char *status, double progress);

typedef struct chunk_in {
    const float *vec;       /* its embedding (dim floats), or NULL: no vector */
    const char *text;       /* the chunk's text */
    size_t len;
    uint32_t start, end;    /* character offsets in the document text */
    uint32_t token_count;
    const char *heading;    /* section, may be NULL */
    uint32_t page;          /* 1-based page (PDF), 0 = none */
    const struct graph_chunk *graph; /* its entities and relations (index/graph.h), or NULL */
    const struct bm25_terms *terms;  /* its BM25 terms (index/bm25.h, built outside the
                                      * writer), or NULL: the writer tokenises text */
} chunk_in_t;

/* Commits the chunks, their postings, graph entries (dim floats each when
 * chunks carry vectors; the collection's vector index is created with the
 * first ones), status=completed and the counts, and removes the job - in one
 * transaction. A deleted document is skipped. A dimension that differs from
 * the collection's index is ENGRAM_EINVAL. */
int catalog_doc_complete(store_t *st, tokenizer_t *tok, const ingest_job_t *job,
                         const chunk_in_t *chunks, size_t n, uint32_t dim, uint64_t total_tokens);
/* One finished document - or one part of a large one - for
 * catalog_doc_complete_batch. A document too large to hold at once is
 * committed in parts, in order: chunks [first, first + n) each time. A part
 * with more = 1 leaves the document `processing` with chunk_count = first +
 * n, its chunks indexed and searchable, and keeps the job: that count is the
 * cursor a restart resumes from (the text is chunked again the same way and
 * the chunks before it skipped). The last part (more = 0) sets completed,
 * total_tokens and removes the job, like catalog_doc_complete. */
typedef struct doc_done {
    ingest_job_t job;
    const chunk_in_t *chunks;
    size_t n;
    uint32_t first;         /* document index of chunks[0]: the chunks committed before */
    int more;               /* 1: parts follow */
    uint32_t dim;
    uint64_t total_tokens;  /* the whole document's (read with the last part) */
    int status;             /* out: 0, or why this part did not commit (ENGRAM_EEXIST: the
                             * committed chunks do not end at first) */
    int gone;               /* out: the document was deleted (or was already completed):
                             * nothing committed, its job removed */
} doc_done_t;

/* Commits many finished documents (or parts) in one write transaction (one
 * fsync), each in a nested transaction of its own as catalog_doc_complete
 * would: one that fails is rolled back alone with its status set. The
 * postings and vectors of those that committed are indexed in one pass per
 * collection at the end (chunk_in_t.terms saves the writer tokenising); if
 * that pass fails, every document is committed alone instead, so only the
 * one at fault fails. Returns the commit's status (then every document has
 * it), or after the fallback the last failure among the documents. */
int catalog_doc_complete_batch(store_t *st, tokenizer_t *tok, doc_done_t *docs, size_t n);
/* Removes up to max of the chunks committed by parts of an unfinished
 * document, from its last one down, with their postings, vectors and graph
 * entries (one transaction); *left gets the chunks still committed. Used
 * before failing a document whose later part could not be made: call until
 * *left is 0, then catalog_doc_fail. ENGRAM_ENOTFOUND if it is gone. */
int catalog_doc_rollback(store_t *st, tokenizer_t *tok, const ingest_job_t *job, size_t max,
                         uint32_t *left);
/* Marks the document failed with a message a user can act on, removes the job. */
int catalog_doc_fail(store_t *st, const ingest_job_t *job, const char *message);
/* Marks it failed but keeps the job: processed again at the next start (a
 * failure that may pass, such as a full disk). */
int catalog_doc_fail_retry(store_t *st, const ingest_job_t *job, const char *message);

/* ---- chunks (for retrieval) ---- */

typedef struct chunk_rec {
    uint64_t doc;
    uint32_t index, start, end, tokens;
    uint32_t page;          /* 1-based page, 0 = none (version 1 records have none) */
    const char *heading;    /* points into the stored value; not NUL-terminated */
    size_t heading_len;
    const void *ztext;      /* zstd frame of the text, points into the value */
    size_t ztext_len;
    char uuid[37];
} chunk_rec_t;

/* Decodes a stored chunk value (pointers into it). ENGRAM_ECORRUPT on any
 * inconsistency. */
int catalog_chunk_decode(const void *val, size_t len, chunk_rec_t *out);
/* Reads chunk (ws, coll, chunk) in txn. */
int catalog_chunk_get(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t chunk,
                      chunk_rec_t *out);
/* Document record by internal id. */
int catalog_doc_get_internal(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t doc,
                             json_t **out);

/* ---- change generations and files (generation.c, files.c; used by the
 * operations module: the retrieval cache and signed document URLs) ---- */

/* A counter that changes whenever a committed catalog write touched
 * collection coll of ws; coll 0 names the workspace as a whole (any of its
 * collections, and creating or deleting one). Every write path of the
 * catalog calls catalog_generation_bump AFTER its commit (a new write path
 * must do the same, or caches serve stale results). In memory only, starts
 * at 0 in each process; collections may share a counter (a spurious change
 * is possible, a missed one is not). Lock-free, thread-safe. */
uint64_t catalog_generation(uint64_t ws, uint64_t coll);
/* Changes with every bump of any workspace (cheap "anything changed?"). */
uint64_t catalog_generation_all(void);
void catalog_generation_bump(uint64_t ws, uint64_t coll);

/* The document's original bytes (appended to *bytes, decompressed) and its
 * record (*rec, caller frees). ws 0 means any workspace: only for callers
 * that authorised the access by other means (a signed URL). */
int catalog_doc_file(store_t *st, uint64_t ws, const char *doc_uuid, buf_t *bytes, json_t **rec);

/* Renders records as the API shows them. */
void catalog_write_doc(jw_t *w, const json_t *doc_rec, int live);
/* live_progress >= 0: the document is being processed now (status
 * "processing" with that progress, which is not stored). */
void catalog_write_doc_status(jw_t *w, const json_t *doc_rec, double live_progress);

#define CHUNK_MAX_TEXT (16u << 20)

#endif
