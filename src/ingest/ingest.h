/*
 * ingest.h - the ingestion pool: documents from upload to searchable.
 *
 * A fixed pool of worker threads takes ingest jobs (catalog.h) from an
 * in-memory queue, round-robin between workspaces: read the document's
 * chunks from its source (source.h: plain text streamed from the stored
 * file, other formats extracted; chunked with the collection's sizes), embed
 * them with the collection's embedder (batched), extract the knowledge
 * graph's entities and relations (unless config graph=0), a part of at most
 * 1,024 chunks at a time, and hand each part to the committer, which commits
 * chunks, postings, vectors and - with the last part - status=completed.
 * A document of one part is never half visible; a larger one is
 * `processing` with its committed parts searchable until its last part
 * (pipeline.c). The queue is only a cache of DB_JOBS: at start every
 * unfinished job is loaded again, so a crash or a restart resumes them (a
 * large document from its committed parts). A failure fails that document
 * alone, with a message, its committed parts taken back.
 *
 * Thread-safety: ingest_submit and ingest_queue_depth from any thread;
 * ingest_start/ingest_stop from the owner.
 */
#ifndef ENGRAM_INGEST_H
#define ENGRAM_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "store/store.h"

typedef struct ingest ingest_t;

typedef struct embed_registry embed_registry_t;

/* Starts threads workers and queues every unfinished job. Chunks are
 * embedded with their collection's embedder from reg (NULL: no vectors).
 * Collections with config graph=1 get their entities and relations
 * extracted (model/extract_entities.h): with llm (NULL or url NULL/"": the
 * built-in extractor), whose strings must outlive the pool. */
struct extract_llm_config;
int ingest_start(store_t *st, embed_registry_t *reg, const struct extract_llm_config *llm,
                 int threads, ingest_t **out);
/* Queues a job just committed by an upload. */
int ingest_submit(ingest_t *in, const ingest_job_t *job);
/* 1 with *progress (0..1) when document doc of workspace ws is being
 * processed right now; 0 otherwise (its stored status tells). */
int ingest_progress(ingest_t *in, uint64_t ws, uint64_t doc, double *progress);
/* Jobs waiting or running. */
size_t ingest_queue_depth(ingest_t *in);
/* Finishes the jobs being processed, leaves the rest queued in the store for
 * the next start, joins the workers and frees in. */
void ingest_stop(ingest_t *in);

#endif
