/*
 * beir.h - retrieval quality on a BEIR-format data set: `engram eval --beir`.
 *
 * A BEIR directory holds corpus.jsonl ({"_id","title","text"} a line),
 * queries.jsonl ({"_id","text"}) and qrels/test.tsv (query-id, corpus-id,
 * score; a header line; CRLF tolerated). The loader and the metric functions
 * are public so other benchmarks (bench/fts5_scifact.c) load, score and time
 * exactly the same way.
 *
 * Metrics follow pytrec_eval as BEIR uses it: nDCG@10 with the qrels scores
 * as gains and a log2(rank + 1) discount, the ideal ranking made from the
 * qrels; Recall@100 over the judged-relevant (score > 0) documents; MRR@10 as
 * the reciprocal rank of the first relevant document in the top 10.
 *
 * Nothing here is thread-safe; a beir_set_t is immutable after loading.
 */
#ifndef ENGRAM_BEIR_H
#define ENGRAM_BEIR_H

#include <stddef.h>
#include <stdint.h>

typedef struct beir_judgement {
    uint32_t doc;      /* index into the corpus */
    int32_t score;
} beir_judgement_t;

typedef struct beir_query {
    char *id;
    char *text;
    beir_judgement_t *rel;   /* qrels of this query (documents not in the corpus skipped) */
    size_t n_rel;
} beir_query_t;

typedef struct beir_set {
    size_t n_docs;
    char **doc_ids;
    char **doc_texts;        /* title + " " + text, NUL-terminated */
    size_t *doc_lens;
    size_t n_queries;        /* only queries that have qrels, in qrels order */
    beir_query_t *queries;
} beir_set_t;

/* Loads DIR (qrels from DIR/qrels/test.tsv). On failure returns a status and
 * writes a message to err. The set is owned by the caller: beir_free. */
int beir_load(const char *dir, beir_set_t **out, char *err, size_t errlen);
void beir_free(beir_set_t *s);

typedef struct beir_scores {
    double ndcg10, recall100, mrr10;
} beir_scores_t;

/* Scores one query's ranking (corpus indexes, best first, no duplicates). */
beir_scores_t beir_score_query(const beir_query_t *q, const uint32_t *ranked, size_t n);

typedef struct beir_latency {
    double p50_ms, p99_ms, mean_ms;
} beir_latency_t;

/* Percentiles (nearest rank) and mean of n latencies in ms; sorts ms. */
beir_latency_t beir_latency_summary(double *ms, size_t n);

/* Monotonic clock in seconds. */
double beir_now(void);

/* `engram eval --beir DIR [--mode keyword] [--k1 X --b Y] [--limit-queries N]
 * [--json] [--keep] [--stemmer NAME|none] [--stopwords on|off] [--no-chunk]`.
 * argv[0] is "eval". Prints the table (or JSON) on stdout, progress on
 * stderr. Returns the process exit code (0 success, 1 failure, 2 usage). */
int eval_beir_main(int argc, char **argv);

#endif
